import { mkdir } from "node:fs/promises"
import { type ConnectionOptions, connect } from "nats"
import type { Logger } from "../../lib/log"
import { type ManagedChild, startChild, waitUntilReady } from "./child"

export const NATS_INSTALL_HINT =
  "Install it with `apt-get install nats-server` (Debian/Ubuntu) or put the nats-server binary on PATH; production needs 2.10 or newer."

export type LocalNats = {
  readonly url: string
  readonly port: number
  stop(): Promise<void>
  kill(): Promise<void>
}

/**
 * Starts nats-server with JetStream on loopback, its store under `storeDir`; with `auth`, it
 * accepts only that user (tests of deployments whose NATS asks for credentials).
 */
export async function startNats(options: {
  port: number
  storeDir: string
  log: Logger
  binary?: string
  auth?: { user: string; password: string }
  /**
   * A configuration file read first (users and their permissions; the options above win), and
   * a user of it that may ask JetStream for its account info, to see that the server is up.
   */
  config?: { file: string; readyAs: { user: string; password: string; inboxPrefix?: string } }
  /**
   * TLS only (PEM files): the server's certificate and key, the authority clients are checked
   * against, and with `client` (a certificate that authority signed) clients must show one.
   */
  tls?: { cert: string; key: string; ca: string; client?: { cert: string; key: string } }
}): Promise<LocalNats> {
  await mkdir(options.storeDir, { recursive: true })
  const child: ManagedChild = await startChild({
    name: "nats-server",
    command: options.binary ?? "nats-server",
    args: [
      ...(options.config === undefined ? [] : ["-c", options.config.file]),
      "-a",
      "127.0.0.1",
      "-p",
      String(options.port),
      "-js",
      "-sd",
      options.storeDir,
      "--server_name",
      "cove-local",
      ...(options.auth === undefined ? [] : ["--user", options.auth.user, "--pass", options.auth.password]),
      ...(options.tls === undefined
        ? []
        : [
            "--tls",
            "--tlscert",
            options.tls.cert,
            "--tlskey",
            options.tls.key,
            "--tlscacert",
            options.tls.ca,
            ...(options.tls.client === undefined ? [] : ["--tlsverify"]),
          ]),
    ],
    log: options.log,
    installHint: NATS_INSTALL_HINT,
  })
  const url = `${options.tls === undefined ? "nats" : "tls"}://127.0.0.1:${options.port}`
  const tls = options.tls
  const tlsOptions =
    tls === undefined
      ? {}
      : {
          tls: {
            caFile: tls.ca,
            ...(tls.client === undefined ? {} : { certFile: tls.client.cert, keyFile: tls.client.key }),
          },
        }
  await waitUntilReady(
    child,
    () => jetStreamAnswers(url, { ...tlsOptions, ...readyAs(options.auth ?? options.config?.readyAs) }),
    15_000,
  )
  return {
    url,
    port: options.port,
    stop: () => child.stop("SIGTERM"),
    kill: () => child.stop("SIGKILL", 0),
  }
}

function readyAs(
  auth: { user: string; password: string; inboxPrefix?: string } | undefined,
): ConnectionOptions {
  return {
    ...(auth === undefined ? {} : { user: auth.user, pass: auth.password }),
    ...(auth?.inboxPrefix === undefined ? {} : { inboxPrefix: auth.inboxPrefix }),
  }
}

async function jetStreamAnswers(url: string, options: ConnectionOptions): Promise<boolean> {
  try {
    const nc = await connect({ ...options, servers: url, reconnect: false, timeout: 500 })
    try {
      await (await nc.jetstreamManager()).getAccountInfo()
      return true
    } finally {
      await nc.close()
    }
  } catch {
    // Not listening yet, or JetStream not yet enabled: the caller polls again.
    return false
  }
}

import { mkdir } from "node:fs/promises"
import { connect } from "nats"
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
    ],
    log: options.log,
    installHint: NATS_INSTALL_HINT,
  })
  const url = `nats://127.0.0.1:${options.port}`
  await waitUntilReady(child, () => jetStreamAnswers(url, options.auth ?? options.config?.readyAs), 15_000)
  return {
    url,
    port: options.port,
    stop: () => child.stop("SIGTERM"),
    kill: () => child.stop("SIGKILL", 0),
  }
}

async function jetStreamAnswers(
  url: string,
  auth?: { user: string; password: string; inboxPrefix?: string },
): Promise<boolean> {
  try {
    const nc = await connect({
      servers: url,
      reconnect: false,
      timeout: 500,
      ...(auth === undefined ? {} : { user: auth.user, pass: auth.password }),
      ...(auth?.inboxPrefix === undefined ? {} : { inboxPrefix: auth.inboxPrefix }),
    })
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

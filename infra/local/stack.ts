/**
 * The whole stack on loopback, as `npm start` and the end-to-end tests run it: NATS, PostgreSQL
 * and an S3 store (embedded unless URLs are given), migrations, the function runtime, the
 * connector and the edge. Everything that can fail for a reason the user can fix is checked
 * before the first server starts.
 */
import { randomBytes } from "node:crypto"
import { access, mkdir, readFile, rm, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import type { NatsConnection } from "nats"
import pg from "pg"
import { connectNats, type NatsClientSettings } from "../../lib/adapters/nats"
import { createS3Client, ensureBucket } from "../../lib/adapters/s3"
import type { Logger } from "../../lib/log"
import { Registry } from "../../lib/metrics"
import { startConnector } from "../connector/connector"
import { migrate, readMigrations } from "../migrations/migrate"
import { type FunctionProcess, startFunctionProcess } from "../runtime/function-process"
import { startRuntime } from "../runtime/runtime"
import type { Stack } from "../stack"
import { startChild, waitUntilReady } from "./child"
import { acquireDataDirLock } from "./data-dir-lock"
import { startNats } from "./nats-server"
import { claimPort } from "./ports"
import { startPostgres } from "./postgres-server"
import { EMBEDDED_S3_CREDENTIALS, startS3 } from "./s3-server"

export type StackOptions = {
  readonly dataDir: string
  readonly buildDir: string
  readonly stack: Stack
  readonly gatewayPort: number
  readonly edgePort: number
  readonly natsPort: number
  readonly pgPort: number
  readonly s3Port: number
  readonly natsUrl: string | undefined
  /**
   * How the processes authenticate to the NATS of `natsUrl` (the embedded one takes anyone on
   * loopback): the same for all, or per process ("edge", "connector" for this process's
   * connector and runtime, or a function's name), as a deployment with one NATS user each.
   */
  readonly natsCredentials?: NatsClientSettings | ((process: string) => NatsClientSettings)
  readonly natsServerBin: string
  readonly databaseUrl: string | undefined
  readonly pgSchema: string
  readonly s3: {
    readonly endpoint: string | undefined
    readonly region: string
    readonly bucket: string
    readonly accessKeyId: string | undefined
    readonly secretAccessKey: string | undefined
  }
  readonly logLevel: string
  /** The edge's WebSocket URL as browsers reach it (default: the page's host name on the edge port). */
  readonly webEdgeUrl?: string | undefined
  /** Edge settings handed on as they are (COVE_EDGE_*, COVE_ALLOWED_ORIGINS, ...); the edge checks them. */
  readonly edgeEnv?: Readonly<Record<string, string>>
  /** Tests trade PostgreSQL durability for speed. */
  readonly durable: boolean
  readonly log: Logger
}

export type RunningStack = {
  readonly gatewayUrl: string
  readonly edgeUrl: string
  readonly natsUrl: string
  readonly databaseUrl: string
  readonly s3Endpoint: string
  readonly embedded: { readonly nats: boolean; readonly postgres: boolean; readonly s3: boolean }
  readonly nc: NatsConnection
  /**
   * Stops the edge as a deployment would (SIGTERM: sockets closed with 1012) and starts it again
   * on its port, after `whileDown` (e.g. a test acting while there is no edge) if given.
   */
  restartEdge(o?: { whileDown?: () => Promise<void> }): Promise<void>
  stop(): Promise<void>
}

/** Files the runtime needs from `npm run build`. */
function buildFiles(buildDir: string, stack: Stack): string[] {
  return [
    join(buildDir, "function-server.mjs"),
    join(buildDir, "gateway.mjs"),
    ...stack.functions.map((f) => join(f.handlerDir, "handler.js")),
  ]
}

export async function startStack(o: StackOptions): Promise<RunningStack> {
  const log = o.log
  const dataDir = resolve(o.dataDir)
  // --- checks that stop us before anything is half-started
  for (const file of buildFiles(o.buildDir, o.stack)) {
    await access(file).catch(() => {
      throw new Error(`${file} is missing: run \`npm run build\` first`)
    })
  }
  if (o.s3.endpoint !== undefined && (o.s3.accessKeyId === undefined || o.s3.secretAccessKey === undefined)) {
    throw new Error(
      "S3_ENDPOINT is set: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY (or their secret files) are required too",
    )
  }
  await mkdir(dataDir, { recursive: true })
  const releaseLock = await acquireDataDirLock(dataDir)
  const stops: Array<() => Promise<void>> = [releaseLock]
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      await stop().catch((err: unknown) => log.error({ err }, "stop step failed"))
    }
    stops.length = 0
  }
  try {
    // Port 0 means "any free port": those we let the kernel choose when we listen.
    const gatewayPort =
      o.gatewayPort === 0 ? 0 : await claimPort("the function runtime", o.gatewayPort, "COVE_GATEWAY_PORT")
    let edgePort = await claimPort("the edge", o.edgePort, "COVE_EDGE_PORT")
    const natsPort =
      o.natsUrl === undefined ? await claimPort("nats-server", o.natsPort, "COVE_NATS_PORT") : 0
    const pgPort = o.databaseUrl === undefined ? await claimPort("PostgreSQL", o.pgPort, "COVE_PG_PORT") : 0
    const s3Port =
      o.s3.endpoint === undefined && o.s3Port !== 0
        ? await claimPort("the S3 store", o.s3Port, "COVE_S3_PORT")
        : 0

    // --- servers (in parallel: they do not depend on each other)
    const [natsUrl, databaseUrl, s3Endpoint] = await Promise.all([
      o.natsUrl ??
        startNats({ port: natsPort, storeDir: join(dataDir, "nats"), log, binary: o.natsServerBin }).then(
          (n) => {
            stops.push(() => n.stop())
            return n.url
          },
        ),
      o.databaseUrl ??
        startPostgres({ port: pgPort, dataDir: join(dataDir, "postgres"), log, durable: o.durable }).then(
          (p) => {
            stops.push(() => p.stop())
            return p.url
          },
        ),
      o.s3.endpoint ??
        startS3({ port: s3Port, directory: join(dataDir, "s3") }).then((s) => {
          stops.push(() => s.stop())
          return s.endpoint
        }),
    ])
    const s3Credentials =
      o.s3.endpoint === undefined
        ? EMBEDDED_S3_CREDENTIALS
        : { accessKeyId: o.s3.accessKeyId as string, secretAccessKey: o.s3.secretAccessKey as string }

    // --- schema and bucket
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    try {
      await migrate(client, {
        schema: o.pgSchema,
        migrations: await readMigrations(join(o.buildDir, "migrations")),
        log,
      })
    } finally {
      await client.end()
    }
    const s3 = createS3Client({
      endpoint: s3Endpoint,
      region: o.s3.region,
      forcePathStyle: true,
      ...s3Credentials,
    })
    await ensureBucket(s3, o.s3.bucket, [])

    // --- functions, runtime, connector, edge
    const given = o.natsCredentials
    const credentialsOf = (process: string): NatsClientSettings =>
      o.natsUrl === undefined || given === undefined
        ? {}
        : typeof given === "function"
          ? given(process)
          : given
    // In the environment, every process's fallback for its secrets: a deployment mounts them as
    // the secret files nats-password, nats-token or nats-creds and nats-tls-* (README, "NATS
    // credentials").
    const natsEnv = (process: string): Record<string, string> => {
      const c = credentialsOf(process)
      return {
        ...(c.natsUser === undefined ? {} : { NATS_USER: c.natsUser }),
        ...(c.natsPassword === undefined ? {} : { NATS_PASSWORD: c.natsPassword }),
        ...(c.natsToken === undefined ? {} : { NATS_TOKEN: c.natsToken }),
        ...(c.natsCreds === undefined ? {} : { NATS_CREDS: c.natsCreds }),
        ...(c.natsTlsCa === undefined ? {} : { NATS_TLS_CA: c.natsTlsCa }),
        ...(c.natsTlsCert === undefined ? {} : { NATS_TLS_CERT: c.natsTlsCert }),
        ...(c.natsTlsKey === undefined ? {} : { NATS_TLS_KEY: c.natsTlsKey }),
      }
    }
    const secrets = {
      "database-url": databaseUrl,
      "s3-access-key-id": s3Credentials.accessKeyId,
      "s3-secret-access-key": s3Credentials.secretAccessKey,
      "auth-key-encryption-key": await localSecret(dataDir, "auth-key-encryption-key"),
    }
    const env = {
      LOG_LEVEL: o.logLevel,
      NATS_URL: natsUrl,
      PG_SCHEMA: o.pgSchema,
      S3_ENDPOINT: s3Endpoint,
      S3_REGION: o.s3.region,
      S3_BUCKET: o.s3.bucket,
    }
    const functions: FunctionProcess[] = await Promise.all(
      o.stack.functions.map((spec) =>
        startFunctionProcess({
          spec,
          serverScript: join(o.buildDir, "function-server.mjs"),
          env: { ...env, ...natsEnv(spec.name) },
          secrets,
          secretsRoot: join(dataDir, "secrets"),
          log,
        }).then((f) => {
          stops.push(() => f.stop())
          return f
        }),
      ),
    )
    const registry = new Registry()
    const nc = await connectNats(natsUrl, "cove-connector", log, credentialsOf("connector"))
    stops.push(() => nc.drain())
    const runtime = await startRuntime({
      host: "127.0.0.1",
      port: gatewayPort,
      functions,
      registry,
      log,
      web: {
        dir: join(o.buildDir, "web"),
        edgeUrl: o.webEdgeUrl,
        edgePort: () => edgePort,
        storeOrigin: new URL(s3Endpoint).origin,
      },
    })
    stops.push(() => runtime.stop())
    const gatewayUrl = `http://127.0.0.1:${runtime.port}`
    // Browsers upload straight to the store from the web app's origin.
    await ensureBucket(s3, o.s3.bucket, [gatewayUrl, `http://localhost:${runtime.port}`])
    s3.destroy()
    const byName = new Map(functions.map((f) => [f.spec.name, f]))
    const connector = await startConnector({
      nc,
      stack: o.stack,
      gatewayUrl,
      // Straight to each function's process: the runtime's proxy hop cost the connector's process
      // as much CPU per batch as the connector itself (docs/benchmarks.md).
      functionUrl: (name) => {
        const port = byName.get(name)?.port()
        return port === undefined ? undefined : `http://127.0.0.1:${port}/`
      },
      registry,
      log,
    })
    stops.push(() => connector.stop())

    const startEdgeOn = async (port: number) => {
      const child = await startChild({
        name: "edge",
        command: process.execPath,
        args: ["--enable-source-maps", join(o.buildDir, "gateway.mjs")],
        spawn: {
          env: {
            ...o.edgeEnv,
            ...natsEnv("edge"),
            LOG_LEVEL: o.logLevel,
            NATS_URL: natsUrl,
            COVE_EDGE_PORT: String(port),
            COVE_GATEWAY_PORT: String(runtime.port),
            COVE_JWKS_URL: `${gatewayUrl}/function/auth/jwks`,
            COVE_FUNCTIONS_URL: gatewayUrl,
          },
        },
        echo: process.stdout,
        log,
        installHint: "",
      })
      await waitUntilReady(child, () => answers(`http://127.0.0.1:${port}/healthz`), 15_000)
      return child
    }
    // A port picked as free can be taken by another process before the edge binds it: when the
    // port was ours to choose, choose again.
    let edge: Awaited<ReturnType<typeof startEdgeOn>> | undefined
    for (let attempt = 1; edge === undefined; attempt++) {
      try {
        edge = await startEdgeOn(edgePort)
      } catch (err) {
        if (o.edgePort !== 0 || attempt >= 3 || !String(err).includes("could not listen")) throw err
        edgePort = await claimPort("the edge", 0, "COVE_EDGE_PORT")
      }
    }
    let runningEdge = edge
    stops.push(() => runningEdge.stop("SIGTERM", 15_000))

    // Where this stack's servers are, for tools such as `npm run migrate` (holds a password).
    const stackInfo = join(dataDir, "stack.json")
    await writeFile(
      stackInfo,
      JSON.stringify({ pid: process.pid, gatewayUrl, natsUrl, databaseUrl, s3Endpoint }),
      { mode: 0o600 },
    )
    stops.push(() => rm(stackInfo, { force: true }))

    return {
      gatewayUrl,
      edgeUrl: `ws://127.0.0.1:${edgePort}/v1/ws`,
      natsUrl,
      databaseUrl,
      s3Endpoint,
      embedded: {
        nats: o.natsUrl === undefined,
        postgres: o.databaseUrl === undefined,
        s3: o.s3.endpoint === undefined,
      },
      nc,
      async restartEdge(ro = {}) {
        await runningEdge.stop("SIGTERM", 15_000)
        try {
          await ro.whileDown?.()
        } finally {
          // Also when whileDown failed: the stack stays whole for the next test and for stop().
          runningEdge = await startEdgeOn(edgePort)
        }
      },
      stop: stopAll,
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}

/** A secret generated on first start and kept in the data folder (local stacks only). */
async function localSecret(dataDir: string, name: string): Promise<string> {
  const file = join(dataDir, "generated-secrets", name)
  try {
    return (await readFile(file, "utf8")).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err
    await mkdir(join(dataDir, "generated-secrets"), { recursive: true, mode: 0o700 })
    const value = randomBytes(32).toString("base64")
    await writeFile(file, value, { mode: 0o600, flag: "wx" })
    return value
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok
  } catch {
    // Not listening yet: the caller polls again.
    return false
  }
}

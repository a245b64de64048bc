/**
 * `npm start`: the whole Cove stack on loopback with embedded defaults. Reads its settings,
 * checks them (and stack.yml, the ports, the binaries) before starting anything, prints where
 * everything is, and stops everything in order on Ctrl-C.
 */
import { join, resolve } from "node:path"
import { ConfigError, loadConfig, passThrough, processSource, redacted } from "../lib/config"
import { createLogger } from "../lib/log"
import { stackFields } from "../lib/settings"
import { findOnPath } from "./local/child"
import { NATS_INSTALL_HINT } from "./local/nats-server"
import { startStack } from "./local/stack"
import { loadStack } from "./stack"

const started = performance.now()
const source = processSource()
let config: ReturnType<typeof loadConfig<typeof stackFields>>
try {
  config = loadConfig(stackFields, source)
} catch (err) {
  fatal(err instanceof ConfigError ? err.message : String(err))
}
const log = createLogger({ name: "cove", level: config.logLevel })
log.debug({ config: redacted(stackFields, config) }, "configuration")

try {
  const stack = loadStack(resolve(config.stackFile))
  if (config.natsUrl === undefined && (await findOnPath(config.natsServerBin, config.path)) === undefined) {
    fatal(`${config.natsServerBin} was not found on PATH. ${NATS_INSTALL_HINT}`)
  }
  const running = await startStack({
    dataDir: config.dataDir,
    buildDir: resolve("build"),
    stack,
    gatewayPort: config.gatewayPort,
    edgePort: config.edgePort,
    webEdgeUrl: config.webEdgeUrl,
    natsPort: config.natsPort,
    pgPort: config.pgPort,
    s3Port: config.s3Port,
    natsUrl: config.natsUrl,
    natsCredentials: config,
    natsServerBin: config.natsServerBin,
    databaseUrl: config.databaseUrl,
    pgSchema: config.pgSchema,
    s3: {
      endpoint: config.s3Endpoint,
      region: config.s3Region,
      bucket: config.s3Bucket,
      accessKeyId: config.s3AccessKeyId,
      secretAccessKey: config.s3SecretAccessKey,
    },
    logLevel: config.logLevel,
    edgeEnv: passThrough(source, ["COVE_EDGE_", "COVE_ALLOWED_ORIGINS", "COVE_JWT_"]),
    durable: true,
    log,
  })
  const dataDir = resolve(config.dataDir)
  const where = (embedded: boolean, folder: string) =>
    embedded ? `embedded, data in ${join(dataDir, folder)}` : "external"
  const lines = [
    `Cove is up in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    `  functions  ${running.gatewayUrl}/function/<name>  (${stack.functions.map((f) => f.name).join(", ")})`,
    `  web app    ${running.gatewayUrl}/`,
    `  edge       ${running.edgeUrl}`,
    `  health     ${running.gatewayUrl}/_/health   ${running.edgeUrl.replace("ws:", "http:").replace("/v1/ws", "/healthz")}`,
    `  metrics    ${running.gatewayUrl}/metrics   ${running.edgeUrl.replace("ws:", "http:").replace("/v1/ws", "/metrics")}`,
    `  nats       ${running.natsUrl}  (${where(running.embedded.nats, "nats")})`,
    `  postgres   ${running.databaseUrl.replace(/:[^:@/]*@/, ":***@")}  (${where(running.embedded.postgres, "postgres")})`,
    `  s3         ${running.s3Endpoint} bucket ${config.s3Bucket}  (${where(running.embedded.s3, "s3")})`,
    "Press Ctrl-C to stop.",
  ]
  process.stdout.write(`${lines.join("\n")}\n`)

  let stopping = false
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) return
      stopping = true
      process.stdout.write(`Stopping Cove (${signal})...\n`)
      running.stop().then(
        () => {
          process.stdout.write("Cove stopped.\n")
          process.exit(0)
        },
        (err: unknown) => fatal(`stopping failed: ${String(err)}`),
      )
    })
  }
} catch (err) {
  log.debug({ err }, "start failed")
  fatal(err instanceof Error ? err.message : String(err))
}

function fatal(message: string): never {
  process.stderr.write(`cove: ${message}\n`)
  process.exit(1)
}

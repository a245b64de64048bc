/**
 * The edge process: config, logger, the edge (uWS, NATS, JWKS), then drain on SIGTERM.
 * The path of one connection: socket.ts (uWS) → server.ts (routes) → door.ts (origin, token,
 * revocations) → connections.ts → session.ts (frames → effects) → back out through socket.ts.
 */
import { loadConfig, processSource, redacted } from "../lib/config"
import { createLogger } from "../lib/log"
import { gatewayFields } from "../lib/settings"
import { type Edge, startEdge } from "./edge"

const config = loadConfig(gatewayFields, processSource())
const log = createLogger({ name: "edge", level: config.logLevel })
log.info({ config: redacted(gatewayFields, config) }, "starting")

let edge: Edge
try {
  edge = await startEdge(config, log)
} catch (err) {
  log.fatal({ err }, "the edge could not start")
  process.exit(1)
}
log.info({ host: config.host, port: edge.port }, "edge listening")

let stopping = false
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    log.info({ signal, connections: edge.openConnections() }, "draining")
    edge.drain().then(
      () => {
        log.info("drained")
        process.exit(0)
      },
      (err: unknown) => {
        log.error({ err }, "drain failed")
        process.exit(1)
      },
    )
  })
}

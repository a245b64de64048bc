/**
 * The connector on its own, for deployments with an OpenFaaS gateway (or plain containers
 * behind any HTTP router): NATS JetStream → POST /function/<name>.
 */
import { createServer } from "node:http"
import { connectNats } from "../../lib/adapters/nats"
import { loadConfig, processSource, redacted } from "../../lib/config"
import { createLogger } from "../../lib/log"
import { PROMETHEUS_CONTENT_TYPE, Registry } from "../../lib/metrics"
import { connectorFields } from "../../lib/settings"
import { loadStack } from "../stack"
import { startConnector } from "./connector"

const config = loadConfig(connectorFields, processSource())
const log = createLogger({ name: "connector", level: config.logLevel })
log.info({ config: redacted(connectorFields, config) }, "starting")
const stack = loadStack(config.stackFile)
const nc = await connectNats(config.natsUrl, "cove-connector", log, config)
const registry = new Registry()
const connector = await startConnector({ nc, stack, gatewayUrl: config.gatewayUrl, registry, log })

const http = createServer((req, res) => {
  if (req.url === "/metrics") {
    res.writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE }).end(registry.render())
  } else if (req.url === "/healthz") {
    const ok = !nc.isClosed()
    res.writeHead(ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ ok }))
  } else res.writeHead(404).end()
}).listen(config.metricsPort, "0.0.0.0")

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    log.info({ signal }, "stopping")
    http.close()
    connector
      .stop()
      .then(() => nc.drain())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, "stop failed")
          process.exit(1)
        },
      )
  })
}

/**
 * Entry of a function's container or local process: serves one bundle's handler.js over HTTP
 * as of-watchdog's upstream. Config, logger, handler, listen, drain on SIGTERM.
 */
import { createRequire } from "node:module"
import { resolve } from "node:path"
import { loadConfig, processSource } from "../config"
import { createLogger } from "../log"
import { functionServerFields } from "../settings"
import { parseBytes } from "../units"
import type { TemplateHandler } from "./contract"
import { serveHandler } from "./server"

const config = loadConfig(functionServerFields, processSource())
const log = createLogger({ name: "function-server", level: config.logLevel })
const maxBodyBytes = parseBytes(config.maxJsonSize)
if (maxBodyBytes === undefined)
  throw new Error(`MAX_JSON_SIZE=${config.maxJsonSize}: must be a size such as 100kb`)

const loaded = createRequire(import.meta.url)(resolve(config.handler)) as
  | TemplateHandler
  | { default: TemplateHandler }
const handler = typeof loaded === "function" ? loaded : loaded.default
const server = await serveHandler(handler, { host: config.host, port: config.port, maxBodyBytes, log })
log.info({ port: server.port, handler: config.handler, maxBodyBytes }, "function server listening")

let stopping = false
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    log.info({ signal }, "draining")
    server.drain(config.drainMs).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "drain failed")
        process.exit(1)
      },
    )
  })
}

import { pgFileNames, pgSearchIndex } from "../../lib/adapters/pg-search"
import { loadConfig, processSource } from "../../lib/config"
import { openPool } from "../../lib/function/connections"
import { defineFunction } from "../../lib/function/harness"
import { parseInput } from "../../lib/function/input"
import { createLogger } from "../../lib/log"
import { eventBatch } from "../../lib/protocol/events"
import { indexFields } from "../../lib/settings"
import { handle } from "./handler"

const config = loadConfig(indexFields, processSource())
const log = createLogger({ name: "index", level: config.logLevel })

export default defineFunction({
  name: "index",
  log,
  async ports() {
    // PostgreSQL only: the connector brings the events, nothing is published.
    const pool = openPool("index", config, log)
    return { pool, index: pgSearchIndex(pool), files: pgFileNames(pool) }
  },
  close: (ports) => ports.pool.end(),
  routes: [
    ["POST", "/", async (req, ports) => ({ body: await handle(parseInput(eventBatch, req.body), ports) })],
  ],
})

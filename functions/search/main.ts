import { createPool } from "../../lib/adapters/pg"
import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgSearchStore } from "../../lib/adapters/pg-search"
import { loadConfig, processSource } from "../../lib/config"
import { defineFunction } from "../../lib/function/harness"
import { createLogger } from "../../lib/log"
import { searchFields } from "../../lib/settings"
import { type Ports, routes } from "./routes"

const config = loadConfig(searchFields, processSource())
const log = createLogger({ name: "search", level: config.logLevel })

export default defineFunction<Ports & { pool: ReturnType<typeof createPool> }>({
  name: "search",
  log,
  async ports() {
    // PostgreSQL only (a read replica will do: nothing is written).
    const pool = createPool({
      url: config.databaseUrl,
      schema: config.pgSchema,
      maxConnections: config.pgPoolMax,
      applicationName: "cove-search",
      onIdleError: (err) => log.warn({ err }, "idle PostgreSQL connection failed; it will be replaced"),
    })
    return {
      pool,
      search: pgSearchStore(pool),
      conversations: pgConversationStore(pool),
      auth: pgAuthenticator(pool, { issuer: config.issuer, audience: config.audience }),
      maxQueryChars: config.maxQueryChars,
      windowMin: config.windowMin,
      now: () => new Date(),
    }
  },
  close: (ports) => ports.pool.end(),
  routes,
})

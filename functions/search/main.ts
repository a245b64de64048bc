import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgSearchStore } from "../../lib/adapters/pg-search"
import { loadConfig, processSource } from "../../lib/config"
import { openPool } from "../../lib/function/connections"
import { defineFunction } from "../../lib/function/harness"
import { createLogger } from "../../lib/log"
import { searchFields } from "../../lib/settings"
import { type Ports, routes } from "./routes"

const config = loadConfig(searchFields, processSource())
const log = createLogger({ name: "search", level: config.logLevel })

export default defineFunction<Ports & { pool: ReturnType<typeof openPool> }>({
  name: "search",
  log,
  async ports() {
    // PostgreSQL only (a read replica will do: nothing is written).
    const pool = openPool("search", config, log)
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

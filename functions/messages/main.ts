import { connectNats } from "../../lib/adapters/nats"
import { natsInboundLog } from "../../lib/adapters/nats-inbound"
import { createPool } from "../../lib/adapters/pg"
import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgHistoryStore } from "../../lib/adapters/pg-messages"
import { loadConfig, processSource } from "../../lib/config"
import { defineFunction } from "../../lib/function/harness"
import { createLogger } from "../../lib/log"
import { messagesFields } from "../../lib/settings"
import { routes } from "./routes"

const config = loadConfig(messagesFields, processSource())
const log = createLogger({ name: "messages", level: config.logLevel })

export default defineFunction({
  name: "messages",
  log,
  async ports() {
    const pool = createPool({
      url: config.databaseUrl,
      schema: config.pgSchema,
      maxConnections: config.pgPoolMax,
      applicationName: "cove-messages",
    })
    const nc = await connectNats(config.natsUrl, "cove-messages", log)
    return {
      pool,
      nc,
      history: pgHistoryStore(pool),
      conversations: pgConversationStore(pool),
      inbound: natsInboundLog(nc),
      auth: pgAuthenticator(pool, { issuer: config.issuer, audience: config.audience }),
      now: () => new Date(),
    }
  },
  async close(ports) {
    await ports.nc.drain()
    await ports.pool.end()
  },
  routes,
})

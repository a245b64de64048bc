import { natsInboundLog } from "../../lib/adapters/nats-inbound"
import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgHistoryStore } from "../../lib/adapters/pg-messages"
import { loadConfig, processSource } from "../../lib/config"
import { closeConnections, type FunctionConnections, openConnections } from "../../lib/function/connections"
import { defineFunction } from "../../lib/function/harness"
import { createLogger } from "../../lib/log"
import { messagesFields } from "../../lib/settings"
import { type Ports, routes } from "./routes"

const config = loadConfig(messagesFields, processSource())
const log = createLogger({ name: "messages", level: config.logLevel })

export default defineFunction<Ports & FunctionConnections>({
  name: "messages",
  log,
  async ports() {
    const { pool, nc } = await openConnections("messages", config, log)
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
  close: closeConnections,
  routes,
})

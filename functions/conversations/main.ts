import { randomBytes } from "node:crypto"
import { natsMembershipBus } from "../../lib/adapters/nats-membership"
import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { loadConfig, processSource } from "../../lib/config"
import { closeConnections, type FunctionConnections, openConnections } from "../../lib/function/connections"
import { defineFunction } from "../../lib/function/harness"
import { createLogger } from "../../lib/log"
import { conversationsFields } from "../../lib/settings"
import { type Ports, routes } from "./routes"

const config = loadConfig(conversationsFields, processSource())
const log = createLogger({ name: "conversations", level: config.logLevel })

export default defineFunction<Ports & FunctionConnections>({
  name: "conversations",
  log,
  async ports() {
    const { pool, nc } = await openConnections("conversations", config, log)
    return {
      pool,
      nc,
      conversations: pgConversationStore(pool),
      membership: natsMembershipBus(nc),
      auth: pgAuthenticator(pool, { issuer: config.issuer, audience: config.audience }),
      maxMembers: config.maxMembers,
      now: () => new Date(),
      // 128 random bits in the subject-safe alphabet.
      newId: () => randomBytes(16).toString("base64url"),
    }
  },
  close: closeConnections,
  routes,
})

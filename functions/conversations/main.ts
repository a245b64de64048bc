import { randomBytes } from "node:crypto"
import { natsConversationUpdates } from "../../lib/adapters/nats-conversation-updates"
import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import type { ControlOutboxRelay } from "../../lib/adapters/pg-control-outbox"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { loadConfig, processSource } from "../../lib/config"
import {
  closeConnections,
  type FunctionConnections,
  openConnections,
  openControlOutbox,
} from "../../lib/function/connections"
import { defineFunction } from "../../lib/function/harness"
import { createLogger } from "../../lib/log"
import { conversationsFields } from "../../lib/settings"
import { type Ports, routes } from "./routes"

const config = loadConfig(conversationsFields, processSource())
const log = createLogger({ name: "conversations", level: config.logLevel })

export default defineFunction<Ports & FunctionConnections & { control: ControlOutboxRelay }>({
  name: "conversations",
  log,
  async ports() {
    const connections = await openConnections("conversations", config, log)
    const { pool, nc } = connections
    return {
      ...connections,
      conversations: pgConversationStore(pool),
      control: openControlOutbox(connections, log, ["membership"]),
      updates: natsConversationUpdates(nc),
      auth: pgAuthenticator(pool, { issuer: config.issuer, audience: config.audience }),
      maxMembers: config.maxMembers,
      now: () => new Date(),
      // 128 random bits in the subject-safe alphabet.
      newId: () => randomBytes(16).toString("base64url"),
    }
  },
  async close(p) {
    p.control.stop()
    await closeConnections(p)
  },
  routes,
})

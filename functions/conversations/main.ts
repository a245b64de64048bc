import { randomBytes } from "node:crypto"
import { connectNats } from "../../lib/adapters/nats"
import { natsMembershipBus } from "../../lib/adapters/nats-membership"
import { createPool } from "../../lib/adapters/pg"
import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { loadConfig, processSource } from "../../lib/config"
import { defineFunction } from "../../lib/function/harness"
import { createLogger } from "../../lib/log"
import { conversationsFields } from "../../lib/settings"
import { routes } from "./routes"

const config = loadConfig(conversationsFields, processSource())
const log = createLogger({ name: "conversations", level: config.logLevel })

export default defineFunction({
  name: "conversations",
  log,
  async ports() {
    const pool = createPool({
      url: config.databaseUrl,
      schema: config.pgSchema,
      maxConnections: config.pgPoolMax,
      applicationName: "cove-conversations",
    })
    const nc = await connectNats(config.natsUrl, "cove-conversations", log)
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
  async close(ports) {
    await ports.nc.drain()
    await ports.pool.end()
  },
  routes,
})

import { randomBytes } from "node:crypto"
import { natsFileEvents } from "../../lib/adapters/nats-files"
import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgFileStore } from "../../lib/adapters/pg-files"
import { ensureBucket } from "../../lib/adapters/s3"
import { s3ObjectStore } from "../../lib/adapters/s3-objects"
import { loadConfig, processSource } from "../../lib/config"
import {
  closeConnections,
  type FunctionConnections,
  openConnections,
  openS3,
} from "../../lib/function/connections"
import { defineFunction } from "../../lib/function/harness"
import { createLogger } from "../../lib/log"
import { filesFields } from "../../lib/settings"
import { sweepSchedule } from "./handler"
import { type Ports, routes } from "./routes"

const config = loadConfig(filesFields, processSource())
const log = createLogger({ name: "files", level: config.logLevel })

export default defineFunction<Ports & FunctionConnections>({
  name: "files",
  log,
  async ports() {
    const s3 = openS3(config)
    // The bucket, its CORS rules, lifecycle and encryption, once per cold start (idempotent).
    const bucket = await ensureBucket(s3, config.s3Bucket, config.corsOrigins ?? [], {
      abortIncompleteMultipartDays: Math.max(1, Math.ceil(config.pendingMaxAgeSeconds / 86_400)),
      encryption: config.encryption,
    })
    if (bucket.encryption === "unsupported")
      log.warn("the S3 store refused default encryption: files are stored unencrypted")
    if (bucket.lifecycle === "unsupported")
      log.warn("the S3 store refused a lifecycle rule: only the sweep removes stale uploads")
    const { pool, nc } = await openConnections("files", config, log)
    const schedule = sweepSchedule(config.sweepIntervalSeconds * 1000)
    return {
      pool,
      nc,
      files: pgFileStore(pool),
      objects: s3ObjectStore(s3, config.s3Bucket),
      events: natsFileEvents(nc),
      conversations: pgConversationStore(pool),
      auth: pgAuthenticator(pool, { issuer: config.issuer, audience: config.audience }),
      limits: config,
      now: () => new Date(),
      // 128 random bits in the safe alphabet: object keys derive from it alone.
      newId: () => randomBytes(16).toString("base64url"),
      sweepDue: (now) => schedule.due(now),
    }
  },
  close: closeConnections,
  routes,
})

import type { ControlOutboxRelay } from "../../lib/adapters/pg-control-outbox"
import { loadConfig, processSource, redacted } from "../../lib/config"
import {
  closeConnections,
  type FunctionConnections,
  openConnections,
  openControlOutbox,
} from "../../lib/function/connections"
import { defineFunction } from "../../lib/function/harness"
import { createLogger } from "../../lib/log"
import { authFields } from "../../lib/settings"
import { composeAuthPorts } from "./compose"
import { createPasswordHasher } from "./passwords"
import type { AuthPorts } from "./ports"
import { authRoutes } from "./routes"
import { ensureSigningKey } from "./sessions"
import { parseKeyEncryptionKey } from "./signing-keys"

const config = loadConfig(authFields, processSource())
const log = createLogger({ name: "auth", level: config.logLevel })
const kek = parseKeyEncryptionKey(config.keyEncryptionKey)
log.info({ config: redacted(authFields, config) }, "auth function configured")

export default defineFunction<AuthPorts & FunctionConnections & { control: ControlOutboxRelay }>({
  name: "auth",
  log,
  async ports() {
    const connections = await openConnections("auth", config, log)
    const control = openControlOutbox(connections, log, ["revoked"])
    const ports = composeAuthPorts({
      pool: connections.pool,
      control,
      passwords: createPasswordHasher({
        params: { N: config.scryptN, r: config.scryptR, p: config.scryptP },
        concurrency: config.hashConcurrency,
        queueMax: config.hashQueueMax,
      }),
      settings: {
        issuer: config.issuer,
        audience: config.audience,
        accessTtlSeconds: config.accessTtlSeconds,
        refreshTtlSeconds: config.refreshTtlSeconds,
        registration: config.registration,
        kek,
        throttle: {
          accountFree: config.loginAccountFree,
          addressFree: config.loginAddressFree,
          baseDelayMs: config.loginBaseDelayMs,
          maxDelayMs: config.loginMaxDelayMs,
          windowMs: config.loginWindowMs,
        },
      },
    })
    // The first start of the first instance makes the signing key (docs/auth.md, key rotation).
    await ensureSigningKey(ports)
    return { ...ports, ...connections, control }
  },
  async close(p) {
    p.control.stop()
    await closeConnections(p)
  },
  routes: authRoutes,
})

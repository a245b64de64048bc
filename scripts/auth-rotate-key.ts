/**
 * Rotates the token signing key without an admin token: for a scheduled rotation, or right after
 * deploying a new key-encryption key (which cannot open keys sealed with the old one).
 * `DATABASE_URL=... AUTH_KEY_ENCRYPTION_KEY=... npx tsx scripts/auth-rotate-key.ts`
 */
import { rotateSigningKey } from "../functions/auth/admin"
import { parseKeyEncryptionKey } from "../functions/auth/signing-keys"
import { createPool } from "../lib/adapters/pg"
import { pgSigningKeyStore } from "../lib/adapters/pg-signing-keys"
import { loadConfig, processSource } from "../lib/config"
import { createLogger } from "../lib/log"
import { authFields } from "../lib/settings"

const { logLevel, databaseUrl, pgSchema, keyEncryptionKey, accessTtlSeconds } = authFields
const config = loadConfig(
  { logLevel, databaseUrl, pgSchema, keyEncryptionKey, accessTtlSeconds },
  processSource(),
)
const log = createLogger({ name: "auth-rotate-key", level: config.logLevel })
const pool = createPool({
  url: config.databaseUrl,
  schema: config.pgSchema,
  maxConnections: 1,
  applicationName: "cove-auth-rotate-key",
  onIdleError: (err) => log.warn({ err }, "idle PostgreSQL connection failed; it will be replaced"),
})
try {
  const rotated = await rotateSigningKey({
    keys: pgSigningKeyStore(pool),
    now: () => new Date(),
    settings: {
      kek: parseKeyEncryptionKey(config.keyEncryptionKey),
      accessTtlSeconds: config.accessTtlSeconds,
    },
  })
  log.info(rotated, "signing key rotated")
} finally {
  await pool.end()
}

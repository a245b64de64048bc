/** `npm run migrate` (and `node build/migrate.mjs` in production): applies pending migrations. */
import { join } from "node:path"
import pg from "pg"
import { loadConfig, processSource } from "../../lib/config"
import { createLogger } from "../../lib/log"
import { functionFields } from "../../lib/settings"
import { migrate, readMigrations } from "./migrate"

const config = loadConfig(
  {
    logLevel: functionFields.logLevel,
    databaseUrl: functionFields.databaseUrl,
    pgSchema: functionFields.pgSchema,
  },
  processSource(),
)
const log = createLogger({ name: "migrate", level: config.logLevel })
// Next to the bundle (build/migrations) or in the source tree (infra/migrations/sql).
const dir = import.meta.url.includes("/build/")
  ? join(import.meta.dirname, "migrations")
  : join(import.meta.dirname, "sql")
const client = new pg.Client({ connectionString: config.databaseUrl })
await client.connect()
try {
  const applied = await migrate(client, {
    schema: config.pgSchema,
    migrations: await readMigrations(dir),
    log,
  })
  log.info(
    { applied, schema: config.pgSchema },
    applied.length === 0 ? "schema is current" : "migrations applied",
  )
} finally {
  await client.end()
}

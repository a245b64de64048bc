/** `npm run migrate` (and `node build/migrate.mjs` in production): applies pending migrations. */
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import pg from "pg"
import { loadConfig, processSource } from "../../lib/config"
import { createLogger } from "../../lib/log"
import { migrateFields } from "../../lib/settings"
import { migrate, readMigrations } from "./migrate"

const config = loadConfig(migrateFields, processSource())
const log = createLogger({ name: "migrate", level: config.logLevel })
const databaseUrl = config.databaseUrl ?? (await runningStackDatabase(config.dataDir))
// Next to the bundle (build/migrations) or in the source tree (infra/migrations/sql).
const dir = import.meta.url.includes("/build/")
  ? join(import.meta.dirname, "migrations")
  : join(import.meta.dirname, "sql")
const client = new pg.Client({ connectionString: databaseUrl })
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

/** Without DATABASE_URL, the PostgreSQL of the `npm start` stack running on this data folder. */
async function runningStackDatabase(dataDir: string): Promise<string> {
  try {
    const info = JSON.parse(await readFile(join(dataDir, "stack.json"), "utf8")) as { databaseUrl: string }
    return info.databaseUrl
  } catch (err) {
    throw new Error(
      `DATABASE_URL is not set and no running stack was found in ${dataDir}: set DATABASE_URL, or run npm start`,
      {
        cause: err,
      },
    )
  }
}

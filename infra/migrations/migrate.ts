/**
 * Applies the versioned SQL files in infra/migrations/sql (NNNN_name.sql) in order. Safe to run
 * twice and from several processes at once: an advisory lock serialises runners, each file runs
 * in its own transaction (a failure leaves the schema as it was), and an applied file whose
 * content changed is refused rather than silently skipped.
 */
import { createHash } from "node:crypto"
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import type pg from "pg"
import { quoteIdentifier } from "../../lib/adapters/pg"
import type { Logger } from "../../lib/log"

export type Migration = {
  readonly version: number
  readonly name: string
  readonly sql: string
  readonly checksum: string
}

export class MigrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = "MigrationError"
  }
}

export async function readMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort()
  const migrations: Migration[] = []
  for (const file of files) {
    const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file)
    if (m === null) throw new MigrationError(`${join(dir, file)}: migration files are named NNNN_name.sql`)
    const sql = await readFile(join(dir, file), "utf8")
    const version = Number(m[1])
    if (migrations.some((x) => x.version === version))
      throw new MigrationError(`two migrations have version ${version}`)
    migrations.push({
      version,
      name: m[2] as string,
      sql,
      checksum: createHash("sha256").update(sql).digest("hex"),
    })
  }
  return migrations
}

/** Returns the versions it applied (empty when the schema was already current). */
export async function migrate(
  client: pg.ClientBase,
  options: { schema: string; migrations: readonly Migration[]; log: Logger },
): Promise<number[]> {
  const schema = quoteIdentifier(options.schema)
  const applied: number[] = []
  // One lock per schema, so that tests with their own schemas do not wait for each other.
  await client.query("SELECT pg_advisory_lock(hashtext($1))", [`cove.migrate.${options.schema}`])
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await client.query(`SET search_path TO ${schema}`)
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`)
    const { rows } = await client.query<{ version: number; checksum: string }>(
      "SELECT version, checksum FROM schema_migrations",
    )
    const done = new Map(rows.map((r) => [r.version, r.checksum]))
    for (const m of options.migrations) {
      const checksum = done.get(m.version)
      if (checksum !== undefined) {
        if (checksum !== m.checksum) {
          throw new MigrationError(
            `migration ${m.version}_${m.name} was changed after it was applied; add a new migration instead`,
          )
        }
        continue
      }
      const started = performance.now()
      try {
        await client.query("BEGIN")
        await client.query(m.sql)
        await client.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
          m.version,
          m.name,
          m.checksum,
        ])
        await client.query("COMMIT")
      } catch (err) {
        await client.query("ROLLBACK")
        throw new MigrationError(
          `migration ${m.version}_${m.name} failed and was rolled back: ${(err as Error).message}`,
          {
            cause: err,
          },
        )
      }
      applied.push(m.version)
      options.log.info(
        { version: m.version, name: m.name, ms: Math.round(performance.now() - started) },
        "migration applied",
      )
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtext($1))", [`cove.migrate.${options.schema}`])
  }
  return applied
}

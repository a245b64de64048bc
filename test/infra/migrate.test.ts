import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import t from "tap"
import { MigrationError, migrate, readMigrations } from "../../infra/migrations/migrate"
import { repoRoot } from "../support/bundles"
import { testLog, withPostgres } from "../support/servers"

t.test("migrations", async (t) => {
  const server = await withPostgres(t)
  const client = async () => {
    const c = new pg.Client({ connectionString: server.url })
    await c.connect()
    t.teardown(() => c.end())
    return c
  }
  const migrations = await readMigrations(join(repoRoot, "infra/migrations/sql"))
  t.ok(migrations.length >= 1)

  t.test("apply once, even from two processes at the same time, and again is a no-op", async (t) => {
    const [a, b] = await Promise.all([client(), client()])
    const results = await Promise.all([
      migrate(a, { schema: "race", migrations, log: testLog }),
      migrate(b, { schema: "race", migrations, log: testLog }),
    ])
    t.same(
      [...results[0], ...results[1]].sort(),
      migrations.map((m) => m.version).sort(),
      "each version applied by exactly one",
    )
    t.same(await migrate(a, { schema: "race", migrations, log: testLog }), [])
    const { rows } = await a.query("SELECT count(*)::int AS n FROM race.schema_migrations")
    t.equal(rows[0].n, migrations.length)
  })

  t.test("a failing migration leaves the schema as it was", async (t) => {
    const c = await client()
    const dir = await mkdtemp(join(tmpdir(), "cove-mig-"))
    await writeFile(join(dir, "0001_ok.sql"), "CREATE TABLE a (x int);")
    await writeFile(
      join(dir, "0002_bad.sql"),
      "CREATE TABLE b (x int); INSERT INTO b VALUES ('not a number');",
    )
    await t.rejects(
      migrate(c, { schema: "broken", migrations: await readMigrations(dir), log: testLog }),
      MigrationError,
    )
    const { rows } = await c.query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'broken' ORDER BY table_name",
    )
    t.same(
      rows.map((r) => r.table_name),
      ["a", "schema_migrations"],
      "table b was rolled back with its migration",
    )
    const versions = await c.query("SELECT version FROM broken.schema_migrations")
    t.same(versions.rows, [{ version: 1 }])
  })

  t.test("an applied migration that was edited is refused", async (t) => {
    const c = await client()
    const dir = await mkdtemp(join(tmpdir(), "cove-mig-"))
    await writeFile(join(dir, "0001_ok.sql"), "CREATE TABLE a (x int);")
    await migrate(c, { schema: "edited", migrations: await readMigrations(dir), log: testLog })
    await writeFile(join(dir, "0001_ok.sql"), "CREATE TABLE a (x bigint);")
    await t.rejects(
      migrate(c, { schema: "edited", migrations: await readMigrations(dir), log: testLog }),
      /was changed/,
    )
  })

  t.test("badly named files are refused", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "cove-mig-"))
    await writeFile(join(dir, "1_oops.sql"), "SELECT 1;")
    await t.rejects(readMigrations(dir), /NNNN_name\.sql/)
  })
})

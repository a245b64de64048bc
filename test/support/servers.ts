/**
 * Real servers for tests: nats-server with JetStream, PostgreSQL and an S3 store on free
 * loopback ports with temporary folders, started once per test file and stopped in teardown.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import type { Test } from "tap"
import { type LocalNats, startNats } from "../../infra/local/nats-server"
import { freePort } from "../../infra/local/ports"
import { type LocalPostgres, startPostgres } from "../../infra/local/postgres-server"
import { EMBEDDED_S3_CREDENTIALS, type LocalS3, startS3 } from "../../infra/local/s3-server"
import { migrate, readMigrations } from "../../infra/migrations/migrate"
import { createPool } from "../../lib/adapters/pg"
import { createLogger } from "../../lib/log"

export const testLog = createLogger({
  name: "test",
  level: (process.env.TEST_LOG_LEVEL as "silent") ?? "silent",
})

const repoRoot = join(import.meta.dirname, "..", "..")

async function tempDir(t: Test, name: string): Promise<string> {
  // Under /tmp, so that the postgres user can reach it when tests run as root.
  const dir = await mkdtemp(join(tmpdir(), `cove-${name}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export async function withNats(t: Test): Promise<LocalNats> {
  const nats = await startNats({ port: await freePort(), storeDir: await tempDir(t, "nats"), log: testLog })
  t.teardown(() => nats.stop())
  return nats
}

export async function withPostgres(t: Test): Promise<LocalPostgres> {
  const server = await startPostgres({
    port: await freePort(),
    dataDir: await tempDir(t, "pg"),
    log: testLog,
    durable: false,
  })
  t.teardown(() => server.stop())
  return server
}

export async function withS3(t: Test): Promise<LocalS3 & { credentials: typeof EMBEDDED_S3_CREDENTIALS }> {
  const s3 = await startS3({ port: await freePort(), directory: await tempDir(t, "s3") })
  t.teardown(() => s3.stop())
  return { ...s3, credentials: EMBEDDED_S3_CREDENTIALS }
}

let schemaCounter = 0

/** A fresh schema with every migration applied, and a pool whose search_path is that schema. */
export async function withSchema(t: Test, server: LocalPostgres): Promise<{ schema: string; pool: pg.Pool }> {
  const schema = `t${process.pid}_${++schemaCounter}`
  const client = new pg.Client({ connectionString: server.url })
  await client.connect()
  try {
    await migrate(client, {
      schema,
      migrations: await readMigrations(join(repoRoot, "infra/migrations/sql")),
      log: testLog,
    })
  } finally {
    await client.end()
  }
  const pool = new pg.Pool({ connectionString: server.url, options: `-c search_path=${schema}`, max: 5 })
  // Teardown stops the server before this pool ends: idle connections are then told
  // "terminating connection due to administrator command", which is expected here.
  pool.on("error", (err: Error & { code?: string }) => {
    if (err.code !== "57P01") throw err
  })
  t.teardown(() => pool.end())
  return { schema, pool }
}

/**
 * A second pool on a schema of withSchema, in pipeline mode as the persist function makes it:
 * queued statements go out together (lib/adapters/pg-transaction.ts).
 */
export function pipelinedPool(t: Test, server: LocalPostgres, schema: string, max = 3): pg.Pool {
  // Made as the functions make theirs, settings included.
  const pool = createPool({
    url: server.url,
    schema,
    maxConnections: max,
    applicationName: "cove-test",
    pipeline: true,
    onIdleError: (err: Error & { code?: string }) => {
      if (err.code !== "57P01") throw err
    },
  })
  t.teardown(() => pool.end())
  return pool
}

/** Polls `check` until it returns a value other than undefined, or fails at the deadline. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  deadlineMs = 10_000,
): Promise<T> {
  const started = Date.now()
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() - started > deadlineMs)
      throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, delay))
  }
}

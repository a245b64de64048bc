import type { Socket } from "node:net"
import type pg from "pg"

/** Runs `work` in one transaction on one pooled connection; rolls back if it throws. */
export function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return onConnection(pool, async (client) => {
    await client.query("BEGIN")
    const result = await work(client)
    await client.query("COMMIT")
    return result
  })
}

/**
 * Runs `work`, which opens and ends a transaction, on one pooled connection. If it throws, the
 * transaction is rolled back, and a connection that cannot even roll back is discarded.
 */
async function onConnection<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    return await work(client)
  } catch (err) {
    broken = await rollback(client)
    throw err
  } finally {
    client.release(broken)
  }
}

/**
 * Rolls back after a failure; answers the rollback's own error, if any, so the caller releases
 * (discards) that connection. The original error is what the caller throws.
 */
async function rollback(client: pg.PoolClient): Promise<Error | undefined> {
  try {
    // Also after a failed pipelined write: then there is no transaction left and PostgreSQL only warns.
    await client.query("ROLLBACK")
    return undefined
  } catch (rollbackErr) {
    return rollbackErr as Error
  }
}

/**
 * Serialises a critical section across every instance until the transaction ends. The key
 * includes the schema, so that separate installations (and test schemas) do not wait for each other.
 */
export async function advisoryXactLock(client: pg.PoolClient, name: string): Promise<void> {
  await client.query("SELECT pg_advisory_xact_lock(hashtext($1 || '.' || current_schema()))", [name])
}

/**
 * `name` makes it a prepared statement, parsed once per connection instead of on every run. Only
 * for statements whose text never varies (values go in parameters). It is still planned on every
 * run (the pools set plan_cache_mode=force_custom_plan, lib/adapters/pg.ts), for the tables as
 * they are then.
 */
export type Statement = {
  readonly text: string
  readonly values?: readonly unknown[]
  readonly name?: string
}

/**
 * node-postgres writes each protocol message of a statement (parse, bind, describe, execute,
 * sync) with its own socket write, so a pipelined transaction step cost about twenty system
 * calls. Corked, what `submit` sends leaves in one write. A no-op if the client's internals
 * ever differ (only the number of writes depends on it).
 */
function corked<T>(client: pg.PoolClient, submit: () => T): T {
  const stream = (client as unknown as { connection?: { stream?: Partial<Pick<Socket, "cork" | "uncork">> } })
    .connection?.stream
  stream?.cork?.()
  try {
    return submit()
  } finally {
    stream?.uncork?.()
  }
}

function run(client: pg.PoolClient, s: Statement): Promise<pg.QueryResult> {
  return s.name === undefined
    ? client.query(s.text, s.values as unknown[] | undefined)
    : client.query({ name: s.name, text: s.text, values: (s.values ?? []) as unknown[] })
}

/**
 * Runs statements in order. On a pool made with `pipeline: true` they are written together and
 * cost one round trip; otherwise one round trip each. Every result is awaited, so a failure is
 * reported once and none is left unhandled.
 */
export async function queryAll(
  client: pg.PoolClient,
  statements: readonly Statement[],
): Promise<pg.QueryResult[]> {
  if ((client as pg.PoolClient & { pipeline?: boolean }).pipeline === true)
    return Promise.all(corked(client, () => statements.map((s) => run(client, s))))
  const results: pg.QueryResult[] = []
  for (const s of statements) results.push(await corked(client, () => run(client, s)))
  return results
}

/** The two steps of a read-then-write transaction, each one round trip on a pipelined pool. */
export type TwoStepTransaction = {
  /** Opens the transaction and runs the reads, in the same round trip. */
  read(statements: readonly Statement[]): Promise<pg.QueryResult[]>
  /** Runs the writes and commits, in the same round trip; the results are those of the writes. */
  writeAndCommit(statements: readonly Statement[]): Promise<pg.QueryResult[]>
}

/**
 * A transaction in two round trips (BEGIN + reads, writes + COMMIT) instead of one per
 * statement: each round trip wakes two processes, and on a busy machine each wake-up waits for
 * a core, so round trips rather than work made up most of the sequencer's batch time
 * (docs/benchmarks.md). If a write fails,
 * the COMMIT sent behind it ends the aborted transaction without committing anything (PostgreSQL
 * answers ROLLBACK), and the error is thrown. `work` must call read once, then writeAndCommit once.
 */
export function inTwoStepTransaction<T>(
  pool: pg.Pool,
  work: (tx: TwoStepTransaction) => Promise<T>,
): Promise<T> {
  return onConnection(pool, async (client) => {
    let committed = false
    const result = await work({
      async read(statements) {
        return (await queryAll(client, [{ text: "BEGIN" }, ...statements])).slice(1)
      },
      async writeAndCommit(statements) {
        const results = await queryAll(client, [...statements, { text: "COMMIT" }])
        committed = true
        return results.slice(0, -1)
      },
    })
    if (!committed) throw new Error("inTwoStepTransaction: work returned without committing")
    return result
  })
}

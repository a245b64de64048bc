import type pg from "pg"

/** Runs `work` in one transaction on one pooled connection; rolls back if it throws. */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query("BEGIN")
    const result = await work(client)
    await client.query("COMMIT")
    return result
  } catch (err) {
    try {
      await client.query("ROLLBACK")
    } catch (rollbackErr) {
      // The original error is what the caller needs; this connection is discarded below.
      broken = rollbackErr as Error
    }
    throw err
  } finally {
    client.release(broken)
  }
}

/**
 * Serialises a critical section across every instance until the transaction ends. The key
 * includes the schema, so that separate installations (and test schemas) do not wait for each other.
 */
export async function advisoryXactLock(client: pg.PoolClient, name: string): Promise<void> {
  await client.query("SELECT pg_advisory_xact_lock(hashtext($1 || '.' || current_schema()))", [name])
}

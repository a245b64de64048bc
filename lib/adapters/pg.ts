import pg from "pg"

export type PgSettings = {
  readonly url: string
  /** Every table of Cove lives in this schema; tests give each run its own. */
  readonly schema: string
  readonly maxConnections: number
  readonly applicationName: string
  /** An idle connection that failed (server restart, network); the next query reconnects. */
  readonly onIdleError: (err: Error) => void
  /**
   * Write queued statements without waiting for each answer (one round trip for many; see
   * queryAll in pg-transaction.ts). Only for code that queues on purpose: a pipelined
   * connection refuses cursors.
   */
  readonly pipeline?: boolean
}

/** A pool whose connections all use Cove's schema. Connections open on first use. */
export function createPool(settings: PgSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.url,
    max: settings.maxConnections,
    application_name: settings.applicationName,
    // Named (prepared) statements are still planned on every run, for the tables as they are
    // then: a generic plan made while a table was small (a sequential scan) would otherwise be
    // kept as it grows. Measured: 7.8 ms instead of 0.07 ms per lookup in 50,000 messages.
    options: `-c search_path=${settings.schema} -c plan_cache_mode=force_custom_plan`,
    idleTimeoutMillis: 30_000,
    pipeline: settings.pipeline === true,
  })
  // Without a listener an idle client's error would crash the process; the pool replaces it.
  pool.on("error", settings.onIdleError)
  return pool
}

/** Schema names reach SQL as identifiers: they are validated, then quoted. */
export function quoteIdentifier(name: string): string {
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid SQL identifier: ${name}`)
  return `"${name}"`
}

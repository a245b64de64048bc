/**
 * `npm run search:rebuild`: re-indexes every message for search, in batches, with progress on
 * stdout. Reads DATABASE_URL (or the database-url secret) and PG_SCHEMA like every function.
 * Safe while Cove runs; safe to interrupt and run again.
 */
import { rebuild } from "../functions/index/rebuild"
import { createPool } from "../lib/adapters/pg"
import { pgFileNames, pgSearchIndex, pgSearchSource } from "../lib/adapters/pg-search"
import { loadConfig, processSource } from "../lib/config"
import { indexFields } from "../lib/settings"

const batchSize = Number(process.argv[2] ?? "2000")
if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
  process.stderr.write("usage: npm run search:rebuild [-- <batch size, 1-10000, default 2000>]\n")
  process.exit(2)
}
const config = loadConfig(indexFields, processSource())
const pool = createPool({
  url: config.databaseUrl,
  schema: config.pgSchema,
  maxConnections: 2,
  applicationName: "cove-search-rebuild",
  onIdleError: (err) => process.stderr.write(`idle PostgreSQL connection failed: ${err.message}\n`),
})
const line = (p: { done: number; total: number; ms: number }) => {
  const rate = p.ms > 0 ? Math.round((p.done / p.ms) * 1000) : 0
  const percent = p.total > 0 ? ((100 * p.done) / p.total).toFixed(1) : "100.0"
  return `indexed ${p.done} of ${p.total} messages (${percent}%), ${rate} msg/s`
}
try {
  const result = await rebuild(
    { source: pgSearchSource(pool), index: pgSearchIndex(pool), files: pgFileNames(pool) },
    { batchSize, onProgress: (p) => process.stdout.write(`${line(p)}\n`) },
  )
  process.stdout.write(`done: ${line(result)} in ${(result.ms / 1000).toFixed(1)} s\n`)
} finally {
  await pool.end()
}

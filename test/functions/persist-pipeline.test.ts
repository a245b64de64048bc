/**
 * The sequencer's two-round-trip transaction on a pipelined pool (lib/adapters/pg-transaction.ts):
 * a write that fails behind which COMMIT was already sent commits nothing, the error reaches the
 * caller, and the connection serves the next transaction.
 */
import t from "tap"
import { inTwoStepTransaction, queryAll } from "../../lib/adapters/pg-transaction"
import { pipelinedPool, withPostgres, withSchema } from "../support/servers"

t.test("a failed pipelined write commits nothing and leaves the connection usable", async (t) => {
  const server = await withPostgres(t)
  const { pool, schema } = await withSchema(t, server)
  await pool.query("CREATE TABLE pipeline_probe (id int PRIMARY KEY)")
  // One connection, so the second transaction runs on the connection the first one left.
  const pipelined = pipelinedPool(t, server, schema, 1)

  const failed = inTwoStepTransaction(pipelined, async (tx) => {
    const [read] = await tx.read([{ text: "SELECT count(*)::int AS n FROM pipeline_probe" }])
    t.same(read?.rows, [{ n: 0 }])
    await tx.writeAndCommit([
      { text: "INSERT INTO pipeline_probe VALUES (1)" },
      { text: "INSERT INTO pipeline_probe VALUES (1)" },
      { text: "INSERT INTO pipeline_probe VALUES (2)" },
    ])
  })
  await t.rejects(failed, { code: "23505" }, "the duplicate key error is the one reported")
  t.same((await pool.query("SELECT id FROM pipeline_probe")).rows, [], "nothing of the batch was committed")

  const stored = await inTwoStepTransaction(pipelined, async (tx) => {
    await tx.read([{ text: "SELECT 1" }])
    const [inserted] = await tx.writeAndCommit([
      { text: "INSERT INTO pipeline_probe VALUES ($1), ($2) RETURNING id", values: [3, 4] },
    ])
    return inserted?.rows.map((r) => r.id)
  })
  t.same(stored, [3, 4])
  t.same((await pool.query("SELECT id FROM pipeline_probe ORDER BY id")).rows, [{ id: 3 }, { id: 4 }])

  const client = await pipelined.connect()
  try {
    const results = await queryAll(client, [{ text: "SELECT 1 AS a" }, { text: "SELECT 2 AS b" }])
    t.same(
      results.map((r) => r.rows[0]),
      [{ a: 1 }, { b: 2 }],
      "queued statements answer in order",
    )
  } finally {
    client.release()
  }
})

/**
 * The sequencer's two-round-trip transaction on a pipelined pool (lib/adapters/pg-transaction.ts):
 * a write that fails behind which COMMIT was already sent commits nothing, the error reaches the
 * caller, and the connection serves the next transaction.
 */
import { randomUUID } from "node:crypto"
import t from "tap"
import { inTwoStepTransaction, queryAll } from "../../lib/adapters/pg-transaction"
import { pipelinedPool, withPostgres, withSchema } from "../support/servers"

t.test("a named statement is planned for the table as it is when it runs", async (t) => {
  const server = await withPostgres(t)
  const { pool, schema } = await withSchema(t, server)
  const pipelined = pipelinedPool(t, server, schema, 1)
  // The sequencer's lookup of already stored client ids, as a batch of twenty names them.
  const senders = Array.from({ length: 20 }, (_, i) => `u${i}`)
  const ids = senders.map(() => randomUUID())
  const lookup = {
    name: "plan_probe_known",
    text: "SELECT seq FROM messages WHERE (sender_id, id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))",
    values: [senders, ids],
  }
  const client = await pipelined.connect()
  try {
    // Run often enough while the table is empty that PostgreSQL would settle on a generic plan.
    for (let i = 0; i < 8; i++) await queryAll(client, [lookup])
    await pool.query(
      `INSERT INTO messages (conversation_id, seq, id, sender_id, kind, body, sent_at)
       SELECT 'c' || (g % 100), g, gen_random_uuid(), 'u' || (g % 50), 'message', '{"kind":"text","text":"x"}', now()
         FROM generate_series(1, 50000) g`,
    )
    const [plan] = await queryAll(client, [
      { text: `EXPLAIN EXECUTE plan_probe_known('{${senders.join(",")}}', '{${ids.join(",")}}')` },
    ])
    const text = (plan?.rows ?? []).map((r: Record<string, string>) => r["QUERY PLAN"]).join("\n")
    t.match(text, /Index (Only )?Scan/, "the grown table is searched by its index")
    t.notMatch(text, /Seq Scan on messages/)
  } finally {
    client.release()
  }
})

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

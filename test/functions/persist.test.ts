import { randomUUID } from "node:crypto"
import { connect, type Msg } from "nats"
import t from "tap"
import { handle } from "../../functions/persist/handler"
import { natsDeliveryBus } from "../../lib/adapters/nats"
import { pgMessageStore } from "../../lib/adapters/pg-messages"
import type { EventBatch, NewMessage } from "../../lib/protocol/events"
import { subjects } from "../../lib/protocol/subjects"
import { eventually, withNats, withPostgres, withSchema } from "../support/servers"

function message(conv: string, text: string, from = "alice"): NewMessage {
  return { v: 1, id: randomUUID(), conv, from, body: { kind: "text", text }, ts: new Date().toISOString() }
}

function batchOf(items: unknown[]): EventBatch {
  return {
    function: "persist",
    stream: "COVE_IN",
    consumer: "persist-p0",
    messages: items.map((data, i) => ({ subject: "cove.in.0", seq: i + 1, delivered: 1, headers: {}, data })),
  }
}

t.test("the sequencer stores once, with contiguous seqs per conversation, then delivers", async (t) => {
  const [pgServer, nats] = await Promise.all([withPostgres(t), withNats(t)])
  const { pool } = await withSchema(t, pgServer)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const ports = { messages: pgMessageStore(pool), deliveries: natsDeliveryBus(nc), now: () => new Date() }

  const delivered: Msg[] = []
  const sub = nc.subscribe("cove.deliver.>", { callback: (_err, msg) => delivered.push(msg) })
  t.teardown(() => sub.unsubscribe())
  await nc.flush()

  const a1 = message("conv-a", "一")
  const a2 = message("conv-a", "二 👋")
  const b1 = message("conv-b", "one")
  const first = await handle(batchOf([a1, b1, a2]), ports)
  t.same(first, { processed: 3, rejected: [] })

  // A redelivery of the same batch plus one new message: nothing is stored twice.
  const a3 = message("conv-a", "三")
  await handle(batchOf([a1, b1, a2, a3, a3]), ports)

  const { rows } = await pool.query<{ conversation_id: string; seq: string; body: { text: string } }>(
    "SELECT conversation_id, seq, body FROM messages ORDER BY conversation_id, seq",
  )
  t.same(
    rows.map((r) => [r.conversation_id, Number(r.seq), r.body.text]),
    [
      ["conv-a", 1, "一"],
      ["conv-a", 2, "二 👋"],
      ["conv-a", 3, "三"],
      ["conv-b", 1, "one"],
    ],
    "each conversation counts from 1 without gaps, Unicode kept as sent",
  )

  await eventually(async () => (delivered.length >= 7 ? true : undefined), "deliveries")
  const a = delivered
    .filter((m) => m.subject === subjects.delivery("conv-a"))
    .map((m) => m.json<{ seq: number; type: string }>())
  t.ok(a.every((d) => d.type === "message"))
  t.same(
    [...new Set(a.map((d) => d.seq))].sort(),
    [1, 2, 3],
    "re-published duplicates keep their original seq",
  )
})

t.test("invalid events are rejected one by one, the rest stored", async (t) => {
  const [pgServer, nats] = await Promise.all([withPostgres(t), withNats(t)])
  const { pool } = await withSchema(t, pgServer)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const ports = { messages: pgMessageStore(pool), deliveries: natsDeliveryBus(nc), now: () => new Date() }
  const good = message("conv-x", "fine")
  const result = await handle(
    batchOf([
      { ...good },
      { ...message("conv.x.*", "bad subject") },
      { nonsense: true },
      message("conv-x", ""),
    ]),
    ports,
  )
  t.equal(result.processed, 1)
  t.same(
    result.rejected.map((r) => [r.seq, r.code]),
    [
      [2, "INVALID_INPUT"],
      [3, "INVALID_INPUT"],
      [4, "INVALID_INPUT"],
    ],
  )
  t.match(result.rejected[0]?.message, /conv/)
  const { rows } = await pool.query("SELECT id FROM messages")
  t.same(rows, [{ id: good.id }])
})

import { randomUUID } from "node:crypto"
import { connect } from "nats"
import type pg from "pg"
import t, { type Test } from "tap"
import { handle } from "../../functions/persist/handler"
import { natsDeliveryBus } from "../../lib/adapters/nats"
import { natsRefusalNotices } from "../../lib/adapters/nats-refusals"
import { natsStoredEventLog } from "../../lib/adapters/nats-stored"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgHistoryStore } from "../../lib/adapters/pg-messages"
import { pgSequencerStore } from "../../lib/adapters/pg-sequencer"
import { splitFrames } from "../../lib/protocol/delivery"
import type { EventBatch, InboundEvent, NewMessage } from "../../lib/protocol/events"
import { HEADERS, PROTOCOL_VERSION, STORED_STREAM, subjects } from "../../lib/protocol/subjects"
import { eventually, pipelinedPool, withNats, withPostgres, withSchema } from "../support/servers"

const ALICE = "00000000-0000-4000-8000-00000000a11c"
const BOB = "00000000-0000-4000-8000-000000000b0b"
const CAROL = "00000000-0000-4000-8000-0000000ca201"
const ts = () => new Date().toISOString()

/** Users and conversations as the auth and conversations functions would have made them. */
async function setUp(pool: pg.Pool): Promise<void> {
  for (const [id, name] of [
    [ALICE, "alice"],
    [BOB, "bob"],
    [CAROL, "carol"],
  ]) {
    await pool.query(
      "INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES ($1, $2, $2, 'x', now())",
      [id, name],
    )
  }
  const conversations = pgConversationStore(pool)
  // alice owns every group; bob is a member of conv-a; carol of none.
  await conversations.createGroup("conv-a", "a", ALICE, [BOB], new Date())
  for (const conv of ["conv-b", "conv-x"]) await conversations.createGroup(conv, conv, ALICE, [], new Date())
}

function message(conv: string, text: string, from = ALICE): NewMessage {
  return { v: 1, type: "message", id: randomUUID(), conv, from, body: { kind: "text", text }, ts: ts() }
}

function batchOf(items: unknown[]): EventBatch {
  return {
    function: "persist",
    stream: "COVE_IN",
    consumer: "persist-p0",
    messages: items.map((data, i) => ({ subject: "cove.in.0", seq: i + 1, delivered: 1, headers: {}, data })),
  }
}

async function fixture(t: Test) {
  const [pgServer, nats] = await Promise.all([withPostgres(t), withNats(t)])
  const { pool, schema } = await withSchema(t, pgServer)
  await setUp(pool)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  // Each frame delivered, with its subject: a conversation's events of a batch share one message.
  const delivered: { subject: string; json: <T>() => T }[] = []
  const messagesBySubject = new Map<string, number>()
  const sub = nc.subscribe("cove.deliver.>", {
    callback: (_err, msg) => {
      messagesBySubject.set(msg.subject, (messagesBySubject.get(msg.subject) ?? 0) + 1)
      for (const frame of splitFrames(msg.data)) {
        const text = new TextDecoder().decode(frame)
        delivered.push({ subject: msg.subject, json: <T>() => JSON.parse(text) as T })
      }
    },
  })
  t.teardown(() => sub.unsubscribe())
  await nc.flush()
  const ports = {
    // As in the persist function: pipelined, two round trips per batch.
    sequencer: pgSequencerStore(pipelinedPool(t, pgServer, schema)),
    deliveries: natsDeliveryBus(nc),
    stored: natsStoredEventLog(nc),
    refusals: natsRefusalNotices(nc),
    now: () => new Date(),
  }
  const history = async (conv: string) =>
    (await pgHistoryStore(pool).history(conv, { direction: "forward", after: 0, limit: 100 }, ALICE)).items
  return { pool, nc, delivered, messagesBySubject, ports, history }
}

t.test("the sequencer stores once, with contiguous seqs per conversation, then delivers", async (t) => {
  const { pool, delivered, messagesBySubject, ports } = await fixture(t)
  const a1 = message("conv-a", "一")
  const a2 = message("conv-a", "二 👋")
  const b1 = message("conv-b", "one")
  t.same(await handle(batchOf([a1, b1, a2]), ports), { processed: 3, rejected: [] })
  await eventually(async () => (delivered.length >= 3 ? true : undefined), "first deliveries")
  t.same(
    Object.fromEntries(messagesBySubject),
    { [subjects.delivery("conv-a")]: 1, [subjects.delivery("conv-b")]: 1 },
    "one NATS message per conversation and batch",
  )
  t.same(
    delivered.map((d) => d.json<{ conv: string; seq: number }>()).map((d) => [d.conv, d.seq]),
    [
      ["conv-a", 1],
      ["conv-a", 2],
      ["conv-b", 1],
    ],
    "a conversation's frames in seq order",
  )

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

t.test("invalid events and non-members are rejected one by one, the rest stored", async (t) => {
  const { pool, ports } = await fixture(t)
  const good = message("conv-x", "fine")
  const result = await handle(
    batchOf([
      { ...good },
      { ...message("conv.x.*", "bad subject") },
      { nonsense: true },
      message("conv-x", ""),
      message("conv-x", "not a member", BOB),
      // A safe id but not a user id: looked up as no one, not a failed batch.
      message("conv-x", "not a user", "not-a-uuid"),
      { v: 1, type: "read", conv: "conv-x", from: "not-a-uuid", seq: 1, ts: ts() },
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
      [5, "NOT_A_MEMBER"],
      [6, "NOT_A_MEMBER"],
      [7, "NOT_A_MEMBER"],
    ],
  )
  t.match(result.rejected[0]?.message, /conv/)
  const { rows } = await pool.query("SELECT id FROM messages")
  t.same(rows, [{ id: good.id }])
})

t.test("edits, recalls and reactions are events with their own seq, applied to their target", async (t) => {
  const { ports, history, delivered } = await fixture(t)
  const hello = message("conv-a", "hello", BOB)
  const ev = (e: Record<string, unknown>, from = BOB): InboundEvent =>
    ({ v: 1, conv: "conv-a", from, ts: ts(), id: randomUUID(), ...e }) as InboundEvent
  // The message and its edit in one batch: the edit sees the message.
  const r1 = await handle(
    batchOf([
      hello,
      ev({ type: "edit", target: hello.id, body: { kind: "text", text: "hello, edited" } }),
      ev({ type: "reaction", target: hello.id, emoji: "👍", op: "add" }),
      ev({ type: "reaction", target: hello.id, emoji: "👍", op: "add" }, ALICE),
      ev({ type: "reaction", target: hello.id, emoji: "🎉", op: "add" }, ALICE),
    ]),
    ports,
  )
  t.same(r1, { processed: 5, rejected: [] })
  let items = await history("conv-a")
  t.same(
    items.map((i) => [i.seq, i.type]),
    [
      [1, "message"],
      [2, "edit"],
      [3, "reaction"],
      [4, "reaction"],
      [5, "reaction"],
    ],
  )
  t.match(items[0], {
    type: "message",
    body: { text: "hello, edited" },
    edited_at: String,
    reactions: { "👍": 2, "🎉": 1 },
  })

  const other = message("conv-a", "alice's")
  await handle(batchOf([other]), ports)
  const r2 = await handle(
    batchOf([
      ev({ type: "edit", target: other.id, body: { kind: "text", text: "not yours" } }),
      ev({ type: "recall", target: randomUUID() }),
      ev({ type: "reaction", target: hello.id, emoji: "🎉", op: "remove" }, ALICE),
      ev({ type: "edit", target: hello.id, body: { kind: "text", text: "x" } }, CAROL),
      ev({ type: "reaction", target: hello.id, emoji: "two words", op: "add" }),
    ]),
    ports,
  )
  t.same(
    r2.rejected.map((r) => [r.seq, r.code]).sort((x, y) => Number(x[0]) - Number(y[0])),
    [
      [1, "FORBIDDEN"],
      [2, "TARGET_NOT_FOUND"],
      [4, "NOT_A_MEMBER"],
      [5, "INVALID_INPUT"],
    ],
    "a member edits only their own message; targets must exist; emoji are checked",
  )
  t.equal(r2.processed, 1)

  // A group admin (here the owner) may recall anyone's message; after that it is gone for everyone.
  await handle(batchOf([ev({ type: "recall", target: hello.id }, ALICE)]), ports)
  items = await history("conv-a")
  const recalled = items.find((i) => i.id === hello.id)
  t.match(recalled, { type: "message", body: null, recalled: true })
  t.notOk(
    "reactions" in (recalled ?? {}) &&
      Object.keys((recalled as { reactions?: object }).reactions ?? {}).length > 0,
  )
  const late = await handle(
    batchOf([ev({ type: "edit", target: hello.id, body: { kind: "text", text: "again" } })]),
    ports,
  )
  t.same(
    late.rejected.map((r) => r.code),
    ["TARGET_RECALLED"],
  )
  t.same(
    items.map((i) => i.seq),
    items.map((_, n) => n + 1),
    "events and messages share one contiguous sequence",
  )
  await eventually(
    async () => (delivered.some((m) => m.json<{ type: string }>().type === "recall") ? true : undefined),
    "recall delivered",
  )
})

t.test(
  "an id names one event of a conversation: someone else's id is refused, not a way to edit their message",
  async (t) => {
    const { ports, history, nc } = await fixture(t)
    const notices: { subject: string; data: unknown }[] = []
    const sub = nc.subscribe("cove.user.*.refused", {
      callback: (_err, msg) => notices.push({ subject: msg.subject, data: msg.json() }),
    })
    t.teardown(() => sub.unsubscribe())
    await nc.flush()
    const mine = message("conv-a", "alice's words")
    await handle(batchOf([mine]), ports)
    // bob reuses alice's message id (ids are visible in history), then edits "his" message.
    const copycat = { ...message("conv-a", "bob's words", BOB), id: mine.id }
    const hijack = {
      v: 1,
      type: "edit",
      id: randomUUID(),
      conv: "conv-a",
      from: BOB,
      target: mine.id,
      ts: ts(),
      body: { kind: "text", text: "hijacked" },
    }
    // Two senders with one new id in the same batch: the first has it.
    const first = message("conv-a", "first with this id")
    const second = { ...message("conv-a", "second with this id", BOB), id: first.id }
    const r = await handle(batchOf([copycat, hijack, first, second]), ports)
    t.same(
      r.rejected.map((x) => [x.seq, x.code]),
      [
        [1, "ID_TAKEN"],
        [2, "FORBIDDEN"],
        [4, "ID_TAKEN"],
      ],
    )
    const items = await history("conv-a")
    t.same(
      items.map((i) => [i.seq, i.from, i.type === "message" ? i.body : undefined]),
      [
        [1, ALICE, { kind: "text", text: "alice's words" }],
        [2, ALICE, { kind: "text", text: "first with this id" }],
      ],
      "alice's messages are untouched and bob's copies were not stored",
    )
    await eventually(async () => (notices.length === 3 ? true : undefined), "three refusal notices")
    t.same(
      notices.map((n) => [n.subject, (n.data as { id: string }).id, (n.data as { code: string }).code]),
      [
        [`cove.user.${BOB}.refused`, copycat.id, "ID_TAKEN"],
        [`cove.user.${BOB}.refused`, hijack.id, "FORBIDDEN"],
        [`cove.user.${BOB}.refused`, second.id, "ID_TAKEN"],
      ],
      "the sender hears of each refusal, on his own subject",
    )
  },
)

t.test("a recall removes every version of the text, the edits' included", async (t) => {
  const { ports, history } = await fixture(t)
  const original = message("conv-a", "secret v1", BOB)
  const edit = {
    v: 1,
    type: "edit",
    id: randomUUID(),
    conv: "conv-a",
    from: BOB,
    target: original.id,
    ts: ts(),
    body: { kind: "text", text: "secret v2" },
  }
  await handle(batchOf([original, edit]), ports)
  await handle(
    batchOf([
      { v: 1, type: "recall", id: randomUUID(), conv: "conv-a", from: BOB, target: original.id, ts: ts() },
    ]),
    ports,
  )
  const items = await history("conv-a")
  t.match(items, [
    { seq: 1, type: "message", body: null, recalled: true },
    { seq: 2, type: "edit", target: original.id, body: null, recalled: true },
    { seq: 3, type: "recall", target: original.id },
  ])
  t.notMatch(JSON.stringify(items), /secret/, "no version of the text is left in history")
})

t.test("read receipts only move forward, never past the last seq, and are delivered", async (t) => {
  const { pool, ports, delivered } = await fixture(t)
  await handle(batchOf([message("conv-a", "1"), message("conv-a", "2"), message("conv-a", "3")]), ports)
  const read = (seq: number, from = BOB) => ({ v: 1, type: "read", conv: "conv-a", from, seq, ts: ts() })
  await handle(batchOf([read(2), read(1)]), ports)
  const at = async () =>
    Number(
      (await pool.query("SELECT last_read_seq FROM conversation_members WHERE user_id = $1", [BOB])).rows[0]
        .last_read_seq,
    )
  t.equal(await at(), 2, "the highest of the batch")
  await handle(batchOf([read(1)]), ports)
  t.equal(await at(), 2, "never backwards")
  await handle(batchOf([read(99)]), ports)
  t.equal(await at(), 3, "capped at the conversation's last seq")
  const refused = await handle(batchOf([read(1, CAROL)]), ports)
  t.same(
    refused.rejected.map((r) => r.code),
    ["NOT_A_MEMBER"],
  )
  await eventually(
    async () =>
      delivered.filter((m) => m.json<{ type: string }>().type === "read").length === 2 ? true : undefined,
    "two receipts delivered (2, then 3)",
  )
  t.same(
    delivered.filter((m) => m.json<{ type: string }>().type === "read").map((m) => m.json()),
    [
      { type: "read", conv: "conv-a", user: BOB, seq: 2 },
      { type: "read", conv: "conv-a", user: BOB, seq: 3 },
    ],
  )
})

t.test(
  "what is stored is published once per seq to COVE_STORED for followers, when the stream exists",
  async (t) => {
    const { nc, ports } = await fixture(t)
    // Without the stream (no follower deployed) storing works and publishes nothing.
    const early = message("conv-a", "before any follower")
    t.same(await handle(batchOf([early]), ports), { processed: 1, rejected: [] })
    const jsm = await nc.jetstreamManager()
    await jsm.streams.add({ name: STORED_STREAM, subjects: ["cove.stored.0", "cove.stored.1"] })
    // The "absent" answer is cached for a while; a fresh adapter sees the new stream.
    const withFollower = { ...ports, stored: natsStoredEventLog(nc) }
    const m1 = message("conv-a", "one")
    const m2 = message("conv-b", "two")
    const m3 = message("conv-a", "three")
    await handle(batchOf([m1, m2, m3]), withFollower)
    await handle(batchOf([m1, m2, m3]), withFollower)
    const info = await jsm.streams.info(STORED_STREAM)
    const partitionsUsed = new Set([subjects.stored("conv-a", 2), subjects.stored("conv-b", 2)]).size
    t.equal(
      info.state.messages,
      partitionsUsed,
      "one message per partition; the redelivered batch is dropped",
    )
    const published: { type: string; conv: string; seq: number; id: string }[] = []
    for (let seq = 1; seq <= info.state.messages; seq++) {
      const stored = await jsm.streams.getMessage(STORED_STREAM, { seq })
      t.equal(stored.header.get(HEADERS.version), String(PROTOCOL_VERSION))
      published.push(...stored.json<typeof published>())
    }
    t.same(
      published.map((e) => [e.conv, e.seq, e.id, e.type]).sort(),
      [
        ["conv-a", 2, m1.id, "message"],
        ["conv-a", 3, m3.id, "message"],
        ["conv-b", 1, m2.id, "message"],
      ],
      "each stored event once, in arrays of events",
    )
  },
)

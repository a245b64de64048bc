/**
 * The index function: end to end through the sequencer, COVE_STORED and the connector (edits and
 * recalls show in search within a second), idempotency and ordering of the handler, file
 * captions and names, and the rebuild from the messages table.
 */
import { randomUUID } from "node:crypto"
import t from "tap"
import { handle } from "../../functions/index/handler"
import { rebuild } from "../../functions/index/rebuild"
import { pgSearchSource } from "../../lib/adapters/pg-search"
import type { EventBatch, StoredEvent } from "../../lib/protocol/events"
import { type Json, jsonOf } from "../support/http"
import { searchFixture, type User } from "../support/search"
import { eventually } from "../support/servers"

function batchOf(events: unknown[]): EventBatch {
  return {
    function: "index",
    stream: "COVE_STORED",
    consumer: "index-p0",
    messages: events.map((data, i) => ({
      subject: "cove.stored.0",
      seq: i + 1,
      delivered: 1,
      headers: {},
      data,
    })),
  }
}

const texts = async (
  search: (u: User, p: Record<string, string>) => Promise<Response>,
  u: User,
  q: string,
) => {
  const res = await search(u, { q, limit: "100" })
  if (res.status !== 200) throw new Error(`search ${q}: ${res.status}`)
  return ((await jsonOf(res)) as Json).items.map((i: Json) => i.snippet.replace(/<\/?mark>/g, "")) as string[]
}

t.test("edits and recalls reach search within a second, through the connector", async (t) => {
  const f = await searchFixture(t)
  const alice = await f.user("alice")
  const bob = await f.user("bob")
  await f.group("room", alice, [bob])
  const m = f.message("room", alice, "周五下午三点开会 in room 5")
  const other = f.message("room", bob, "another message about 会议")
  await f.store([m, other])
  await eventually(
    async () => ((await texts(f.search, bob, "开会")).length === 1 ? true : undefined),
    "the message indexed",
  )

  let started = performance.now()
  await f.store([f.edit("room", alice, m.id, "周六上午十点开会 in room 7")])
  await eventually(
    async () => ((await texts(f.search, bob, "上午十点")).length === 1 ? true : undefined),
    "the edit in search",
    1000,
  )
  const editMs = performance.now() - started
  t.same(await texts(f.search, bob, "下午三点"), [], "the old text is gone")
  t.same(await texts(f.search, bob, "开会"), ["周六上午十点开会 in room 7"])
  t.ok(editMs < 1000, `edit reflected in ${Math.round(editMs)} ms`)

  // A reaction changes nothing in the index.
  await f.store([
    {
      v: 1,
      type: "reaction",
      id: randomUUID(),
      conv: "room",
      from: bob.id,
      target: m.id,
      emoji: "👍",
      op: "add",
      ts: new Date().toISOString(),
    },
  ])

  started = performance.now()
  await f.store([f.recall("room", alice, m.id)])
  await eventually(
    async () => ((await texts(f.search, bob, "开会")).length === 0 ? true : undefined),
    "the recall in search",
    1000,
  )
  const recallMs = performance.now() - started
  t.ok(recallMs < 1000, `recall reflected in ${Math.round(recallMs)} ms`)
  t.same(await texts(f.search, bob, "room"), [], "nothing of a recalled message is found")
  t.same(await texts(f.search, bob, "会议"), ["another message about 会议"], "other messages stay")
  const { rows } = await f.pool.query("SELECT content, tsv FROM search_docs WHERE message_id = $1", [m.id])
  t.same(rows, [{ content: null, tsv: null }], "the recalled text is not kept in the index")
})

t.test("the handler is idempotent, keeps the newest version and folds a batch", async (t) => {
  const f = await searchFixture(t, { connector: false })
  const ts = new Date().toISOString()
  const from = "u1"
  const message = (seq: number, id: string, text: string): StoredEvent => ({
    type: "message",
    conv: "c1",
    seq,
    id,
    from,
    ts,
    body: { kind: "text", text },
  })
  const edit = (seq: number, target: string, text: string): StoredEvent => ({
    type: "edit",
    conv: "c1",
    seq,
    id: randomUUID(),
    from,
    ts,
    target,
    body: { kind: "text", text },
  })
  const recall = (seq: number, target: string): StoredEvent => ({
    type: "recall",
    conv: "c1",
    seq,
    id: randomUUID(),
    from,
    ts,
    target,
  })
  const rows = async () =>
    (
      await f.pool.query<{ message_id: string; version: string; content: string | null }>(
        "SELECT message_id, version, content FROM search_docs ORDER BY seq",
      )
    ).rows.map((r) => [r.message_id, Number(r.version), r.content])

  const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
  const first = batchOf([message(1, a, "one"), message(2, b, "two"), edit(3, a, "one, edited")])
  t.same(await handle(first, f.indexPorts), { processed: 3, rejected: [] })
  const after = await rows()
  t.same(after, [
    [a, 3, "one, edited"],
    [b, 2, "two"],
  ])
  await handle(first, f.indexPorts)
  t.same(await rows(), after, "the same batch twice changes nothing")

  // Late redeliveries: the message (as stored now) and an older edit do not go back in time.
  await handle(batchOf([message(1, a, "one, edited"), edit(2, a, "stale")]), f.indexPorts)
  t.same(await rows(), after, "older versions never overwrite newer ones")

  // A message, its edit and its recall in one batch: indexed as recalled.
  const folded = batchOf([message(4, c, "three"), edit(5, c, "three, edited"), recall(6, c)])
  await handle(folded, f.indexPorts)
  t.same((await rows()).at(-1), [c, 6, null])
  await handle(batchOf([message(4, c, "three")]), f.indexPorts)
  t.same((await rows()).at(-1), [c, 6, null], "a redelivered message does not bring a recalled one back")

  const bad = await handle(
    batchOf([{ type: "message", conv: "a.b", seq: 1 }, { nonsense: true }]),
    f.indexPorts,
  )
  t.equal(bad.processed, 0)
  t.same(
    bad.rejected.map((r) => [r.seq, r.code]),
    [
      [1, "INVALID_INPUT"],
      [2, "INVALID_INPUT"],
    ],
    "invalid events are dead-lettered, not indexed",
  )

  // As the sequencer publishes: each message an array of events. A bad event in an array
  // dead-letters that message; the good ones beside it are still indexed.
  const d = randomUUID()
  const arrays = await handle(
    batchOf([
      [message(7, d, "four"), edit(8, d, "four, edited")],
      [{ type: "message", conv: "c1", seq: 9 }, message(10, randomUUID(), "five")],
    ]),
    f.indexPorts,
  )
  t.equal(arrays.processed, 3)
  t.same(
    arrays.rejected.map((r) => [r.seq, r.code]),
    [[2, "INVALID_INPUT"]],
  )
  t.match(arrays.rejected[0]?.message, /^\[0\] /, "the refused event's place in its array")
  t.same(
    (await rows()).slice(-2).map((r) => [r[1], r[2]]),
    [
      [8, "four, edited"],
      [10, "five"],
    ],
  )
})

t.test("file messages: caption and file name are searchable", async (t) => {
  const f = await searchFixture(t, { connector: false })
  const alice = await f.user("alice")
  await f.group("docs", alice, [])
  await f.pool.query(
    `INSERT INTO files (id, conversation_id, owner_id, name, size, content_type, status, created_at, ready_at)
     VALUES ('file1', 'docs', $1, '季度报告_Q3.pdf', 10, 'application/pdf', 'ready', now(), now())`,
    [alice.id],
  )
  const event: StoredEvent = {
    type: "message",
    conv: "docs",
    seq: 1,
    id: randomUUID(),
    from: alice.id,
    ts: new Date().toISOString(),
    body: { kind: "file", file_id: "file1", caption: "Budget draft" } as never,
  }
  await handle(batchOf([event]), f.indexPorts)
  t.same(await texts(f.search, alice, "budget"), ["Budget draft\n季度报告_Q3.pdf"])
  t.same(await texts(f.search, alice, "季度报告"), ["Budget draft\n季度报告_Q3.pdf"])
  t.same(await texts(f.search, alice, "q3"), ["Budget draft\n季度报告_Q3.pdf"])
})

t.test("the rebuild re-indexes every message as it is now, in batches", async (t) => {
  const f = await searchFixture(t, { connector: false })
  const alice = await f.user("alice")
  await f.group("old", alice, [])
  const kept = Array.from({ length: 25 }, (_, i) => f.message("old", alice, `旧消息 number ${i}`))
  await f.store(kept)
  const [edited, recalled] = kept as [(typeof kept)[0], (typeof kept)[0]]
  await f.store([f.edit("old", alice, edited.id, "改过的消息"), f.recall("old", alice, recalled.id)])
  t.same(await texts(f.search, alice, "消息"), [], "nothing indexed yet (no COVE_STORED stream)")

  const progress: number[] = []
  const ports = { source: pgSearchSource(f.pool), ...f.indexPorts }
  const result = await rebuild(ports, { batchSize: 10, onProgress: (p) => progress.push(p.done) })
  t.same(progress, [10, 20, 25])
  t.equal(result.total, 25)
  t.equal((await texts(f.search, alice, "旧消息")).length, 23, "all but the edited and the recalled one")
  t.same(await texts(f.search, alice, "改过"), ["改过的消息"])
  t.same(await texts(f.search, alice, "number 1"), [], "the recalled message stays out")
  t.same(await texts(f.search, alice, "number 2"), ["旧消息 number 2"])
  const before = (await f.pool.query("SELECT message_id, version, content FROM search_docs ORDER BY seq"))
    .rows
  await rebuild(ports, { batchSize: 7, onProgress: () => undefined })
  const again = (await f.pool.query("SELECT message_id, version, content FROM search_docs ORDER BY seq")).rows
  t.same(again, before, "running it twice changes nothing")
  t.ok(
    before.every((r) => Number(r.version) === 27),
    "each row's version is the conversation's last seq at the time it was read",
  )
})

t.test("a common query is ranked within recent months first, then the older months follow", async (t) => {
  const f = await searchFixture(t, { windowMin: 3 })
  const alice = await f.user("alice")
  await f.group("long", alice, [])
  const monthsAgo = (n: number, text: string) => {
    const m = f.message("long", alice, text)
    const at = new Date()
    at.setUTCDate(1)
    at.setUTCMonth(at.getUTCMonth() - n)
    return { ...m, ts: at.toISOString() }
  }
  const recent = [
    monthsAgo(0, "alpha one"),
    monthsAgo(0, "alpha two"),
    monthsAgo(0, "alpha alpha three beta"),
  ]
  const older = [monthsAgo(2, "alpha four"), monthsAgo(2, "alpha five"), monthsAgo(14, "alpha six beta")]
  await f.store([...older, ...recent])
  await eventually(async () => {
    const { rows } = await f.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM search_docs")
    return rows[0]?.n === 6 ? true : undefined
  }, "indexed")

  const pages: string[][] = []
  let cursor: string | null = null
  do {
    const res = await f.search(alice, { q: "alpha", limit: "2", ...(cursor === null ? {} : { cursor }) })
    t.equal(res.status, 200)
    const body = (await jsonOf(res)) as Json
    pages.push(body.items.map((i: Json) => i.id))
    cursor = body.next_cursor
  } while (cursor !== null && pages.length < 10)
  const seen = pages.flat()
  t.equal(seen.length, 6, "every hit once")
  t.equal(new Set(seen).size, 6)
  t.same(
    seen.slice(0, 3).sort(),
    recent.map((m) => m.id).sort(),
    "the current month (3 hits, the window's minimum) comes first",
  )
  t.equal(seen[0], recent[2]?.id, "ranked by relevance within the window")
  t.same(seen.slice(3).sort(), older.map((m) => m.id).sort(), "then the months before it")

  // Fewer hits than the minimum in 12 months: ranked over all time in one go.
  const beta = (await jsonOf(await f.search(alice, { q: "beta" }))) as Json
  t.same(beta.items.map((i: Json) => i.id).sort(), [recent[2]?.id, older[2]?.id].sort())
})

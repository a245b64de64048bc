/**
 * Resume on the real stack: exactly-once, in-order delivery across an edge restart while
 * another user sends; gaps filled from history; the outbox retried with the same id across a
 * cut socket, and kept in storage across a new client instance. Run after `npm run build`.
 */
import t from "tap"
import { CoveClient, memoryStorage, type OutboxEntry, type StoredEvent } from "../../sdk/src/index"
import { PASSWORD, recorder, Sockets, text, until, world } from "./world"

const seqs = (events: StoredEvent[]) => events.map((e) => e.seq)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

t.test("resume", async (t) => {
  const w = await world(t)
  const alice = await w.user("alice", w.edges.b)
  const bob = await w.user("bob", w.edges.a)
  await Promise.all([alice.connect(), bob.connect()])
  const group = await bob.conversations.create({ kind: "group", title: "resume", members: [alice.user.id] })
  const aliceSaw = recorder(alice)
  const stored = new Set<string>()
  bob.on("outbox", (e) => e.state === "stored" && stored.add(e.id))
  const bobSends = (n: number, label: string) =>
    Array.from({ length: n }, (_, i) => bob.send(group.id, text(`${label} ${i}`)).id)

  await t.test("messages sent while the edge is down are filled from history, once, in order", async (t) => {
    const first = bobSends(3, "before")
    await until("alice has the first three", () => aliceSaw.length === 3)
    const down = new Promise<void>((resolve) => alice.on("connection", (s) => s !== "open" && resolve()))
    await w.stopEdgeB()
    await down
    const missed = bobSends(5, "while down")
    await until("bob's sends stored", () => missed.every((id) => stored.has(id)))
    t.equal(aliceSaw.length, 3, "nothing reached alice while her edge was down")
    await w.startEdgeB()
    await until("alice caught up", () => aliceSaw.length === 8)
    const live = bobSends(1, "after")
    await until("the live one", () => aliceSaw.length === 9)
    t.same(seqs(aliceSaw), range(1, 9))
    t.same(
      aliceSaw.map((e) => e.id),
      [...first, ...missed, ...live],
    )
    t.equal(alice.lastSeq(group.id), 9)
  })

  await t.test(
    "an edge restart in the middle of a burst from another user: each seq once, in order",
    async (t) => {
      const start = aliceSaw.length
      const ids = bobSends(30, "burst")
      await until("some delivered", () => aliceSaw.length >= start + 5)
      await w.stopEdgeB()
      await until("the burst stored", () => ids.every((id) => stored.has(id)))
      await w.startEdgeB()
      await until("alice has the burst", () => aliceSaw.length === start + 30)
      const sentinel = bobSends(1, "sentinel")
      await until("the sentinel", () => aliceSaw.at(-1)?.id === sentinel[0])
      t.same(seqs(aliceSaw), range(1, start + 31), "no duplicate, no gap")
      t.same(
        aliceSaw.slice(start).map((e) => e.id),
        [...ids, ...sentinel],
      )
    },
  )

  await t.test(
    "a conversation watched from an earlier seq is filled from history before new events",
    async (t) => {
      const carol = await w.user("carol", w.edges.a)
      await bob.conversations.addMembers(group.id, [carol.user.id])
      const carolSaw = recorder(carol)
      carol.watch(group.id, 30)
      await carol.connect()
      const history = await carol.messages.history(group.id, { after: 0, limit: 500 })
      const end = history.items.at(-1)?.seq ?? 0
      await until("carol filled from history", () => carol.lastSeq(group.id) === end)
      const live = bobSends(1, "for carol")
      await until("and then the live message", () => carolSaw.at(-1)?.id === live[0])
      t.same(seqs(carolSaw), range(31, end + 1))
    },
  )

  await t.test("the outbox retries an unanswered send with the same id after a cut socket", async (t) => {
    const sockets = new Sockets()
    const dan = await w.user("dan", w.edges.a, { WebSocket: sockets.ctor })
    await bob.conversations.addMembers(group.id, [dan.user.id])
    await dan.connect()
    const states: string[] = []
    const entryDone = new Promise<OutboxEntry>((resolve) =>
      dan.on("outbox", (e) => {
        states.push(e.state)
        if (e.state === "stored") resolve(e)
      }),
    )
    const entry = dan.send(group.id, text("exactly once"))
    // Cut in the same tick: whether or not the frame left, its ack cannot be read on this socket.
    sockets.cut()
    const done = await entryDone
    t.equal(done.id, entry.id)
    const writes = sockets.sent.filter((f) => f.type === "send" && f.id === entry.id)
    t.ok(writes.length >= 2, `written ${writes.length} times, always with the same id`)
    t.ok(sockets.opened.length >= 2, "on a new socket")
    t.notOk(states.includes("failed"))
    const history = await dan.messages.history(group.id, { after: 0, limit: 500 })
    t.equal(history.items.filter((m) => m.id === entry.id).length, 1, "stored once")
  })

  await t.test("pending sends kept in storage are sent by the next client instance", async (t) => {
    const storage = memoryStorage()
    const login = await CoveClient.login({ ...w.options(w.edges.b), username: "alice", password: PASSWORD })
    const before = w.client({ ...w.options(w.edges.b), tokens: login.tokens, storage })
    const entry = before.send(group.id, text("sent before the reload"))
    t.equal(entry.state, "pending")
    await before.close()
    // A reload: tokens and outbox both come from storage.
    const after = w.client({ ...w.options(w.edges.b), storage })
    t.same(
      after.outbox().map((e) => [e.id, e.state]),
      [[entry.id, "pending"]],
    )
    const storedNow = new Promise<void>((resolve) =>
      after.on("outbox", (e) => e.id === entry.id && e.state === "stored" && resolve()),
    )
    await after.connect()
    await storedNow
    t.same(after.outbox(), [])
    const history = await after.messages.history(group.id, { after: 0, limit: 500 })
    t.equal(history.items.filter((m) => m.id === entry.id).length, 1, "stored once")
  })
})

import { randomBytes, randomUUID } from "node:crypto"
import { AckPolicy, connect } from "nats"
import t from "tap"
import { routes } from "../../functions/messages/routes"
import { handle as persist } from "../../functions/persist/handler"
import { ensureStream } from "../../infra/connector/streams"
import { loadStack } from "../../infra/stack"
import { natsDeliveryBus } from "../../lib/adapters/nats"
import { natsInboundLog } from "../../lib/adapters/nats-inbound"
import { natsRefusalNotices } from "../../lib/adapters/nats-refusals"
import { natsStoredEventLog } from "../../lib/adapters/nats-stored"
import { pgAuthenticator } from "../../lib/adapters/pg-authenticator"
import { pgConversationStore } from "../../lib/adapters/pg-conversations"
import { pgHistoryStore } from "../../lib/adapters/pg-messages"
import { pgSequencerStore } from "../../lib/adapters/pg-sequencer"
import { defineFunction } from "../../lib/function/harness"
import type { InboundEvent } from "../../lib/protocol/events"
import { INBOUND_STREAM, INBOUND_TOPIC } from "../../lib/protocol/subjects"
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../../lib/protocol/tokens"
import { registerUser, serveForTest, withAuth } from "../support/auth"
import { repoRoot } from "../support/bundles"
import { errorOf, type Json, jsonOf } from "../support/http"
import { testLog, withNats, withPostgres } from "../support/servers"

t.test("stack.yml's sequencer reads the stream and topic the publishers write to", async (t) => {
  const persistSpec = loadStack(`${repoRoot}/stack.yml`).functions.find((f) => f.name === "persist")
  t.equal(persistSpec?.topic?.stream, INBOUND_STREAM)
  t.equal(persistSpec?.topic?.subject, INBOUND_TOPIC)
})

t.test("messages: integrator sends are durable and idempotent; history pages both ways", async (t) => {
  const [pgServer, nats] = await Promise.all([withPostgres(t), withNats(t)])
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const jsm = await nc.jetstreamManager()
  const persistSpec = loadStack(`${repoRoot}/stack.yml`).functions.find((f) => f.name === "persist")
  if (persistSpec?.topic === undefined) throw new Error("persist has no topic")
  await ensureStream(jsm, persistSpec.topic)

  const auth = await withAuth(t, pgServer, nc)
  const conversations = pgConversationStore(auth.pool)
  const handler = defineFunction({
    name: "messages",
    log: testLog,
    ports: async () => ({
      history: pgHistoryStore(auth.pool),
      conversations,
      inbound: natsInboundLog(nc),
      auth: pgAuthenticator(
        auth.pool,
        { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE },
        auth.clock.now,
      ),
      now: auth.clock.now,
    }),
    routes,
  })
  const base = await serveForTest(t, handler, 200_000)
  const user = (name: string) => registerUser(auth, name)
  const alice = await user("alice")
  const mallory = await user("mallory")
  const conv = randomBytes(16).toString("base64url")
  await conversations.createGroup(conv, "team", alice.id, [], auth.clock.now())
  const call = (who: { token: string }, method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: { "content-type": "application/json", authorization: `Bearer ${who.token}` },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })

  t.test("a send is accepted once stored, and a retry is recognised", async (t) => {
    const id = randomUUID()
    const body = { kind: "text", text: "你好 Cove 👋🏽 — ok" }
    const first = await call(alice, "POST", "/", { id, conv, body })
    t.equal(first.status, 202)
    t.same(await jsonOf(first), { id, conv, status: "accepted", duplicate: false })
    const retry = await call(alice, "POST", "/", { id, conv, body })
    t.equal((await jsonOf(retry)).duplicate, true)
    const info = await jsm.streams.info(INBOUND_STREAM)
    t.equal(info.state.messages, 1, "one message in the log")
  })

  t.test("bad sends are refused before anything is stored", async (t) => {
    const before = (await jsm.streams.info(INBOUND_STREAM)).state.messages
    const bad = async (body: unknown, code: string) =>
      t.equal(
        (await errorOf(await call(alice, "POST", "/", body))).code,
        code,
        JSON.stringify(body).slice(0, 60),
      )
    await bad({ id: "not-a-uuid", conv, body: { kind: "text", text: "x" } }, "INVALID_INPUT")
    await bad({ id: randomUUID(), conv, body: { kind: "text", text: "" } }, "INVALID_INPUT")
    await bad({ id: randomUUID(), conv, body: { kind: "text", text: "nul \u0000 inside" } }, "INVALID_INPUT")
    await bad(
      { id: randomUUID(), conv, body: { kind: "text", text: "lone \ud800 surrogate" } },
      "INVALID_INPUT",
    )
    await bad({ id: randomUUID(), conv, body: { kind: "text", text: "x".repeat(16_385) } }, "INVALID_INPUT")
    await bad({ id: randomUUID(), conv: "a.b.>", body: { kind: "text", text: "x" } }, "INVALID_INPUT")
    await bad({ id: randomUUID(), conv, body: { kind: "poll" } }, "INVALID_INPUT")
    t.equal(
      (
        await errorOf(
          await call(mallory, "POST", "/", { id: randomUUID(), conv, body: { kind: "text", text: "hi" } }),
        )
      ).code,
      "NOT_FOUND",
      "a non-member cannot send",
    )
    t.equal((await jsm.streams.info(INBOUND_STREAM)).state.messages, before, "nothing reached the log")
  })

  t.test("history after the sequencer ran: forward and backward pages", async (t) => {
    for (let i = 2; i <= 7; i++) {
      await call(alice, "POST", "/", { id: randomUUID(), conv, body: { kind: "text", text: `m${i}` } })
    }
    // The sequencer's logic over what the log holds (the connector's part is tested elsewhere).
    await jsm.consumers.add(INBOUND_STREAM, { durable_name: "test", ack_policy: AckPolicy.None })
    const consumer = await nc.jetstream().consumers.get(INBOUND_STREAM, "test")
    const pulled = await consumer.fetch({ max_messages: 7, expires: 2000 })
    const batch = []
    for await (const m of pulled)
      batch.push({ subject: m.subject, seq: m.seq, delivered: 1, headers: {}, data: m.json() })
    await persist(
      { function: "persist", stream: INBOUND_STREAM, consumer: "test", messages: batch },
      {
        sequencer: pgSequencerStore(auth.pool),
        deliveries: natsDeliveryBus(nc),
        stored: natsStoredEventLog(nc),
        refusals: natsRefusalNotices(nc),
        now: auth.clock.now,
      },
    )

    const first = await jsonOf(await call(alice, "GET", `/?conv=${conv}&after=0&limit=3`))
    t.same(
      first.items.map((m: { seq: number }) => m.seq),
      [1, 2, 3],
    )
    t.equal(first.items[0].body.text, "你好 Cove 👋🏽 — ok", "text is byte-exact")
    t.equal(first.items[0].from, alice.id)
    t.equal(first.next_after, 3)
    const rest = await jsonOf(await call(alice, "GET", `/?conv=${conv}&after=3&limit=10`))
    t.same(
      rest.items.map((m: { seq: number }) => m.seq),
      [4, 5, 6, 7],
    )
    t.equal(rest.next_after, null, "caught up")

    const latest = await jsonOf(await call(alice, "GET", `/?conv=${conv}&limit=3`))
    t.same(
      latest.items.map((m: { seq: number }) => m.seq),
      [5, 6, 7],
      "the latest page, oldest first",
    )
    t.equal(latest.prev_before, 5)
    const older = await jsonOf(await call(alice, "GET", `/?conv=${conv}&before=5&limit=10`))
    t.same(
      older.items.map((m: { seq: number }) => m.seq),
      [1, 2, 3, 4],
    )
    t.equal(older.prev_before, null, "at the beginning")

    // Edits, reactions, reads and recalls over HTTP, as integrators send them.
    const target = first.items[1].id as string
    const accepted = async (path: string, body: unknown) => {
      const res = await call(alice, "POST", path, body)
      t.equal(res.status, 202, path)
      return jsonOf(res)
    }
    t.match(
      await accepted("/edits", {
        id: randomUUID(),
        conv,
        target,
        body: { kind: "text", text: "m2, edited" },
      }),
      {
        type: "edit",
        status: "accepted",
      },
    )
    await accepted("/reactions", { id: randomUUID(), conv, target, emoji: "❤️", op: "add" })
    await accepted("/reads", { conv, seq: 7 })
    await accepted("/recalls", { id: randomUUID(), conv, target: first.items[2].id })
    const badEmoji = await call(alice, "POST", "/reactions", {
      id: randomUUID(),
      conv,
      target,
      emoji: "a b",
      op: "add",
    })
    t.equal((await errorOf(badEmoji)).code, "INVALID_INPUT")
    const more = await consumer.fetch({ max_messages: 4, expires: 2000 })
    const batch2 = []
    for await (const m of more)
      batch2.push({ subject: m.subject, seq: m.seq, delivered: 1, headers: {}, data: m.json() })
    const applied = await persist(
      { function: "persist", stream: INBOUND_STREAM, consumer: "test", messages: batch2 },
      {
        sequencer: pgSequencerStore(auth.pool),
        deliveries: natsDeliveryBus(nc),
        stored: natsStoredEventLog(nc),
        refusals: natsRefusalNotices(nc),
        now: auth.clock.now,
      },
    )
    t.same(applied, { processed: 4, rejected: [] })
    const after = await jsonOf(await call(alice, "GET", `/?conv=${conv}&after=0&limit=20`))
    t.same(after.items.map((m: { seq: number; type: string }) => [m.seq, m.type]).slice(7), [
      [8, "edit"],
      [9, "reaction"],
      [10, "recall"],
    ])
    t.match(after.items[1], { body: { text: "m2, edited" }, reactions: { "❤️": 1 } })
    t.same(after.items[1].my_reactions, ["❤️"], "the caller's own reaction")
    t.match(after.items[2], { body: null, recalled: true })
    const read = await auth.pool.query(
      "SELECT last_read_seq::int AS seq FROM conversation_members WHERE user_id = $1",
      [alice.id],
    )
    t.equal(read.rows[0].seq, 7)

    t.equal(
      (await errorOf(await call(mallory, "GET", `/?conv=${conv}`))).code,
      "NOT_FOUND",
      "non-members read nothing",
    )
    t.equal(
      (await errorOf(await call(alice, "GET", `/?conv=${conv}&after=1&before=3`))).code,
      "INVALID_INPUT",
    )
    t.equal((await errorOf(await call(alice, "GET", "/"))).code, "INVALID_INPUT")
    // Without a token, bad input still gets the auth answer: the caller is checked first.
    for (const [method, path, body] of [
      ["GET", "/", undefined],
      ["POST", "/", { id: "not-a-uuid" }],
      ["POST", "/edits", {}],
    ] as const) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      t.equal((await errorOf(res)).code, "AUTH_REQUIRED", `${method} ${path}`)
    }
  })

  t.test("history tells each reader which reactions are their own", async (t) => {
    const bob = await user("bob")
    const room = randomBytes(16).toString("base64url")
    await conversations.createGroup(room, "reactions", alice.id, [bob.id], auth.clock.now())
    const ts = auth.clock.now().toISOString()
    const [m1, m2, m3, m4] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()]
    const message = (id: string): InboundEvent => ({
      v: 1,
      type: "message",
      id,
      conv: room,
      from: alice.id,
      body: { kind: "text", text: id },
      ts,
    })
    const react = (from: { id: string }, target: string, emoji: string, op: "add" | "remove" = "add") =>
      ({
        v: 1,
        type: "reaction",
        id: randomUUID(),
        conv: room,
        from: from.id,
        target,
        emoji,
        op,
        ts,
      }) as const
    const applied = await pgSequencerStore(auth.pool).apply(
      [
        message(m1),
        message(m2),
        message(m3),
        message(m4),
        react(alice, m1, "👍"),
        react(bob, m1, "👍"),
        react(bob, m1, "❤️"),
        react(alice, m1, "😀"),
        react(alice, m1, "😀", "remove"),
        react(bob, m2, "🎉"),
        react(alice, m4, "👍"),
        { v: 1, type: "recall", id: randomUUID(), conv: room, from: alice.id, target: m4, ts },
      ],
      auth.clock.now(),
    )
    t.same(applied.refused, [])
    const messagesFor = async (who: { token: string }, query: string) => {
      const page = await jsonOf(await call(who, "GET", `/?conv=${room}&${query}`))
      return new Map<string, Json>(
        page.items.filter((e: { type: string }) => e.type === "message").map((m: Json) => [m.id, m]),
      )
    }
    const sorted = (emoji: readonly string[]) => [...emoji].sort()

    const seenByAlice = await messagesFor(alice, "after=0")
    t.same(seenByAlice.get(m1)?.reactions, { "👍": 2, "❤️": 1 }, "counts are everyone's, as before")
    t.same(seenByAlice.get(m1)?.my_reactions, ["👍"], "only alice's own; the one she took back is gone")
    t.same(seenByAlice.get(m2)?.reactions, { "🎉": 1 })
    t.same(seenByAlice.get(m2)?.my_reactions, [], "bob's reaction is not alice's")
    t.same(seenByAlice.get(m3)?.my_reactions, [], "no reactions at all")
    t.notOk("my_reactions" in seenByAlice.get(m4), "a recalled message has neither counts nor own reactions")
    t.notOk("reactions" in seenByAlice.get(m4))

    // The latest page (backward) marks them the same way.
    const seenByBob = await messagesFor(bob, "limit=50")
    t.same(seenByBob.get(m1)?.reactions, { "👍": 2, "❤️": 1 })
    t.same(
      sorted(seenByBob.get(m1)?.my_reactions),
      sorted(["👍", "❤️"]),
      "the same emoji as alice, and another",
    )
    t.same(seenByBob.get(m2)?.my_reactions, ["🎉"])
    t.same(seenByBob.get(m3)?.my_reactions, [])
  })
})

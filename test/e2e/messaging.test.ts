/**
 * The message path end to end, on real servers: clients on two edges → JetStream → connector →
 * sequencer → PostgreSQL → deliveries on every edge, with the real auth, conversations and
 * messages functions. Run after `npm run build` (npm test does).
 */
import { randomUUID } from "node:crypto"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import t, { type Test } from "tap"
import WebSocket from "ws"
import { type Edge, startEdge } from "../../gateway/edge"
import { type LocalNats, startNats } from "../../infra/local/nats-server"
import { freePort } from "../../infra/local/ports"
import type { RunningStack } from "../../infra/local/stack"
import { loadConfig } from "../../lib/config"
import { gatewayFields } from "../../lib/settings"
import { stackClients } from "../support/device"
import type { Json } from "../support/http"
import { descendants } from "../support/processes"
import { eventually, testLog } from "../support/servers"
import { scratchDir, withStack } from "../support/stack"

async function world(t: Test) {
  const dir = await scratchDir(t, "msg")
  const natsPort = await freePort()
  const natsStore = join(dir, "nats-store")
  let nats: LocalNats = await startNats({ port: natsPort, storeDir: natsStore, log: testLog })
  t.teardown(() => nats.stop())
  const stack: RunningStack = await withStack(t, {
    natsUrl: nats.url,
    edgeEnv: { COVE_EDGE_PRESENCE_GRACE_MS: "300", COVE_EDGE_PRESENCE_MAX_MEMBERS: "2" },
  })
  // A second edge, in this process, on the same NATS and functions.
  const config = loadConfig(gatewayFields, {
    env: {
      COVE_EDGE_PORT: "0",
      NATS_URL: nats.url,
      COVE_FUNCTIONS_URL: stack.gatewayUrl,
      COVE_JWKS_URL: `${stack.gatewayUrl}/function/auth/jwks`,
      COVE_EDGE_RATE_PER_SEC: "1000",
      COVE_EDGE_RATE_BURST: "1000",
      COVE_EDGE_USER_RATE_PER_SEC: "2000",
      COVE_EDGE_USER_RATE_BURST: "2000",
      COVE_EDGE_PRESENCE_GRACE_MS: "300",
      COVE_EDGE_PRESENCE_MAX_MEMBERS: "2",
    },
    secretsDir: "/nonexistent",
  })
  const edgeB: Edge = await startEdge(config, testLog)
  t.teardown(() => edgeB.drain(1_000))
  const edges = { a: stack.edgeUrl, b: `ws://127.0.0.1:${edgeB.port}/v1/ws` }

  const clients = await stackClients(t, stack.gatewayUrl)
  return {
    stack,
    edges,
    edgeB,
    ...clients,
    killNats: () => nats.kill(),
    restartNats: async () => {
      nats = await startNats({ port: natsPort, storeDir: natsStore, log: testLog })
    },
  }
}

const text = (s: string) => ({ kind: "text", text: s })

t.test("messages: ack after storage, delivery on every edge, order, retries, members only", async (t) => {
  const w = await world(t)
  const [alice, bob, carol, mallory] = [
    await w.user("alice"),
    await w.user("bob"),
    await w.user("carol"),
    await w.user("mallory"),
  ]
  const group = await w.call(
    "POST",
    "conversations",
    { kind: "group", title: "团队", members: [bob.id, carol.id] },
    alice.token,
  )
  const direct = await w.call("POST", "conversations", { kind: "direct", members: [bob.id] }, alice.token)
  const aliceA = await w.connect(w.edges.a, alice)
  const aliceB = await w.connect(w.edges.b, alice)
  const bobB = await w.connect(w.edges.b, bob)
  const malloryA = await w.connect(w.edges.a, mallory)

  await t.test(
    "one send: acked, then delivered to every member device on both edges, sender included",
    async (t) => {
      const id = randomUUID()
      aliceA.send({ type: "send", id, conv: group.id, body: text("你好 👋🏽 Cove"), ref: "r1" })
      await aliceA.waitFor("ack", (d) => d.of("ack").length === 1)
      t.match(aliceA.of("ack")[0], { id, conv: group.id, ref: "r1", duplicate: false })
      for (const [name, device] of [
        ["alice on edge A", aliceA],
        ["alice on edge B", aliceB],
        ["bob on edge B", bobB],
      ] as const) {
        await device.waitFor(`${name} receives it`, (d) => d.of("message", group.id).length === 1)
        t.match(device.of("message", group.id)[0], {
          conv: group.id,
          seq: 1,
          id,
          from: alice.id,
          body: text("你好 👋🏽 Cove"),
          ts: String,
        })
      }
      t.equal(malloryA.of("message").length, 0, "a non-member receives nothing")
    },
  )

  await t.test("a non-member cannot send; the error names the send", async (t) => {
    const id = randomUUID()
    malloryA.send({ type: "send", id, conv: group.id, body: text("let me in") })
    await malloryA.waitFor("error", (d) => d.of("error").length === 1)
    t.match(malloryA.of("error")[0], { code: "NOT_FOUND", id })
    aliceA.send({ type: "send", id: "not-a-uuid", conv: group.id, body: text("x") })
    await aliceA.waitFor("invalid frame", (d) => d.of("error").length === 1)
    t.equal(aliceA.of("error")[0]?.code, "INVALID_FRAME")
  })

  await t.test("retrying a send with the same id, from another edge, stores one message", async (t) => {
    const id = randomUUID()
    aliceA.send({ type: "send", id, conv: direct.id, body: text("once") })
    aliceB.send({ type: "send", id, conv: direct.id, body: text("once") })
    await aliceB.waitFor(
      "two acks",
      () => aliceA.of("ack").some((a) => a.id === id) && aliceB.of("ack").some((a) => a.id === id),
    )
    const acks = [...aliceA.of("ack"), ...aliceB.of("ack")].filter((a) => a.id === id)
    t.same(acks.map((a) => a.duplicate).sort(), [false, true], "the retry is recognised")
    await bobB.waitFor("the direct message", (d) => d.of("message", direct.id).length >= 1)
    const history = await w.call("GET", `messages?conv=${direct.id}&after=0`, undefined, bob.token)
    t.same(
      history.items.map((m: Json) => [m.seq, m.id]),
      [[1, id]],
      "exactly one stored",
    )
  })

  await t.test(
    "concurrent senders in several conversations: contiguous seqs, same order everywhere",
    async (t) => {
      const convs = [group.id, direct.id]
      const sent = new Map<string, string[]>()
      for (let i = 0; i < 60; i++) {
        const conv = convs[i % 2] as string
        const id = randomUUID()
        sent.set(conv, [...(sent.get(conv) ?? []), id])
        const device = i % 3 === 0 ? bobB : i % 3 === 1 ? aliceA : aliceB
        device.send({ type: "send", id, conv, body: text(`m${i}`) })
      }
      for (const conv of convs) {
        const expected = (sent.get(conv)?.length ?? 0) + (conv === group.id ? 1 : 1)
        await aliceA.waitFor(
          `all of ${conv}`,
          (d) => new Set(d.of("message", conv).map((m) => m.seq)).size === expected,
          20_000,
        )
        const seqs = [...new Set(aliceA.of("message", conv).map((m) => m.seq as number))].sort(
          (a, b) => a - b,
        )
        t.same(
          seqs,
          Array.from({ length: expected }, (_, n) => n + 1),
          `${conv}: 1..${expected} without gaps`,
        )
        const history = await w.call("GET", `messages?conv=${conv}&after=0&limit=500`, undefined, alice.token)
        const order = history.items.map((m: Json) => m.id)
        const seenB = bobB
          .of("message", conv)
          .sort((x, y) => (x.seq as number) - (y.seq as number))
          .map((m) => m.id)
        t.same([...new Set(seenB)], order, "bob saw the same order as history")
      }
    },
  )

  await t.test("edits, reactions, reads and typing reach the members", async (t) => {
    const target = aliceA.of("message", group.id)[0]?.id as string
    aliceA.send({ type: "edit", id: randomUUID(), conv: group.id, target, body: text("edited") })
    bobB.send({ type: "react", id: randomUUID(), conv: group.id, target, emoji: "👍", op: "add" })
    bobB.send({ type: "read", conv: group.id, seq: 1 })
    bobB.send({ type: "typing", conv: group.id })
    await aliceA.waitFor("edit, reaction, read, typing", (d) =>
      ["edit", "reaction", "read", "typing"].every((type) => d.of(type, group.id).length > 0),
    )
    t.match(aliceA.of("typing", group.id)[0], { user: bob.id })
    t.match(aliceA.of("read", group.id)[0], { user: bob.id, seq: 1 })
    const list = await w.call("GET", "conversations", undefined, bob.token)
    t.equal(list.items.find((c: Json) => c.id === group.id).last_read_seq, 1)

    // bob may not edit alice's message: acked (JetStream stored it), then refused by the
    // sequencer, and his sockets are told so his outbox does not wait for it forever.
    const notHis = randomUUID()
    bobB.send({ type: "edit", id: notHis, conv: group.id, target, body: text("not mine") })
    await bobB.waitFor("the refusal", (d) => d.of("refused").some((f) => f.id === notHis))
    t.ok(
      bobB.of("ack").some((f) => f.id === notHis),
      "acked before it was refused",
    )
    t.same(
      bobB.of("refused").find((f) => f.id === notHis),
      {
        type: "refused",
        id: notHis,
        conv: group.id,
        code: "FORBIDDEN",
        message: "Only the sender or a group admin may do this.",
      },
    )
    t.notOk(
      aliceA.of("refused").some((f) => f.id === notHis),
      "only the sender is told",
    )
  })

  await t.test("a removed member stops receiving at once", async (t) => {
    const removed = await w.call(
      "DELETE",
      `conversations/${group.id}/members/${bob.id}`,
      undefined,
      alice.token,
    )
    t.same(removed.removed, [bob.id])
    // Edge B serves bob's and alice's sockets: it still follows the group for alice only.
    const before = bobB.of("message", group.id).length
    const id = randomUUID()
    bobB.send({ type: "send", id, conv: group.id, body: text("am I still here?") })
    await bobB.waitFor("refused", (d) => d.of("error").some((e) => e.id === id))
    aliceA.send({ type: "send", id: randomUUID(), conv: group.id, body: text("after bob left") })
    await aliceB.waitFor("alice's own copy on edge B", (d) =>
      d.of("message", group.id).some((m) => (m.body as Json).text === "after bob left"),
    )
    t.equal(bobB.of("message", group.id).length, before, "bob got nothing after his removal")
    const removals = bobB.of("membership", group.id).filter((m) => (m.removed as string[]).includes(bob.id))
    t.ok(removals.length > 0, "bob was told of his removal on his socket")

    // Added back: told on the socket he already has (the conversation's copy of the event goes
    // out before his edge has subscribed him), and receiving again at once.
    const told = bobB.of("membership", group.id).length
    await w.call("POST", `conversations/${group.id}/members`, { members: [bob.id] }, alice.token)
    await bobB.waitFor("bob told he was added", (d) => d.of("membership", group.id).length > told)
    const additions = bobB
      .of("membership", group.id)
      .slice(told)
      .filter((m) => (m.added as string[]).includes(bob.id))
    t.ok(additions.length > 0, "the frame names bob as added")
    t.equal(
      new Set(additions.map((m) => m.id)).size,
      1,
      "every copy carries the same id, for clients to drop repeats",
    )
    const welcome = randomUUID()
    aliceA.send({ type: "send", id: welcome, conv: group.id, body: text("welcome back") })
    await bobB.waitFor("bob receives again", (d) => d.of("message", group.id).some((m) => m.id === welcome))
  })
})

t.test(
  "nats-server killed with kill -9 during a send burst: every acked message stored once, in order",
  async (t) => {
    const w = await world(t)
    const [alice, bob] = [await w.user("alice"), await w.user("bob")]
    const group = await w.call(
      "POST",
      "conversations",
      { kind: "group", title: "burst", members: [bob.id] },
      alice.token,
    )
    // Edge B, whose rate limits let a burst of 150 frames through.
    const aliceA = await w.connect(w.edges.b, alice)
    const ids: string[] = Array.from({ length: 150 }, () => randomUUID())
    // The client's outbox: send everything, and resend (same id) whatever got an error, until every id is acked.
    const acked = new Set<string>()
    const sendAll = (only: readonly string[]) => {
      for (const id of only)
        aliceA.send({ type: "send", id, conv: group.id, body: text(`burst ${ids.indexOf(id)}`) })
    }
    sendAll(ids.slice(0, 75))
    await w.killNats()
    sendAll(ids.slice(75))
    await w.restartNats()
    for (let round = 0; acked.size < ids.length; round++) {
      if (round > 60) throw new Error(`only ${acked.size} of ${ids.length} acked`)
      await eventually(
        async () => {
          for (const a of aliceA.of("ack")) acked.add(a.id as string)
          const failed = new Set(aliceA.of("error").map((e) => e.id as string))
          const pending = ids.filter((id) => !acked.has(id))
          return pending.length === 0 || pending.every((id) => failed.has(id)) ? true : undefined
        },
        "every send answered",
        20_000,
      )
      const retry = ids.filter((id) => !acked.has(id))
      aliceA.frames.splice(0, aliceA.frames.length, ...aliceA.frames.filter((f) => f.type !== "error"))
      sendAll(retry)
    }
    const history = await eventually(
      async () => {
        const h = await w.call("GET", `messages?conv=${group.id}&after=0&limit=500`, undefined, alice.token)
        return h.items.length >= ids.length ? h : undefined
      },
      "all stored",
      30_000,
    )
    t.equal(history.items.length, ids.length, "every acked message stored exactly once")
    t.same(
      history.items.map((m: Json) => m.seq),
      ids.map((_, n) => n + 1),
      "no seq gap",
    )
    t.same([...new Set(history.items.map((m: Json) => m.id))].sort(), [...ids].sort())
  },
)

t.test(
  "the sequencer killed mid-burst (batches committed but not acked are redelivered): nothing stored twice, everything delivered",
  async (t) => {
    const w = await world(t)
    const [alice, bob] = [await w.user("alice"), await w.user("bob")]
    const group = await w.call(
      "POST",
      "conversations",
      { kind: "group", title: "crash", members: [bob.id] },
      alice.token,
    )
    const aliceB = await w.connect(w.edges.b, alice)
    const bobA = await w.connect(w.edges.a, bob)
    const persist = await processWithHandler("functions/persist/handler.js")
    const ids: string[] = Array.from({ length: 120 }, () => randomUUID())
    for (const [n, id] of ids.entries()) {
      aliceB.send({ type: "send", id, conv: group.id, body: text(`crash ${n}`) })
      // Kill the sequencer's process while batches are being committed and acknowledged.
      if (n === 40) process.kill(persist, "SIGKILL")
    }
    await aliceB.waitFor("every send acked", (d) => d.of("ack").length === ids.length, 30_000)
    await bobA.waitFor(
      "every message delivered",
      (d) => new Set(d.of("message", group.id).map((m) => m.id)).size === ids.length,
      30_000,
    )
    const history = await w.call("GET", `messages?conv=${group.id}&after=0&limit=500`, undefined, alice.token)
    t.equal(history.items.length, ids.length, "each stored once")
    t.same(
      history.items.map((m: Json) => m.seq),
      ids.map((_, n) => n + 1),
      "no seq gap",
    )
    t.same(
      history.items.map((m: Json) => m.id),
      ids,
      "in the order one client sent them",
    )
    t.not(
      await processWithHandler("functions/persist/handler.js"),
      persist,
      "the runtime started a new sequencer",
    )
  },
)

/** The pid of the function process serving `handler` (its COVE_HANDLER), among this test's descendants. */
async function processWithHandler(handler: string): Promise<number> {
  for (const p of await descendants(process.pid)) {
    const environ = await readFile(`/proc/${p.pid}/environ`, "utf8").catch(() => "")
    if (environ.split("\0").some((v) => v.startsWith("COVE_HANDLER=") && v.endsWith(handler))) return p.pid
  }
  throw new Error(`no process serves ${handler}`)
}

t.test("presence: online on any device of any edge; offline after the grace period everywhere", async (t) => {
  const w = await world(t)
  const [alice, bob] = [await w.user("alice"), await w.user("bob")]
  await w.call("POST", "conversations", { kind: "group", title: "presence", members: [bob.id] }, alice.token)
  // Over COVE_EDGE_PRESENCE_MAX_MEMBERS (2 here): no presence is announced in it, so alice hears
  // each change of bob's once (from the pair), not once per shared conversation.
  const carol = await w.user("carol")
  await w.call(
    "POST",
    "conversations",
    { kind: "group", title: "crowd", members: [bob.id, carol.id] },
    alice.token,
  )
  const aliceA = await w.connect(w.edges.a, alice)
  const presenceOfBob = () =>
    aliceA
      .of("presence")
      .filter((p) => p.user === bob.id)
      .map((p) => p.online)

  const bobB = await w.connect(w.edges.b, bob)
  await aliceA.waitFor("bob online", () => presenceOfBob().length === 1)
  t.same(presenceOfBob(), [true])
  aliceA.send({ type: "who", users: [bob.id, alice.id], ref: "w1" })
  await aliceA.waitFor("who answer", (d) => d.of("who").length === 1)
  t.same(aliceA.of("who")[0], { type: "who", users: { [bob.id]: true, [alice.id]: true }, ref: "w1" })

  // A second device on the other edge, then the first one leaves: still online.
  const bobA = await w.connect(w.edges.a, bob)
  bobB.ws.close()
  aliceA.send({ type: "who", users: [bob.id], ref: "w2" })
  await aliceA.waitFor("second who answer", (d) => d.of("who").some((f) => f.ref === "w2"))
  t.same(aliceA.of("who").find((f) => f.ref === "w2")?.users, { [bob.id]: true })
  // Leave and come back within the grace period: no flicker. Then his last device leaves.
  bobA.ws.close()
  const bobAgain = await w.connect(w.edges.a, bob)
  bobAgain.ws.close()
  await aliceA.waitFor("bob offline", () => presenceOfBob().length === 2, 10_000)
  t.same(presenceOfBob(), [true, false], "one offline after his last device left, not one per device")
})

t.test("presence: a member added while online is announced in the new conversation", async (t) => {
  const w = await world(t)
  const [alice, dave, erin] = [await w.user("alice"), await w.user("dave"), await w.user("erin")]
  const aliceA = await w.connect(w.edges.a, alice)
  const daveB = await w.connect(w.edges.b, dave)
  const erinB = await w.connect(w.edges.b, erin)
  const presenceOf = (d: typeof aliceA, user: string) =>
    d
      .of("presence")
      .filter((p) => p.user === user)
      .map((p) => p.online)
  // No conversation in common yet: nobody hears of anyone.
  const pair = await w.call(
    "POST",
    "conversations",
    { kind: "group", title: "pair", members: [dave.id] },
    alice.token,
  )
  await aliceA.waitFor("dave announced to alice", () => presenceOf(aliceA, dave.id).length === 1)
  await daveB.waitFor("alice announced to dave", () => presenceOf(daveB, alice.id).length === 1)
  t.same(presenceOf(aliceA, dave.id), [true])
  t.same(presenceOf(daveB, alice.id), [true])
  // Over COVE_EDGE_PRESENCE_MAX_MEMBERS (2 here): erin is added, nobody is announced in it.
  const crowd = await w.call("POST", `conversations/${pair.id}/members`, { members: [erin.id] }, alice.token)
  t.same(crowd, { added: [erin.id] })
  await erinB.waitFor("erin told she joined", (d) => d.of("membership").length === 1)
  // Dave's last device leaves: alice hears it in the conversation that heard him arrive.
  daveB.ws.close()
  await aliceA.waitFor("dave offline", () => presenceOf(aliceA, dave.id).length === 2, 10_000)
  t.same(presenceOf(aliceA, dave.id), [true, false])
  t.same(presenceOf(aliceA, erin.id), [], "not announced in a conversation over the limit")
})

t.test(
  "identity end to end: a user disabled by an admin loses every socket on every edge within 1 s",
  async (t) => {
    const w = await world(t)
    const bob = await w.user("bob")
    const devices = [await w.connect(w.edges.a, bob), await w.connect(w.edges.b, bob)]
    const closed = devices.map(
      (d) =>
        new Promise<{ code: number; at: number }>((resolve) =>
          d.ws.once("close", (code) => resolve({ code, at: Date.now() })),
        ),
    )
    const disabledAt = Date.now()
    await w.call("POST", `auth/users/${bob.id}/disable`, {}, w.admin.access_token)
    for (const c of await Promise.all(closed)) {
      t.equal(c.code, 4004, "closed with AUTH_USER_DISABLED")
      t.ok(c.at - disabledAt < 1000, `closed ${c.at - disabledAt} ms after the admin's request`)
    }
    // The same token cannot open a new socket on either edge.
    for (const edge of [w.edges.a, w.edges.b]) {
      const ws = new WebSocket(edge, { headers: { authorization: `Bearer ${bob.token}` } })
      const status = await new Promise<number>((resolve) => {
        ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
        ws.once("open", () => resolve(101))
      })
      // Ending a refused handshake makes ws report "closed before the connection was established".
      ws.on("error", () => undefined)
      ws.terminate()
      t.equal(status, 403, "refused before the upgrade")
    }
  },
)

/**
 * Frames on an open socket: answers, error frames, and the connection-level closes of
 * docs/protocol.md (frame too large, no first frame, flooding, too many sockets).
 */
import t, { type Test } from "tap"
import { connect, newSigningKey, signToken, type TestEdge, withEdge, withJwks } from "../support/edge"
import { withNats } from "../support/servers"

const nats = await withNats(t)
const key = await newSigningKey("k1")
const jwks = await withJwks(t, [key])

function edgeWith(t: Test, env: Record<string, string> = {}): Promise<TestEdge> {
  return withEdge(t, { NATS_URL: nats.url, COVE_JWKS_URL: jwks.url, ...env })
}

async function pingPong(t: Test, edge: TestEdge, user = "alice"): Promise<void> {
  const { client } = await connect(edge.url, { token: await signToken(key, { sub: user }) })
  client.send({ type: "ping", ref: "ok" })
  t.same(await client.next(), { type: "pong", ref: "ok" }, "a good client is served")
  client.ws.close()
}

const edge = await edgeWith(t, { COVE_EDGE_MAX_FRAME_BYTES: "1024" })

t.test("ping gets pong, with and without ref", async (t) => {
  const { client } = await connect(edge.url, { token: await signToken(key) })
  client.send({ type: "ping", ref: "r1" })
  t.same(await client.next(), { type: "pong", ref: "r1" })
  client.send({ type: "ping" })
  t.same(await client.next(), { type: "pong" })
  client.ws.close()
})

t.test("bad frames get error frames and the socket stays open", async (t) => {
  const { client } = await connect(edge.url, { token: await signToken(key) })
  client.send("{not json")
  t.match(await client.next(), { type: "error", code: "INVALID_JSON", message: String })
  client.send({ type: "shout", ref: "r2" })
  t.match(await client.next(), { type: "error", code: "UNKNOWN_FRAME_TYPE", ref: "r2" })
  client.send("[1,2]")
  t.match(await client.next(), { type: "error", code: "INVALID_FRAME" })
  client.send({ ref: "r3" })
  t.match(await client.next(), { type: "error", code: "INVALID_FRAME", ref: "r3" })
  client.send({ type: "ping", ref: "x".repeat(65) })
  t.match(await client.next(), { type: "error", code: "INVALID_FRAME" })
  client.ws.send(Buffer.from([1, 2, 3]))
  t.match(await client.next(), { type: "error", code: "INVALID_FRAME", message: /Binary/ })
  client.send({ type: "ping", ref: "still" })
  t.same(await client.next(), { type: "pong", ref: "still" })
  client.ws.close()
  const text = await (await fetch(`${edge.http}/metrics`)).text()
  t.match(text, /cove_edge_error_frames_total\{code="INVALID_JSON"\} [1-9]/)
})

t.test("a frame over max_frame_bytes closes with 1009", async (t) => {
  const { client } = await connect(edge.url, { token: await signToken(key) })
  client.send(JSON.stringify({ type: "ping", pad: "x".repeat(1100) }))
  t.match(await client.closedWithin(), { code: 1009, reason: "FRAME_TOO_LARGE" })
  await pingPong(t, edge)
})

t.test("a frame over twice the limit is dropped without a close frame", async (t) => {
  const { client } = await connect(edge.url, { token: await signToken(key) })
  client.send("x".repeat(4096))
  t.match(await client.closedWithin(), { code: 1006 })
  await pingPong(t, edge)
})

t.test("no first frame in time closes with 4008", async (t) => {
  const quick = await edgeWith(t, { COVE_EDGE_FIRST_FRAME_TIMEOUT_MS: "300" })
  const { client, hello } = await connect(quick.url, { token: await signToken(key) })
  const { client: talker } = await connect(quick.url, { token: await signToken(key) })
  talker.send({ type: "ping", ref: "early" })
  t.same(await talker.next(), { type: "pong", ref: "early" })
  t.match(hello, { limits: { first_frame_timeout_ms: 300 } })
  const started = Date.now()
  t.match(await client.closedWithin(3_000), { code: 4008, reason: "FIRST_FRAME_TIMEOUT" })
  t.ok(Date.now() - started >= 200, "not before the deadline")
  // The silent client's deadline has passed, so the talker's has too: it is still served.
  talker.send({ type: "ping", ref: "later" })
  t.same(await talker.next(), { type: "pong", ref: "later" })
  talker.ws.close()
})

t.test("a flood gets rate_limited error frames, then a close with 4029", async (t) => {
  const strict = await edgeWith(t, {
    COVE_EDGE_RATE_PER_SEC: "5",
    COVE_EDGE_RATE_BURST: "5",
    COVE_EDGE_RATE_STRIKES: "3",
  })
  const { client } = await connect(strict.url, { token: await signToken(key) })
  for (let i = 0; i < 50; i++) client.send({ type: "ping", ref: `f${i}` })
  const frames: Record<string, unknown>[] = []
  const closed = await client.closedWithin()
  for (;;) {
    try {
      frames.push(await client.next(100))
    } catch {
      // No more frames: the socket is closed and the queue is empty.
      break
    }
  }
  const pongs = frames.filter((f) => f.type === "pong")
  const limited = frames.filter((f) => f.type === "error" && f.code === "RATE_LIMITED")
  t.ok(pongs.length >= 5 && pongs.length <= 6, `the burst is served (${pongs.length} pongs)`)
  t.ok(limited.length >= 3 && limited.length <= 4, `then rate_limited frames (${limited.length})`)
  t.match(limited[0], { ref: /^f\d+$/, retry_after_ms: Number })
  t.match(closed, { code: 4029, reason: "RATE_LIMITED" })
  await pingPong(t, strict)
})

t.test("the per-user limit spans the user's sockets", async (t) => {
  const strict = await edgeWith(t, { COVE_EDGE_USER_RATE_PER_SEC: "1", COVE_EDGE_USER_RATE_BURST: "4" })
  const token = await signToken(key, { sub: "dora" })
  const a = await connect(strict.url, { token })
  const b = await connect(strict.url, { token })
  for (let i = 0; i < 3; i++) a.client.send({ type: "ping", ref: `a${i}` })
  for (let i = 0; i < 3; i++) b.client.send({ type: "ping", ref: `b${i}` })
  const answers: Record<string, unknown>[] = []
  for (const { client } of [a, a, a, b, b, b]) answers.push(await client.next())
  const limited = answers.filter((f) => f.code === "RATE_LIMITED")
  t.equal(limited.length, 2, "six frames against a burst of four")
  await pingPong(t, strict, "erin")
  a.client.ws.close()
  b.client.ws.close()
})

t.test("more sockets than allowed per user: the oldest is closed with 4009", async (t) => {
  const capped = await edgeWith(t, { COVE_EDGE_MAX_SOCKETS_PER_USER: "2" })
  const token = await signToken(key, { sub: "fred" })
  const first = await connect(capped.url, { token })
  const second = await connect(capped.url, { token })
  const third = await connect(capped.url, { token })
  t.match(await first.client.closedWithin(), { code: 4009, reason: "CONNECTION_REPLACED" })
  for (const { client } of [second, third]) {
    client.send({ type: "ping", ref: "alive" })
    t.same(await client.next(), { type: "pong", ref: "alive" })
  }
  t.equal(capped.openConnections(), 2)
  await pingPong(t, capped, "gina")
  second.client.ws.close()
  third.client.ws.close()
})

t.test("with one socket per user, each new socket replaces the last", async (t) => {
  const single = await edgeWith(t, { COVE_EDGE_MAX_SOCKETS_PER_USER: "1" })
  const token = await signToken(key, { sub: "hana" })
  const sockets = []
  for (let i = 0; i < 3; i++) sockets.push((await connect(single.url, { token })).client)
  for (const replaced of sockets.slice(0, 2)) {
    t.match(await replaced.closedWithin(), { code: 4009, reason: "CONNECTION_REPLACED" })
  }
  t.equal(single.openConnections(), 1)
  sockets[2]?.ws.close()
})

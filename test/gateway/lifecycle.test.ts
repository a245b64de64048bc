/**
 * Connections ended by the edge: revocation events over NATS (within 1 s), draining on
 * SIGTERM (1012), and readers too slow for what the edge sends (4010).
 */
import { connect as natsConnect } from "nats"
import t, { type Test } from "tap"
import { subjects } from "../../lib/protocol/subjects"
import {
  type Client,
  connect,
  newSigningKey,
  signToken,
  tryConnect,
  withEdge,
  withJwks,
} from "../support/edge"
import { eventually, withNats } from "../support/servers"

const nats = await withNats(t)
const key = await newSigningKey("k1")
const jwks = await withJwks(t, [key])
const publisher = await natsConnect({ servers: nats.url })
t.teardown(() => publisher.close())

function revoke(event: Record<string, unknown>): number {
  publisher.publish(subjects.userRevoked(String(event.user)), JSON.stringify({ type: "revoked", ...event }))
  return Date.now()
}

async function stillOpen(t: Test, client: Client, ref: string): Promise<void> {
  client.send({ type: "ping", ref })
  t.same(await client.next(), { type: "pong", ref }, `${ref} is still served`)
}

t.test("revocation events close the user's sockets within 1 s and refuse older tokens", async (t) => {
  const edge = await withEdge(t, { NATS_URL: nats.url, COVE_JWKS_URL: jwks.url })
  const old = { iatIn: -10 }
  const s1 = await connect(edge.url, { token: await signToken(key, { sub: "alice", sid: "s1", ...old }) })
  const s2 = await connect(edge.url, { token: await signToken(key, { sub: "alice", sid: "s2", ...old }) })
  const bob = await connect(edge.url, { token: await signToken(key, { sub: "bob", ...old }) })

  const logoutAt = revoke({ user: "alice", reason: "logout", sid: "s1" })
  const first = await s1.client.closedWithin(1_000)
  t.match(first, { code: 4005, reason: "AUTH_SESSION_REVOKED" })
  t.ok(first.at - logoutAt < 1_000, `closed ${first.at - logoutAt} ms after the event`)
  await stillOpen(t, s2.client, "other session")

  const everywhereAt = revoke({ user: "alice", reason: "logout_everywhere" })
  const second = await s2.client.closedWithin(1_000)
  t.match(second, { code: 4005, reason: "AUTH_SESSION_REVOKED" })
  t.ok(second.at - everywhereAt < 1_000)
  await stillOpen(t, bob.client, "another user")

  const stale = await tryConnect(edge.url, {
    token: await signToken(key, { sub: "alice", sid: "s3", ...old }),
  })
  t.match(stale, { kind: "refused", status: 401, body: { error: { code: "AUTH_SESSION_REVOKED" } } })
  const fresh = await connect(edge.url, { token: await signToken(key, { sub: "alice", sid: "s4" }) })
  t.match(fresh.hello, { user: { id: "alice" } }, "a token issued after the revocation works")
  fresh.client.ws.close()
  bob.client.ws.close()
})

t.test("a disabled user is closed with 4004 and refused with 403", async (t) => {
  const edge = await withEdge(t, { NATS_URL: nats.url, COVE_JWKS_URL: jwks.url })
  const token = await signToken(key, { sub: "carl", iatIn: -5 })
  const { client } = await connect(edge.url, { token })
  const at = revoke({ user: "carl", reason: "disabled" })
  const closed = await client.closedWithin(1_000)
  t.match(closed, { code: 4004, reason: "AUTH_USER_DISABLED" })
  t.ok(closed.at - at < 1_000)
  const again = await tryConnect(edge.url, { token })
  t.match(again, { kind: "refused", status: 403, body: { error: { code: "AUTH_USER_DISABLED" } } })
})

t.test("an edge that starts after a revocation refuses the tokens it revoked", async (t) => {
  // The first edge makes the COVE_CONTROL stream that keeps revocations; its refusal shows the
  // events were published and kept.
  const first = await withEdge(t, { NATS_URL: nats.url, COVE_JWKS_URL: jwks.url })
  const old = { iatIn: -10 }
  const erinToken = await signToken(key, { sub: "erin", ...old })
  const gusOld = await signToken(key, { sub: "gus", ...old })
  revoke({ user: "erin", reason: "disabled" })
  revoke({ user: "gus", reason: "logout_everywhere" })
  await eventually(
    async () => ((await tryConnect(first.url, { token: erinToken })).kind === "refused" ? true : undefined),
    "the first edge to hear of the revocation",
  )
  // A later second than the revocation's: this token is newer than it, and stays good however
  // late the next edge starts.
  await new Promise((resolve) => setTimeout(resolve, 1_100))
  const gusNew = await signToken(key, { sub: "gus" })

  const later = await withEdge(t, { NATS_URL: nats.url, COVE_JWKS_URL: jwks.url })
  t.match(await tryConnect(later.url, { token: erinToken }), {
    kind: "refused",
    status: 403,
    body: { error: { code: "AUTH_USER_DISABLED" } },
  })
  t.match(await tryConnect(later.url, { token: gusOld }), {
    kind: "refused",
    status: 401,
    body: { error: { code: "AUTH_SESSION_REVOKED" } },
  })
  const fresh = await connect(later.url, { token: gusNew })
  t.match(fresh.hello, { user: { id: "gus" } }, "a token issued after the revocation works")
  fresh.client.ws.close()
})

t.test("malformed revocation events are ignored", async (t) => {
  const edge = await withEdge(t, { NATS_URL: nats.url, COVE_JWKS_URL: jwks.url })
  const { client } = await connect(edge.url, { token: await signToken(key, { sub: "dana" }) })
  publisher.publish(subjects.userRevoked("dana"), "not json")
  publisher.publish(
    subjects.userRevoked("dana"),
    JSON.stringify({ type: "revoked", user: "dana", reason: "bored" }),
  )
  await publisher.flush()
  await stillOpen(t, client, "after garbage")
  t.equal((await fetch(`${edge.http}/healthz`)).status, 200)
  client.ws.close()
})

t.test("drain closes every socket with 1012 and stops listening", async (t) => {
  const edge = await withEdge(t, { NATS_URL: nats.url, COVE_JWKS_URL: jwks.url })
  const clients = await Promise.all(
    ["e1", "e2", "e3"].map(
      async (sub) => (await connect(edge.url, { token: await signToken(key, { sub }) })).client,
    ),
  )
  t.equal((await fetch(`${edge.http}/healthz`)).status, 200)
  await edge.drain(2_000)
  for (const client of clients) t.match(await client.closedWithin(), { code: 1012, reason: "SHUTTING_DOWN" })
  t.equal(edge.openConnections(), 0)
  await t.rejects(tryConnect(edge.url, { token: await signToken(key) }), /ECONNREFUSED/)
})

t.test("a reader slower than the edge writes is closed with 4010", async (t) => {
  const unlimited = "1000000"
  const edge = await withEdge(t, {
    NATS_URL: nats.url,
    COVE_JWKS_URL: jwks.url,
    COVE_EDGE_MAX_BACKPRESSURE_BYTES: "65536",
    COVE_EDGE_RATE_PER_SEC: unlimited,
    COVE_EDGE_RATE_BURST: unlimited,
    COVE_EDGE_USER_RATE_PER_SEC: unlimited,
    COVE_EDGE_USER_RATE_BURST: unlimited,
  })
  const { client } = await connect(edge.url, { token: await signToken(key, { sub: "slow" }) })
  client.ws.pause()
  const ping = JSON.stringify({ type: "ping", ref: "r".repeat(64) })
  const closes = async () => {
    const text = await (await fetch(`${edge.http}/metrics`)).text()
    return /cove_edge_closes_total\{code="4010"\} 1/.test(text) ? true : undefined
  }
  // Pongs pile up in the kernel buffers first, then in the edge; send until the edge gives up.
  for (let round = 0; round < 400 && (await closes()) === undefined; round++) {
    for (let i = 0; i < 1_000; i++) client.ws.send(ping)
    await new Promise<void>((resolve) => client.ws.send(ping, () => resolve()))
  }
  await eventually(closes, "the edge to close the slow reader")
  client.ws.resume()
  t.match(await client.closedWithin(10_000), { code: 4010, reason: "SLOW_CONSUMER" })
})

t.test("/healthz answers 503 while NATS is unreachable", async (t) => {
  const own = await withNats(t)
  const edge = await withEdge(t, { NATS_URL: own.url, COVE_JWKS_URL: jwks.url })
  t.equal((await fetch(`${edge.http}/healthz`)).status, 200)
  await own.stop()
  const status = await eventually(async () => {
    const res = await fetch(`${edge.http}/healthz`)
    return res.status === 503 ? res : undefined
  }, "/healthz to report NATS down")
  t.match(await status.json(), { status: "unavailable" })
})

t.test("the edge pings idle sockets and drops those that do not answer (1006)", async (t) => {
  const edge = await withEdge(t, {
    NATS_URL: nats.url,
    COVE_JWKS_URL: jwks.url,
    COVE_EDGE_IDLE_TIMEOUT_MS: "8000",
  })
  const token = await signToken(key, { sub: "ivan" })
  const mute = await connect(edge.url, { token, autoPong: false })
  const live = await connect(edge.url, { token })
  const pinged = new Promise<void>((resolve) => live.client.ws.once("ping", () => resolve()))
  for (const { client } of [mute, live]) {
    client.send({ type: "ping" })
    t.same(await client.next(), { type: "pong" })
  }
  await pinged
  t.match(await mute.client.closedWithin(15_000), { code: 1006 })
  await stillOpen(t, live.client, "the answering client")
  live.client.ws.close()
})

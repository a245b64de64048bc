/**
 * The door: every refused upgrade gets its documented status and JSON body, never a socket,
 * and leaves the edge serving good clients. The JWK Set comes from a small HTTP server that
 * stands in for the auth function.
 */
import { createRequire } from "node:module"
import { SignJWT } from "jose"
import t, { type Test } from "tap"
import { startEdge } from "../../gateway/edge"
import { assertNativeUws, loadNativeUws } from "../../gateway/socket"
import { freePort } from "../../infra/local/ports"
import { loadConfig } from "../../lib/config"
import { ACCESS_TOKEN_TYP } from "../../lib/protocol/tokens"
import { gatewayFields } from "../../lib/settings"
import {
  connect,
  newSigningKey,
  signToken,
  type TestEdge,
  tryConnect,
  withEdge,
  withJwks,
} from "../support/edge"
import { eventually, testLog, withNats } from "../support/servers"

const nats = await withNats(t)
const key = await newSigningKey("k1")
const jwks = await withJwks(t, [key])
const edge = await withEdge(t, {
  NATS_URL: nats.url,
  COVE_JWKS_URL: jwks.url,
  COVE_JWKS_COOLDOWN_MS: "1",
})

/** A good client still gets hello and pong: the refusal before left the edge healthy. */
async function stillServes(t: Test, e: TestEdge = edge): Promise<void> {
  const { client, hello } = await connect(e.url, { token: await signToken(key) })
  t.equal(hello.type, "hello")
  client.send({ type: "ping", ref: "p" })
  t.same(await client.next(), { type: "pong", ref: "p" })
  client.ws.close()
  const health = await fetch(`${e.http}/healthz`)
  t.equal(health.status, 200)
}

async function refused(t: Test, token: string | undefined, code: string, status = 401): Promise<void> {
  const attempt = await tryConnect(edge.url, token === undefined ? {} : { token })
  t.equal(attempt.kind, "refused", `${code}: no socket`)
  if (attempt.kind === "refused") {
    t.equal(attempt.status, status)
    t.equal(attempt.body.error.code, code)
    t.type(attempt.body.error.message, "string")
  }
  await stillServes(t)
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url")
}

t.test("a valid token opens a socket, from the header or the query", async (t) => {
  const { client, hello } = await connect(edge.url, { token: await signToken(key, { sub: "alice" }) })
  t.match(hello, {
    type: "hello",
    protocol: 1,
    user: { id: "alice" },
    session: /^[0-9a-f-]{36}$/,
    server_time: /^\d{4}-\d\d-\d\dT/,
    limits: { max_frame_bytes: 65_536, max_sockets_per_user: 10, rate_per_sec: 20 },
  })
  client.ws.close()
  const viaQuery = await connect(edge.url, { token: await signToken(key, { sub: "bob" }), inQuery: true })
  t.match(viaQuery.hello, { type: "hello", user: { id: "bob" } })
  viaQuery.client.ws.close()
})

t.test("no token", (t) => refused(t, undefined, "AUTH_REQUIRED"))

t.test("an Authorization header that is not Bearer", async (t) => {
  const attempt = await tryConnect(edge.url, { headers: { authorization: "Basic YWxpY2U6c2VjcmV0" } })
  t.match(attempt, { kind: "refused", status: 401, body: { error: { code: "AUTH_REQUIRED" } } })
})

t.test("a garbage token", (t) => refused(t, "not.a.jwt", "AUTH_TOKEN_INVALID"))

t.test("a bad signature", async (t) => {
  const impostor = await newSigningKey("k1")
  await refused(t, await signToken(impostor), "AUTH_TOKEN_INVALID")
})

t.test("alg none", async (t) => {
  const now = Math.floor(Date.now() / 1000)
  const claims = { sub: "alice", iss: "cove", aud: "cove", iat: now, exp: now + 900 }
  await refused(
    t,
    `${b64url({ alg: "none", typ: ACCESS_TOKEN_TYP })}.${b64url(claims)}.`,
    "AUTH_TOKEN_INVALID",
  )
})

t.test("HS256 signed with the public key", async (t) => {
  const secret = Buffer.from(key.jwk.x as string, "base64url")
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "HS256", kid: key.kid, typ: ACCESS_TOKEN_TYP })
    .setSubject("alice")
    .setIssuer("cove")
    .setAudience("cove")
    .setIssuedAt()
    .setExpirationTime("15m")
    .sign(secret)
  await refused(t, token, "AUTH_TOKEN_INVALID")
})

t.test("expired, beyond the clock tolerance", async (t) =>
  refused(t, await signToken(key, { expIn: -60, iatIn: -960 }), "AUTH_TOKEN_EXPIRED"),
)

t.test("expired by less than the clock tolerance is accepted", async (t) => {
  const { client, hello } = await connect(edge.url, {
    token: await signToken(key, { expIn: -2, iatIn: -900 }),
  })
  t.equal(hello.type, "hello")
  client.ws.close()
})

t.test("not yet valid", async (t) => refused(t, await signToken(key, { nbfIn: 60 }), "AUTH_TOKEN_INVALID"))
t.test("wrong audience", async (t) =>
  refused(t, await signToken(key, { aud: "other" }), "AUTH_TOKEN_INVALID"),
)
t.test("wrong issuer", async (t) => refused(t, await signToken(key, { iss: "other" }), "AUTH_TOKEN_INVALID"))
t.test("a subject outside the id alphabet", async (t) =>
  refused(t, await signToken(key, { sub: "a.b.>" }), "AUTH_TOKEN_INVALID"),
)

t.test("a token without exp", async (t) => {
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: ACCESS_TOKEN_TYP })
    .setSubject("alice")
    .setIssuer("cove")
    .setAudience("cove")
    .setIssuedAt()
    .sign(key.privateKey)
  await refused(t, token, "AUTH_TOKEN_INVALID")
})

t.test("a token of another type (typ)", async (t) => {
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: "JWT" })
    .setSubject("alice")
    .setIssuer("cove")
    .setAudience("cove")
    .setIssuedAt()
    .setExpirationTime("15m")
    .sign(key.privateKey)
  await refused(t, token, "AUTH_TOKEN_INVALID")
})

t.test("an unknown kid is refused, and a key added to the JWK Set later is picked up", async (t) => {
  const rotated = await newSigningKey("k2")
  await refused(t, await signToken(rotated), "AUTH_TOKEN_INVALID")
  jwks.keys.push(rotated.jwk)
  const { client, hello } = await connect(edge.url, { token: await signToken(rotated, { sub: "carol" }) })
  t.match(hello, { user: { id: "carol" } })
  client.ws.close()
})

t.test("unknown kids refetch the JWK Set at most once per cooldown", async (t) => {
  const slow = await withEdge(t, {
    NATS_URL: nats.url,
    COVE_JWKS_URL: jwks.url,
    COVE_JWKS_COOLDOWN_MS: "60000",
  })
  await stillServes(t, slow)
  const before = jwks.fetches
  for (let i = 0; i < 5; i++) {
    const stranger = await newSigningKey(`x${i}`)
    const attempt = await tryConnect(slow.url, { token: await signToken(stranger) })
    t.match(attempt, { kind: "refused", status: 401, body: { error: { code: "AUTH_TOKEN_INVALID" } } })
  }
  t.equal(jwks.fetches, before, "no refetch within the cooldown")
})

t.test("an unreachable JWK Set gives 503, not 401: the token may be fine", async (t) => {
  const closed = await withEdge(t, {
    NATS_URL: nats.url,
    COVE_JWKS_URL: `http://127.0.0.1:${await freePort()}/jwks`,
  })
  const attempt = await tryConnect(closed.url, { token: await signToken(key) })
  t.match(attempt, { kind: "refused", status: 503, body: { error: { code: "UNAVAILABLE" } } })
})

t.test("while the JWK Set fails, upgrades fail fast without a fetch each; it recovers", async (t) => {
  const flaky = await withJwks(t, [key])
  flaky.failing = true
  const edge = await withEdge(t, { NATS_URL: nats.url, COVE_JWKS_URL: flaky.url })
  for (let i = 0; i < 5; i++) {
    const attempt = await tryConnect(edge.url, { token: await signToken(key) })
    t.match(attempt, { kind: "refused", status: 503, body: { error: { code: "UNAVAILABLE" } } })
  }
  t.equal(flaky.fetches, 1, "one fetch for five upgrades")
  flaky.failing = false
  const opened = await eventually(async () => {
    const attempt = await tryConnect(edge.url, { token: await signToken(key) })
    return attempt.kind === "open" ? attempt.client : undefined
  }, "an upgrade to succeed once the JWK Set is back")
  opened.ws.close()
})

t.test("a foreign Origin is refused with 403; the own origin and native clients are allowed", async (t) => {
  const token = await signToken(key)
  const evil = await tryConnect(edge.url, { token, origin: "https://evil.example" })
  t.match(evil, { kind: "refused", status: 403, body: { error: { code: "ORIGIN_NOT_ALLOWED" } } })
  const own = await connect(edge.url, { token, origin: "http://localhost:8080" })
  own.client.ws.close()
  const configured = await withEdge(t, {
    NATS_URL: nats.url,
    COVE_JWKS_URL: jwks.url,
    COVE_ALLOWED_ORIGINS: "https://chat.example.com, https://app.example.com",
  })
  const app = await connect(configured.url, { token, origin: "https://app.example.com" })
  app.client.ws.close()
  const local = await tryConnect(configured.url, { token, origin: "http://localhost:8080" })
  t.match(local, { kind: "refused", status: 403 })
  await stillServes(t)
})

t.test("a plain GET of /v1/ws is 426; unknown paths are 404", async (t) => {
  const plain = await fetch(edge.url.replace("ws:", "http:"))
  t.equal(plain.status, 426)
  t.match(await plain.json(), { error: { code: "UPGRADE_REQUIRED" } })
  const missing = await fetch(`${edge.http}/nope`)
  t.equal(missing.status, 404)
})

t.test("/metrics counts refusals by reason and open connections", async (t) => {
  const { client } = await connect(edge.url, { token: await signToken(key) })
  const text = await (await fetch(`${edge.http}/metrics`)).text()
  t.match(text, /cove_edge_upgrade_rejections_total\{reason="AUTH_REQUIRED"\} [1-9]/)
  t.match(text, /cove_edge_upgrade_rejections_total\{reason="ORIGIN_NOT_ALLOWED"\} [1-9]/)
  t.match(text, /cove_edge_connections [1-9]/)
  t.match(text, /# TYPE cove_edge_frames_in_total counter/)
  client.ws.close()
})

t.test("the edge refuses to run on the ws fallback of the uWS package", async (t) => {
  const fallback: unknown = createRequire(import.meta.url)("uWebSockets.js/dist/index.js")
  t.throws(() => assertNativeUws(fallback), /not running natively/)
  t.doesNotThrow(() => assertNativeUws(loadNativeUws()))
  const config = loadConfig(gatewayFields, {
    env: { COVE_EDGE_PORT: "0", NATS_URL: nats.url, COVE_JWKS_URL: jwks.url },
    secretsDir: "/nonexistent",
  })
  await t.rejects(startEdge(config, testLog, { uws: fallback }), /not running natively/)
})

/** The auth function's logic: handlers over real PostgreSQL and NATS, with a fake clock. */
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose"
import { connect } from "nats"
import t from "tap"
import { disableUser, enableUser, rotateSigningKey } from "../../functions/auth/admin"
import { jwks, login, logout, me, refresh, register } from "../../functions/auth/handler"
import { loginInput, registerInput } from "../../functions/auth/input"
import { createPasswordHasher, type PasswordHasher } from "../../functions/auth/passwords"
import type { AuthPorts } from "../../functions/auth/ports"
import { parseInput } from "../../lib/function/input"
import { subjects } from "../../lib/protocol/subjects"
import { ACCESS_TOKEN_TYP, DEFAULT_AUDIENCE, DEFAULT_ISSUER, TOKEN_ALG } from "../../lib/protocol/tokens"
import { collect, testHashParams, withAuth } from "../support/auth"
import { eventually, withNats, withPostgres } from "../support/servers"

const [pgServer, natsServer] = await Promise.all([withPostgres(t), withNats(t)])
const nc = await connect({ servers: natsServer.url })
t.teardown(() => nc.close())

const creds = (username: string, password = "correct horse") => ({ username, password })
const signUp = (p: AuthPorts, username: string, password?: string, authorization?: string) =>
  register(parseInput(registerInput, creds(username, password)), authorization, p)
const signIn = (p: AuthPorts, username: string, password?: string, address?: string) =>
  login(parseInput(loginInput, creds(username, password)), address, p)
const bearer = (token: string) => `Bearer ${token}`

t.test("register, log in and ask who I am; the first user is the admin", async (t) => {
  const { ports } = await withAuth(t, pgServer, nc)
  const first = await signUp(ports, "Ana")
  t.match(first, { token_type: "Bearer", expires_in: 900, user: { username: "Ana" } })
  t.type(first.access_token, "string")
  t.type(first.refresh_token, "string")
  const second = await signUp(ports, "张伟明")
  t.equal(second.user.username, "张伟明")

  const again = await signIn(ports, "ANA")
  t.equal(again.user.id, first.user.id, "login is case-insensitive")
  t.not(again.refresh_token, first.refresh_token)

  t.match(await me(bearer(again.access_token), ports), {
    user: { id: first.user.id, username: "Ana", admin: true },
  })
  t.match(await me(bearer(second.access_token), ports), { user: { username: "张伟明", admin: false } })
  await t.rejects(me(undefined, ports), { code: "AUTH_REQUIRED" })
  await t.rejects(me("Bearer not.a.jwt", ports), { code: "AUTH_TOKEN_INVALID" })
})

t.test("usernames collide after NFKC and case folding", async (t) => {
  const { ports } = await withAuth(t, pgServer, nc)
  await signUp(ports, "Anna.Lee")
  for (const variant of ["anna.lee", "ANNA.LEE", "Ａｎｎａ.Ｌｅｅ"]) {
    await t.rejects(signUp(ports, variant), { code: "AUTH_USERNAME_TAKEN", spec: { status: 409 } }, variant)
  }
  await signUp(ports, "straße")
  await t.rejects(signUp(ports, "STRASSE"), { code: "AUTH_USERNAME_TAKEN" }, "ß folds to ss")
  await signUp(ports, "Ὀδυσσεύς")
  await t.rejects(signUp(ports, "ὈΔΥΣΣΕΎΣ"), { code: "AUTH_USERNAME_TAKEN" }, "final sigma folds with sigma")
})

t.test("unknown user and wrong password: same answer, same hashing work", async (t) => {
  const real = createPasswordHasher({ params: testHashParams, concurrency: 2, queueMax: 100 })
  const verified: Array<string | undefined> = []
  const counting: PasswordHasher = {
    hash: (password) => real.hash(password),
    verify: (password, stored) => {
      verified.push(stored === undefined ? "dummy" : "stored")
      return real.verify(password, stored)
    },
    outdated: (stored) => real.outdated(stored),
  }
  const { ports } = await withAuth(t, pgServer, nc, { passwords: counting })
  await signUp(ports, "bob")
  const wrong = await signIn(ports, "bob", "not the password").catch((err: unknown) => err)
  const unknown = await signIn(ports, "nobody", "not the password").catch((err: unknown) => err)
  t.match(wrong, { code: "AUTH_INVALID_CREDENTIALS", spec: { status: 401 } })
  t.match(unknown, { code: "AUTH_INVALID_CREDENTIALS", spec: { status: 401 } })
  t.equal((wrong as Error).message, (unknown as Error).message)
  t.same(verified, ["stored", "dummy"], "the unknown user was hashed against a dummy")
})

t.test("logins are throttled per account with growing delays", async (t) => {
  const { ports, clock } = await withAuth(t, pgServer, nc, {
    settings: {
      throttle: {
        accountFree: 2,
        addressFree: 100,
        baseDelayMs: 1000,
        maxDelayMs: 60_000,
        windowMs: 3_600_000,
      },
    },
  })
  await signUp(ports, "carol")
  for (let i = 0; i < 3; i++)
    await t.rejects(signIn(ports, "carol", "wrong password"), { code: "AUTH_INVALID_CREDENTIALS" })
  await t.rejects(
    signIn(ports, "carol"),
    { code: "RATE_LIMITED", details: { retry_after: 1 } },
    "even the right password waits",
  )
  clock.advance(1000)
  await t.rejects(signIn(ports, "Carol", "wrong password"), { code: "AUTH_INVALID_CREDENTIALS" })
  await t.rejects(
    signIn(ports, "carol"),
    { code: "RATE_LIMITED", details: { retry_after: 2 } },
    "the delay doubled",
  )
  clock.advance(2000)
  await t.rejects(signIn(ports, "carol", "wrong password"), { code: "AUTH_INVALID_CREDENTIALS" })
  await t.rejects(signIn(ports, "carol"), { code: "RATE_LIMITED", details: { retry_after: 4 } })
  clock.advance(4000)
  await signIn(ports, "carol")
  await signIn(ports, "carol")
  await signIn(ports, "carol", "correct horse")
  t.pass("a good login clears the account's counter")

  // Unknown names are throttled alike, so throttling does not tell which names exist.
  for (let i = 0; i < 3; i++)
    await t.rejects(signIn(ports, "ghost", "wrong password"), { code: "AUTH_INVALID_CREDENTIALS" })
  await t.rejects(signIn(ports, "ghost"), { code: "RATE_LIMITED" })
})

t.test("logins are throttled per client address across accounts", async (t) => {
  const { ports } = await withAuth(t, pgServer, nc, {
    settings: {
      throttle: {
        accountFree: 100,
        addressFree: 3,
        baseDelayMs: 5000,
        maxDelayMs: 60_000,
        windowMs: 3_600_000,
      },
    },
  })
  await signUp(ports, "dave")
  for (const name of ["u1", "u2", "u3", "u4"]) {
    await t.rejects(signIn(ports, name, "wrong password", "203.0.113.7"), {
      code: "AUTH_INVALID_CREDENTIALS",
    })
  }
  await t.rejects(signIn(ports, "dave", undefined, "203.0.113.7"), {
    code: "RATE_LIMITED",
    details: { retry_after: 5 },
  })
  await signIn(ports, "dave", undefined, "198.51.100.1")
  t.pass("another address is not affected")
})

t.test("a burst of parallel guesses is counted as it arrives", async (t) => {
  const { ports } = await withAuth(t, pgServer, nc, {
    settings: {
      throttle: {
        accountFree: 3,
        addressFree: 100,
        baseDelayMs: 60_000,
        maxDelayMs: 60_000,
        windowMs: 3_600_000,
      },
    },
  })
  await signUp(ports, "erin")
  const results = await Promise.allSettled(
    Array.from({ length: 12 }, () => signIn(ports, "erin", "wrong password")),
  )
  const codes = results.map((r) => (r.status === "rejected" ? (r.reason as { code: string }).code : "ok"))
  t.equal(
    codes.filter((c) => c === "AUTH_INVALID_CREDENTIALS").length,
    4,
    "free attempts plus the one that blocks",
  )
  t.equal(codes.filter((c) => c === "RATE_LIMITED").length, 8)
})

t.test("refresh tokens rotate; replaying a rotated one revokes the whole family", async (t) => {
  const { ports } = await withAuth(t, pgServer, nc)
  const first = await signUp(ports, "frank")
  const events = await collect(t, nc, subjects.userRevoked(first.user.id))

  const second = await refresh({ refresh_token: first.refresh_token }, ports)
  t.not(second.refresh_token, first.refresh_token)
  t.not(second.access_token, first.access_token)
  t.equal(second.user.id, first.user.id)
  const third = await refresh({ refresh_token: second.refresh_token }, ports)

  // Someone replays the first token (stolen): the family dies, also for the legitimate holder.
  await t.rejects(refresh({ refresh_token: first.refresh_token }, ports), { code: "AUTH_TOKEN_INVALID" })
  await t.rejects(refresh({ refresh_token: third.refresh_token }, ports), { code: "AUTH_TOKEN_INVALID" })
  const sid = decodeClaims(first.access_token).sid
  await eventually(async () => (events.length > 0 ? true : undefined), "the revoked event")
  t.same(events[0], { type: "revoked", user: first.user.id, reason: "token_reuse", sid })

  // Another login of the same user is a different family and still works.
  const other = await signIn(ports, "frank")
  await refresh({ refresh_token: other.refresh_token }, ports)
})

t.test("two parallel uses of one refresh token: one wins, and the family is revoked", async (t) => {
  const { ports } = await withAuth(t, pgServer, nc)
  const first = await signUp(ports, "gina")
  const results = await Promise.allSettled([
    refresh({ refresh_token: first.refresh_token }, ports),
    refresh({ refresh_token: first.refresh_token }, ports),
  ])
  const won = results.filter((r) => r.status === "fulfilled")
  t.equal(won.length, 1)
  const winner = (won[0] as PromiseFulfilledResult<{ refresh_token: string }>).value
  await t.rejects(refresh({ refresh_token: winner.refresh_token }, ports), { code: "AUTH_TOKEN_INVALID" })
})

t.test("refresh tokens expire", async (t) => {
  const { ports, clock } = await withAuth(t, pgServer, nc, { settings: { refreshTtlSeconds: 60 } })
  const first = await signUp(ports, "hank")
  clock.advance(61_000)
  await t.rejects(refresh({ refresh_token: first.refresh_token }, ports), { code: "AUTH_TOKEN_EXPIRED" })
  await t.rejects(refresh({ refresh_token: "A".repeat(43) }, ports), { code: "AUTH_TOKEN_INVALID" })
})

t.test("logout ends one session; logout everywhere ends all and tells the edges", async (t) => {
  const { ports } = await withAuth(t, pgServer, nc)
  const phone = await signUp(ports, "iris")
  const laptop = await signIn(ports, "iris")
  const tablet = await signIn(ports, "iris")
  const events = await collect(t, nc, subjects.userRevoked(phone.user.id))

  await me(bearer(phone.access_token), ports)
  await logout({ refresh_token: phone.refresh_token, everywhere: false }, ports)
  await logout({ refresh_token: phone.refresh_token, everywhere: false }, ports)
  t.pass("logging out twice is fine")
  await t.rejects(
    me(bearer(phone.access_token), ports),
    { code: "AUTH_SESSION_REVOKED" },
    "the auth function refuses an ended session's access token at once",
  )
  await me(bearer(laptop.access_token), ports)
  await t.rejects(refresh({ refresh_token: phone.refresh_token }, ports), { code: "AUTH_TOKEN_INVALID" })
  const laptop2 = await refresh({ refresh_token: laptop.refresh_token }, ports)
  await t.rejects(
    logout({ refresh_token: laptop.refresh_token, everywhere: true }, ports),
    { code: "AUTH_TOKEN_INVALID" },
    "everywhere needs a current token",
  )

  await logout({ refresh_token: laptop2.refresh_token, everywhere: true }, ports)
  await t.rejects(refresh({ refresh_token: laptop2.refresh_token }, ports), { code: "AUTH_TOKEN_INVALID" })
  await t.rejects(refresh({ refresh_token: tablet.refresh_token }, ports), { code: "AUTH_TOKEN_INVALID" })
  await eventually(async () => (events.length >= 2 ? true : undefined), "two revoked events")
  t.same(events, [
    { type: "revoked", user: phone.user.id, reason: "logout", sid: decodeClaims(phone.access_token).sid },
    { type: "revoked", user: phone.user.id, reason: "logout_everywhere" },
  ])
})

t.test("a disabled user cannot log in or refresh, and the edges are told", async (t) => {
  const { ports } = await withAuth(t, pgServer, nc)
  const admin = await signUp(ports, "root")
  const jo = await signUp(ports, "joan")
  const events = await collect(t, nc, subjects.userRevoked(jo.user.id))

  await t.rejects(disableUser(bearer(jo.access_token), admin.user.id, ports), { code: "FORBIDDEN" })
  await t.rejects(disableUser(bearer(admin.access_token), admin.user.id, ports), { code: "FORBIDDEN" })
  const disabled = await disableUser(bearer(admin.access_token), jo.user.id, ports)
  t.match(disabled, { user: { id: jo.user.id, username: "joan" } })
  await eventually(async () => (events.length > 0 ? true : undefined), "the revoked event")
  t.same(events[0], { type: "revoked", user: jo.user.id, reason: "disabled" })

  await t.rejects(signIn(ports, "joan"), { code: "AUTH_USER_DISABLED", spec: { status: 403 } })
  await t.rejects(
    signIn(ports, "joan", "wrong password"),
    { code: "AUTH_INVALID_CREDENTIALS" },
    "no hint without the password",
  )
  await t.rejects(refresh({ refresh_token: jo.refresh_token }, ports), { code: "AUTH_TOKEN_INVALID" })
  await t.rejects(me(bearer(jo.access_token), ports), { code: "AUTH_USER_DISABLED" })
  await t.rejects(disableUser(bearer(admin.access_token), "00000000-0000-4000-8000-000000000000", ports), {
    code: "NOT_FOUND",
  })

  await enableUser(bearer(admin.access_token), jo.user.id, ports)
  await signIn(ports, "joan")
  t.pass("an enabled user logs in again")
})

t.test("admin-only registration: the first account is open, then only admins add accounts", async (t) => {
  const { ports } = await withAuth(t, pgServer, nc, { settings: { registration: "admin" } })
  const admin = await signUp(ports, "boss")
  await t.rejects(signUp(ports, "walkin"), { code: "AUTH_REGISTRATION_CLOSED", spec: { status: 403 } })
  const staff = await signUp(ports, "staff", undefined, bearer(admin.access_token))
  await t.rejects(signUp(ports, "friend", undefined, bearer(staff.access_token)), { code: "FORBIDDEN" })
})

t.test("parallel first registrations make exactly one admin", async (t) => {
  const { ports, pool } = await withAuth(t, pgServer, nc)
  await Promise.all(["kim1", "kim2", "kim3", "kim4", "kim5"].map((name) => signUp(ports, name)))
  const { rows } = await pool.query<{ admins: string }>(
    "SELECT count(*) FILTER (WHERE is_admin) AS admins FROM users",
  )
  t.equal(Number(rows[0]?.admins), 1)
})

t.test("access tokens: EdDSA, typ, kid, claims; verifiable with the JWKS", async (t) => {
  const { ports, clock } = await withAuth(t, pgServer, nc)
  const issued = await signUp(ports, "lena")
  const header = decodeProtectedHeader(issued.access_token)
  t.equal(header.alg, TOKEN_ALG)
  t.equal(header.typ, ACCESS_TOKEN_TYP)
  t.type(header.kid, "string")

  const set = await jwks(ports)
  t.equal(set.keys.length, 1)
  t.match(set.keys[0], { kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig", kid: header.kid })
  t.notOk("d" in (set.keys[0] as object), "no private part in the JWKS")
  const { payload } = await jwtVerify(issued.access_token, createLocalJWKSet({ keys: [...set.keys] }), {
    algorithms: ["EdDSA"],
    issuer: DEFAULT_ISSUER,
    audience: DEFAULT_AUDIENCE,
    typ: ACCESS_TOKEN_TYP,
    currentDate: clock.now(),
  })
  t.equal(payload.sub, issued.user.id)
  t.equal(payload.preferred_username, "lena")
  t.equal((payload.exp as number) - (payload.iat as number), 900)
  t.equal(payload.iat, Math.floor(clock.now().getTime() / 1000))
  t.type(payload.jti, "string")
  t.type(payload.sid, "string")
  const again = await signIn(ports, "lena")
  t.not(decodeClaims(again.access_token).jti, payload.jti, "each token has its own jti")

  clock.advance(910_000)
  await t.rejects(me(bearer(issued.access_token), ports), { code: "AUTH_TOKEN_EXPIRED" })
})

t.test("key rotation keeps tokens of the old key verifiable until they expire", async (t) => {
  const { ports, clock, pool } = await withAuth(t, pgServer, nc)
  const before = await signUp(ports, "max")
  const oldKid = decodeProtectedHeader(before.access_token).kid
  const rotated = await rotateSigningKey(ports)
  t.not(rotated.kid, oldKid)
  const after = await signIn(ports, "max")
  t.equal(decodeProtectedHeader(after.access_token).kid, rotated.kid, "new tokens use the new key")

  const set = await jwks(ports)
  t.same(set.keys.map((k) => k.kid).sort(), [oldKid, rotated.kid].sort())
  for (const token of [before.access_token, after.access_token]) {
    await jwtVerify(token, createLocalJWKSet({ keys: [...set.keys] }), { currentDate: clock.now() })
    await me(bearer(token), ports)
  }
  t.pass("both tokens verify")

  clock.advance(900_000 + 70_000)
  t.same(
    (await jwks(ports)).keys.map((k) => k.kid),
    [rotated.kid],
    "the old key leaves the JWKS once its tokens have expired",
  )
  const { rows } = await pool.query("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
  t.equal(rows.length, 1)
})

t.test("signing keys: one active key however many instances start at once; sealed at rest", async (t) => {
  const { ports, pool } = await withAuth(t, pgServer, nc)
  const { ensureSigningKey } = await import("../../functions/auth/sessions")
  await Promise.all(Array.from({ length: 8 }, () => ensureSigningKey(ports)))
  const { rows } = await pool.query<{ kid: string; private_key_sealed: Buffer; public_jwk: { x: string } }>(
    "SELECT kid, private_key_sealed, public_jwk FROM signing_keys",
  )
  t.equal(rows.length, 1)
  // The public key must not appear in clear in what is stored for the private key.
  const x = Buffer.from(rows[0]?.public_jwk.x ?? "", "base64url")
  t.equal(rows[0]?.private_key_sealed.includes(x), false)

  // A different key-encryption key cannot sign: the failure names the mismatch.
  const { withAuth: _unused, testSettings } = await import("../support/auth")
  const wrongKek = { ...ports, settings: testSettings() }
  await t.rejects(signUp(wrongKek, "nina"), /sealed with key-encryption key/)
})

t.test("hashes made with older parameters are upgraded at the next login", async (t) => {
  const { ports, pool } = await withAuth(t, pgServer, nc)
  const weak = createPasswordHasher({ params: { N: 512, r: 8, p: 1 }, concurrency: 1, queueMax: 10 })
  await signUp({ ...ports, passwords: weak }, "olga")
  const stored = async () =>
    (await pool.query<{ password_hash: string }>("SELECT password_hash FROM users")).rows[0]?.password_hash
  t.match(await stored(), /^scrypt\$512\$8\$1\$/)
  await signIn(ports, "olga")
  t.match(await stored(), /^scrypt\$1024\$8\$1\$/)
  await signIn(ports, "olga")
})

function decodeClaims(token: string): { sid: string; jti: string } {
  return JSON.parse(Buffer.from(token.split(".")[1] as string, "base64url").toString("utf8"))
}

t.test("expired refresh tokens and their empty families are pruned at later logins", async (t) => {
  const { ports, clock, pool } = await withAuth(t, pgServer, nc, { settings: { refreshTtlSeconds: 60 } })
  const old = await signUp(ports, "pia")
  await refresh({ refresh_token: old.refresh_token }, ports)
  clock.advance(120_000)
  await signIn(ports, "pia")
  const count = async (table: string) =>
    Number((await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n)
  t.equal(await count("refresh_tokens"), 1, "only the new login's token is left")
  t.equal(await count("token_families"), 1)
})

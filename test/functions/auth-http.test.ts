/** The auth function through the harness over HTTP: statuses, error bodies, headers, body limits. */
import { connect } from "nats"
import t from "tap"
import { authRoutes } from "../../functions/auth/routes"
import { defineFunction } from "../../lib/function/harness"
import { serveHandler } from "../../lib/function/server"
import { withAuth } from "../support/auth"
import { errorOf, jsonOf } from "../support/http"
import { testLog, withNats, withPostgres } from "../support/servers"

const [pgServer, natsServer] = await Promise.all([withPostgres(t), withNats(t)])
const nc = await connect({ servers: natsServer.url })
t.teardown(() => nc.close())

// The pool and the server live in this parent test, so they close before PostgreSQL stops.
let base = ""

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  })
}

t.test("the auth function over HTTP", async (t) => {
  const fixture = await withAuth(t, pgServer, nc, {
    settings: {
      throttle: {
        accountFree: 3,
        addressFree: 100,
        baseDelayMs: 30_000,
        maxDelayMs: 60_000,
        windowMs: 3_600_000,
      },
    },
  })
  const server = await serveHandler(
    defineFunction({ name: "auth", log: testLog, routes: authRoutes, ports: async () => fixture.ports }),
    { host: "127.0.0.1", port: 0, maxBodyBytes: 16 * 1024, log: testLog },
  )
  t.teardown(() => server.drain(1000))
  base = `http://127.0.0.1:${server.port}`

  t.test("register, login, refresh, me, jwks, logout over HTTP", async (t) => {
    const registered = await post("/register", { username: "Quinn", password: "correct horse" })
    t.equal(registered.status, 201)
    t.equal(registered.headers.get("cache-control"), "no-store")
    const tokens = await jsonOf(registered)
    t.match(tokens, {
      access_token: String,
      refresh_token: String,
      token_type: "Bearer",
      expires_in: 900,
      user: { id: String, username: "Quinn" },
    })

    const logged = await post("/login", { username: "quinn", password: "correct horse" })
    t.equal(logged.status, 200)
    const session = await jsonOf(logged)

    const meRes = await fetch(`${base}/me`, { headers: { authorization: `Bearer ${session.access_token}` } })
    t.equal(meRes.status, 200)
    t.match(await jsonOf(meRes), { user: { id: tokens.user.id, username: "Quinn", admin: true } })

    const refreshed = await post("/refresh", { refresh_token: session.refresh_token })
    t.equal(refreshed.status, 200)
    const next = await jsonOf(refreshed)

    const keys = await fetch(`${base}/jwks`)
    t.equal(keys.status, 200)
    t.match(keys.headers.get("cache-control"), /max-age=/)
    t.match(await jsonOf(keys), { keys: [{ kty: "OKP", crv: "Ed25519", alg: "EdDSA" }] })

    const out = await post("/logout", { refresh_token: next.refresh_token })
    t.equal(out.status, 204)
    t.match(await errorOf(await post("/refresh", { refresh_token: next.refresh_token })), {
      status: 401,
      code: "AUTH_TOKEN_INVALID",
    })
  })

  t.test("error statuses and bodies", async (t) => {
    await post("/register", { username: "rita", password: "correct horse" })
    t.match(await errorOf(await post("/register", { username: "RITA", password: "correct horse" })), {
      status: 409,
      code: "AUTH_USERNAME_TAKEN",
    })

    const invalid = await errorOf(await post("/register", { username: "r", password: "short" }))
    t.match(invalid, { status: 400, code: "INVALID_INPUT" })
    t.same(
      (invalid.details as { fields: { field: string }[] }).fields.map((f) => f.field).sort(),
      ["password", "username"],
      "the answer names each bad field",
    )
    t.match(await errorOf(await post("/login", {})), {
      status: 400,
      code: "INVALID_INPUT",
      details: { fields: [{ field: "username" }, { field: "password" }] },
    })
    t.match(await errorOf(await post("/login", "{not json")), { status: 400, code: "INVALID_JSON" })
    t.match(await errorOf(await post("/refresh", { refresh_token: "has spaces in it!!" })), {
      status: 400,
      details: { fields: [{ field: "refresh_token" }] },
    })
    const huge = await post("/login", { username: "rita", password: "x".repeat(20_000) })
    t.match(await errorOf(huge), { status: 413, code: "PAYLOAD_TOO_LARGE" })

    const wrong = await errorOf(await post("/login", { username: "rita", password: "wrong password" }))
    const unknown = await errorOf(await post("/login", { username: "nobody", password: "wrong password" }))
    t.match(wrong, { status: 401, code: "AUTH_INVALID_CREDENTIALS" })
    t.same({ ...wrong, request_id: undefined }, { ...unknown, request_id: undefined }, "identical answers")

    t.match(await errorOf(await fetch(`${base}/me`)), { status: 401, code: "AUTH_REQUIRED" })
    t.match(await errorOf(await fetch(`${base}/me`, { headers: { authorization: "Bearer abc.def.ghi" } })), {
      status: 401,
      code: "AUTH_TOKEN_INVALID",
    })
    t.match(await errorOf(await fetch(`${base}/login`)), { status: 405, code: "METHOD_NOT_ALLOWED" })
    t.match(await errorOf(await post("/users/not-a-uuid/disable", {})), {
      status: 400,
      details: { fields: [{ field: "id" }] },
    })
  })

  t.test("the directory finds enabled users by the start of their folded name", async (t) => {
    const admin = await jsonOf(await post("/login", { username: "quinn", password: "correct horse" }))
    const bearer = { authorization: `Bearer ${admin.access_token}` }
    for (const username of ["Dir_Ada", "dir_Adam", "DirXBob", "ＤＩＲ_Ann"]) {
      t.equal(
        (await post("/register", { username, password: "correct horse" }, bearer)).status,
        201,
        username,
      )
    }
    const find = async (q: string) => {
      const res = await fetch(`${base}/users?q=${encodeURIComponent(q)}`, { headers: bearer })
      t.equal(res.status, 200)
      return ((await jsonOf(res)).items as { username: string }[]).map((u) => u.username)
    }
    t.same(await find("DIR_AD"), ["Dir_Ada", "dir_Adam"], "case-folded prefix, in name order")
    t.same(await find("dir_"), ["Dir_Ada", "dir_Adam", "DIR_Ann"], "full-width letters fold; _ is literal")
    t.same(await find("dir%"), [], "% is literal, not a wildcard")
    t.same(await find("d_r"), [], "_ is literal, not a wildcard")
    t.same(await find("nobody-by-that-name"), [])
    const limited = await jsonOf(await fetch(`${base}/users?q=dir&limit=1`, { headers: bearer }))
    t.same(limited.items.length, 1)
    t.match(await errorOf(await fetch(`${base}/users?q=dir`)), { status: 401, code: "AUTH_REQUIRED" })
    t.match(await errorOf(await fetch(`${base}/users?q=`, { headers: bearer })), {
      status: 400,
      details: { fields: [{ field: "q" }] },
    })
    t.match(await errorOf(await fetch(`${base}/users?q=a&limit=500`, { headers: bearer })), {
      status: 400,
      details: { fields: [{ field: "limit" }] },
    })
  })

  t.test("throttled logins get 429 with retry_after and Retry-After", async (t) => {
    await post("/register", { username: "sven", password: "correct horse" })
    const from = { "x-forwarded-for": "192.0.2.44, 10.0.0.1" }
    for (let i = 0; i < 3; i++) {
      t.equal((await post("/login", { username: "sven", password: "wrong password" }, from)).status, 401)
    }
    t.equal((await post("/login", { username: "sven", password: "wrong password" }, from)).status, 401)
    const limited = await post("/login", { username: "sven", password: "correct horse" }, from)
    t.equal(limited.status, 429)
    t.equal(limited.headers.get("retry-after"), "30")
    t.match(await errorOf(limited), { code: "RATE_LIMITED", details: { retry_after: 30 } })
  })

  t.test("admin routes need an admin", async (t) => {
    const victim = await jsonOf(await post("/register", { username: "tara", password: "correct horse" }))
    const path = `/users/${victim.user.id}/disable`
    t.match(await errorOf(await post(path, {})), { status: 401, code: "AUTH_REQUIRED" })
    t.match(await errorOf(await post(path, {}, { authorization: `Bearer ${victim.access_token}` })), {
      status: 403,
      code: "FORBIDDEN",
    })
    // Quinn registered first in this file, so Quinn is the admin.
    const admin = await jsonOf(await post("/login", { username: "quinn", password: "correct horse" }))
    const done = await post(path, {}, { authorization: `Bearer ${admin.access_token}` })
    t.equal(done.status, 200)
    t.match(await errorOf(await post("/login", { username: "tara", password: "correct horse" })), {
      status: 403,
      code: "AUTH_USER_DISABLED",
    })
    const rotated = await post("/keys/rotate", {}, { authorization: `Bearer ${admin.access_token}` })
    t.equal(rotated.status, 200)
    t.equal((await jsonOf(await fetch(`${base}/jwks`))).keys.length, 2)
  })
})

/**
 * An edge killed with SIGKILL, on real servers: its users' presence keys expire, and the edge
 * that is left announces each user who has no socket elsewhere offline, once, to the members
 * of their conversations. The killed edge is the built bundle in its own process; the other is
 * the local stack's. Run after `npm run build` (npm test does).
 */
import { join } from "node:path"
import t, { type Test } from "tap"
import WebSocket from "ws"
import { repoRoot } from "../support/bundles"
import { type Json, jsonOf } from "../support/http"
import { startProgram } from "../support/processes"
import { eventually } from "../support/servers"
import { withStack } from "../support/stack"

// Short, so that the dead edge's keys expire in 3 × 200 ms. Every edge on this NATS uses them.
const PRESENCE = { COVE_EDGE_PRESENCE_HEARTBEAT_MS: "200", COVE_EDGE_PRESENCE_GRACE_MS: "300" }
/** docs/protocol.md: the keys' TTL, then the next sweep (at most 1⅝ heartbeats later), then the grace period. */
const BOUND_MS = 3 * 200 + (13 / 8) * 200 + 300
/** Longer than a sweep's whole cycle: a late or doubled announcement would show within it. */
const QUIET_MS = BOUND_MS + 400

type Frame = Record<string, unknown> & { type: string }

/** A WebSocket client that keeps every frame it received. */
class Device {
  readonly frames: Frame[] = []
  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => this.frames.push(JSON.parse(String(data)) as Frame))
  }
  presenceOf(user: string): unknown[] {
    return this.frames.filter((f) => f.type === "presence" && f.user === user).map((f) => f.online)
  }
  async waitFor(what: string, check: (d: Device) => boolean, deadlineMs = 10_000): Promise<void> {
    await eventually(async () => (check(this) ? true : undefined), what, deadlineMs)
  }
}

const stack = await withStack(t, { edgeEnv: PRESENCE })

async function call(path: string, body: unknown, token?: string): Promise<Json> {
  const res = await fetch(`${stack.gatewayUrl}/function/${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  })
  return jsonOf(res)
}

const password = "correct horse battery"
const admin = await call("auth/register", { username: "admin", password })
let userCounter = 0
async function user(): Promise<{ id: string; token: string }> {
  const r = await call("auth/register", { username: `user${++userCounter}`, password }, admin.access_token)
  return { id: r.user.id as string, token: r.access_token as string }
}

async function connect(t: Test, edgeUrl: string, who: { token: string }): Promise<Device> {
  const ws = new WebSocket(edgeUrl, { headers: { authorization: `Bearer ${who.token}` } })
  const device = new Device(ws)
  await new Promise((resolve, reject) => {
    ws.once("open", resolve)
    ws.once("error", reject)
  })
  t.teardown(() => ws.terminate())
  await device.waitFor("hello", (d) => d.frames.some((f) => f.type === "hello"))
  return device
}

/** A second edge in its own process, from the built bundle, on the stack's NATS and functions. */
async function edgeProcess(t: Test) {
  const edge = startProgram(
    process.execPath,
    ["--enable-source-maps", join(repoRoot, "build", "gateway.mjs")],
    {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      LOG_LEVEL: "info",
      NATS_URL: stack.natsUrl,
      COVE_EDGE_PORT: "0",
      COVE_FUNCTIONS_URL: stack.gatewayUrl,
      COVE_JWKS_URL: `${stack.gatewayUrl}/function/auth/jwks`,
      ...PRESENCE,
    },
  )
  t.teardown(() => {
    edge.child.kill("SIGKILL")
  })
  const [, port] = await edge.waitFor(/"port":(\d+)[^\n]*"edge listening"/, 30_000)
  return {
    url: `ws://127.0.0.1:${port}/v1/ws`,
    /** As a lost machine does: no drain, no deletes, nothing more on the wire. */
    kill: async () => {
      edge.child.kill("SIGKILL")
      await edge.exited
    },
  }
}

async function direct(a: { token: string }, b: { id: string }): Promise<void> {
  await call("conversations", { kind: "direct", members: [b.id] }, a.token)
}

t.test("a user whose only edge was killed is announced offline once to their conversations", async (t) => {
  const edge1 = await edgeProcess(t)
  const [u, w] = [await user(), await user()]
  await direct(u, w)
  const watcher = await connect(t, stack.edgeUrl, w)
  await connect(t, edge1.url, u)
  await watcher.waitFor("u online", (d) => d.presenceOf(u.id).length === 1)

  const killedAt = Date.now()
  await edge1.kill()
  await watcher.waitFor("u offline", (d) => d.presenceOf(u.id).length === 2, BOUND_MS + 5_000)
  t.comment(`announced offline ${Date.now() - killedAt} ms after the kill (bound ${BOUND_MS} ms + NATS)`)
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS))
  t.same(watcher.presenceOf(u.id), [true, false], "online once, then offline once")
})

t.test("a user with a socket on the edge that is left is not announced offline", async (t) => {
  const edge1 = await edgeProcess(t)
  const [u, onlyOnEdge1, w] = [await user(), await user(), await user()]
  await direct(u, w)
  await direct(onlyOnEdge1, w)
  const watcher = await connect(t, stack.edgeUrl, w)
  await connect(t, edge1.url, u)
  await connect(t, stack.edgeUrl, u)
  await connect(t, edge1.url, onlyOnEdge1)
  await watcher.waitFor("both online", (d) => d.presenceOf(onlyOnEdge1.id).length === 1)

  await edge1.kill()
  // The user who was only on the killed edge shows that a sweep after the expiry has run.
  await watcher.waitFor(
    "the other user offline",
    (d) => d.presenceOf(onlyOnEdge1.id).length === 2,
    BOUND_MS + 5_000,
  )
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS))
  t.same(watcher.presenceOf(u.id), [true], "online once, and no offline")
  t.same(watcher.presenceOf(onlyOnEdge1.id), [true, false])
})

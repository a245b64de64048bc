/**
 * An edge killed with SIGKILL, on real servers: its users' presence keys expire, and the edge
 * that is left announces each user who has no socket elsewhere offline, once, to the members
 * of their conversations. The killed edge is the built bundle in its own process; the other is
 * the local stack's. Run after `npm run build` (npm test does).
 */
import t, { type Test } from "tap"
import { type Device, stackClients } from "../support/device"
import { startEdgeProcess } from "../support/processes"
import { withStack } from "../support/stack"

// Short, so that the dead edge's keys expire in 3 × 200 ms. Every edge on this NATS uses them.
const PRESENCE = { COVE_EDGE_PRESENCE_HEARTBEAT_MS: "200", COVE_EDGE_PRESENCE_GRACE_MS: "300" }
/** docs/protocol.md: the keys' TTL, then the next sweep (at most 1⅝ heartbeats later), then the grace period. */
const BOUND_MS = 3 * 200 + (13 / 8) * 200 + 300
/** Longer than a sweep's whole cycle: a late or doubled announcement would show within it. */
const QUIET_MS = BOUND_MS + 400

/** The presence announcements of `user` that the device received, in order. */
function presenceOf(device: Device, user: string): unknown[] {
  return device
    .of("presence")
    .filter((f) => f.user === user)
    .map((f) => f.online)
}

const stack = await withStack(t, { edgeEnv: PRESENCE })

const clients = await stackClients(t, stack.gatewayUrl)
let userCounter = 0
const user = () => clients.user(`user${++userCounter}`)
const connect = clients.connect

/** A second edge in its own process, from the built bundle, on the stack's NATS and functions. */
const edgeProcess = (t: Test) => startEdgeProcess(t, stack, PRESENCE)

async function direct(a: { token: string }, b: { id: string }): Promise<void> {
  await clients.call("POST", "conversations", { kind: "direct", members: [b.id] }, a.token)
}

t.test("a user whose only edge was killed is announced offline once to their conversations", async (t) => {
  const edge1 = await edgeProcess(t)
  const [u, w] = [await user(), await user()]
  await direct(u, w)
  const watcher = await connect(stack.edgeUrl, w)
  await connect(edge1.url, u)
  await watcher.waitFor("u online", (d) => presenceOf(d, u.id).length === 1)

  const killedAt = Date.now()
  await edge1.kill()
  await watcher.waitFor("u offline", (d) => presenceOf(d, u.id).length === 2, BOUND_MS + 5_000)
  t.comment(`announced offline ${Date.now() - killedAt} ms after the kill (bound ${BOUND_MS} ms + NATS)`)
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS))
  t.same(presenceOf(watcher, u.id), [true, false], "online once, then offline once")
})

t.test("a user with a socket on the edge that is left is not announced offline", async (t) => {
  const edge1 = await edgeProcess(t)
  const [u, onlyOnEdge1, w] = [await user(), await user(), await user()]
  await direct(u, w)
  await direct(onlyOnEdge1, w)
  const watcher = await connect(stack.edgeUrl, w)
  await connect(edge1.url, u)
  await connect(stack.edgeUrl, u)
  await connect(edge1.url, onlyOnEdge1)
  await watcher.waitFor("both online", (d) => presenceOf(d, onlyOnEdge1.id).length === 1)

  await edge1.kill()
  // The user who was only on the killed edge shows that a sweep after the expiry has run.
  await watcher.waitFor(
    "the other user offline",
    (d) => presenceOf(d, onlyOnEdge1.id).length === 2,
    BOUND_MS + 5_000,
  )
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS))
  t.same(presenceOf(watcher, u.id), [true], "online once, and no offline")
  t.same(presenceOf(watcher, onlyOnEdge1.id), [true, false])
})

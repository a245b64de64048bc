/**
 * Presence after an edge dies, on a real nats-server: Presence instances stand for edges, each on
 * its own NATS connection, and an edge dies by stopping (its heartbeat and timers end, its keys
 * stay) and dropping that connection, as kill -9 would leave the buckets. The surviving edges
 * must announce its users offline once, and only those with no socket elsewhere.
 */
import { connect as natsConnect } from "nats"
import t, { type Test } from "tap"
import { Presence } from "../../gateway/presence"
import { AnnouncedStates } from "../../gateway/presence-state"
import { eventually, testLog, withNats } from "../support/servers"

const nats = await withNats(t)

// Short, so that a dead edge's keys expire in 3 × 100 ms. The buckets keep the settings of the
// first edge that made them, so every edge in this file (its own NATS server) uses these.
const HEARTBEAT_MS = 100
const GRACE_MS = 300
/** docs/protocol.md: the keys' TTL, then the next sweep (at most 1⅝ heartbeats later), then the grace period. */
const BOUND_MS = 3 * HEARTBEAT_MS + (13 / 8) * HEARTBEAT_MS + GRACE_MS
/** Longer than a sweep's whole cycle: a late or doubled announcement would show within it. */
const QUIET_MS = BOUND_MS + 2 * HEARTBEAT_MS

type Announcement = { edge: string; conv: string; user: string; online: boolean }

let counter = 0
const unique = (what: string) => `${what}${process.pid}x${++counter}`

function cluster(t: Test) {
  const heard: Announcement[] = []
  const start = async (name: string, heartbeatMs = HEARTBEAT_MS) => {
    const nc = await natsConnect({ servers: nats.url })
    const presence = await Presence.start({
      nc,
      edgeId: unique(name),
      graceMs: GRACE_MS,
      heartbeatMs,
      announce: (conv, f) => heard.push({ edge: name, conv, user: f.user, online: f.online }),
      log: testLog,
    })
    const die = async () => {
      await presence.stop()
      await nc.close()
    }
    t.teardown(die)
    return { presence, die }
  }
  const of = (user: string) => heard.filter((h) => h.user === user)
  const heardOffline = (user: string, count: number) =>
    eventually(
      async () => (of(user).filter((h) => !h.online).length >= count ? true : undefined),
      `${count} offline announcements of ${user}`,
      BOUND_MS + 5_000,
    )
  return { start, of, heardOffline }
}

const quiet = () => new Promise((resolve) => setTimeout(resolve, QUIET_MS))

t.test("a dead edge's user is announced offline once, where they were announced", async (t) => {
  const c = cluster(t)
  const a = await c.start("a")
  const b = await c.start("b")
  await c.start("c")
  const [user, conv1, conv2] = [unique("u"), unique("c"), unique("c")]
  await a.presence.arrived(user, new Set([conv1, conv2]))
  t.same(
    c.of(user).map((h) => [h.conv, h.online]),
    [
      [conv1, true],
      [conv2, true],
    ],
  )

  const diedAt = Date.now()
  await a.die()
  await c.heardOffline(user, 2)
  t.comment(`announced offline ${Date.now() - diedAt} ms after the edge died (bound ${BOUND_MS} ms + NATS)`)
  await quiet()
  const offline = c.of(user).filter((h) => !h.online)
  t.same(
    offline.map((h) => h.conv).sort(),
    [conv1, conv2].sort(),
    "once in each conversation that heard the arrival",
  )
  t.ok(
    offline.every((h) => h.edge === "b" || h.edge === "c"),
    "by one of the edges that are left",
  )
  t.same(await b.presence.online([user]), { [user]: false })
})

t.test("two edges sweeping the same user at the same moment announce once", async (t) => {
  const told: Array<{ edge: string; user: string; online: boolean }> = []
  const open = async (edge: string) => {
    const nc = await natsConnect({ servers: nats.url })
    t.teardown(() => nc.close())
    return AnnouncedStates.open(nc, await nc.jetstreamManager(), (user, _conversations, online) =>
      told.push({ edge, user, online }),
    )
  }
  const [b, c] = [await open("b"), await open("c")]
  const nobody = async () => new Set<string>()
  for (let round = 0; round < 10; round++) {
    const user = unique("u")
    await b.markOnline(user, new Set([unique("c")]))
    await Promise.all([b.markOfflineUnlessListed([user], nobody), c.markOfflineUnlessListed([user], nobody)])
    t.same(
      told.filter((h) => h.user === user).map((h) => h.online),
      [true, false],
      `round ${round}`,
    )
    t.notOk((await b.users()).includes(user), "the offline state is purged")
  }
})

t.test("a user who still has a socket on a surviving edge is not announced offline", async (t) => {
  const c = cluster(t)
  const a = await c.start("a")
  const b = await c.start("b")
  const [both, onlyA, conv] = [unique("u"), unique("u"), unique("c")]
  await a.presence.arrived(both, new Set([conv]))
  await b.presence.arrived(both, new Set([conv]))
  await a.presence.arrived(onlyA, new Set([conv]))

  await a.die()
  // The user who was only on the dead edge shows that a sweep after the expiry has run.
  await c.heardOffline(onlyA, 1)
  await quiet()
  t.same(
    c.of(both).map((h) => h.online),
    [true],
    "only the first arrival was announced",
  )
  t.same(await b.presence.online([both]), { [both]: true })
})

t.test("a user who reconnects elsewhere after their keys expired is not announced offline", async (t) => {
  const c = cluster(t)
  const a = await c.start("a")
  const b = await c.start("b")
  const [user, control, conv] = [unique("u"), unique("u"), unique("c")]
  await a.presence.arrived(user, new Set([conv]))
  await a.presence.arrived(control, new Set([conv]))

  await a.die()
  await eventually(
    async () => ((await b.presence.online([user]))[user] ? undefined : true),
    "the dead edge's keys to expire",
  )
  // Now within a sweep's grace period, or before the sweep that would suspect the user.
  await b.presence.arrived(user, new Set([conv]))
  await c.heardOffline(control, 1)
  await quiet()
  t.same(
    c.of(user).map((h) => h.online),
    [true],
    "the reconnect was not news, and nobody announced the user offline",
  )
})

t.test("an edge that could not renew its user's key in time announces the user again", async (t) => {
  const c = cluster(t)
  await c.start("b")
  // Renewing every 2 s, where keys live 300 ms: what an edge cut off from NATS for that long
  // leaves behind, with its socket still open.
  const a = await c.start("a", 20 * HEARTBEAT_MS)
  const [user, conv] = [unique("u"), unique("c")]
  await a.presence.arrived(user, new Set([conv]))
  await eventually(
    async () => (c.of(user).length >= 3 ? true : undefined),
    "a sweep's offline, then the late heartbeat's online again",
    20 * HEARTBEAT_MS + BOUND_MS + 5_000,
  )
  t.same(
    c.of(user).map((h) => [h.edge, h.online]),
    [
      ["a", true],
      ["b", false],
      ["a", true],
    ],
  )
  t.same(await a.presence.online([user]), { [user]: true })
})

t.test("after every edge died, the first edge up announces their users offline", async (t) => {
  const c = cluster(t)
  const a = await c.start("a")
  const [user, conv] = [unique("u"), unique("c")]
  await a.presence.arrived(user, new Set([conv]))
  await a.die()

  await c.start("b")
  await c.heardOffline(user, 1)
  await quiet()
  t.same(
    c.of(user).map((h) => [h.edge, h.online]),
    [
      ["a", true],
      ["b", false],
    ],
  )
})

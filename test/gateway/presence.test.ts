/**
 * Presence across edges, on a real nats-server: two Presence instances stand for two edges and
 * are driven through the interleavings that lost or doubled announcements before.
 */
import { connect as natsConnect } from "nats"
import t, { type Test } from "tap"
import { Presence } from "../../gateway/presence"
import { PRESENCE_STATE_BUCKET } from "../../gateway/presence-state"
import { eventually, testLog, withNats } from "../support/servers"

const nats = await withNats(t)
const nc = await natsConnect({ servers: nats.url })
t.teardown(() => nc.close())

type Announcement = { edge: string; conv: string; user: string; online: boolean }

let userCounter = 0
const conversations = new Set(["conv1"])

async function twoEdges(t: Test, graceMs: number) {
  const heard: Announcement[] = []
  const edge = (edgeId: string) =>
    Presence.start({
      nc,
      edgeId,
      graceMs,
      heartbeatMs: 60_000,
      joinSettleMs: 0,
      announce: (conv, f) => heard.push({ edge: edgeId, conv, user: f.user, online: f.online }),
      log: testLog,
    })
  const [a, b] = [await edge("a"), await edge("b")]
  t.teardown(async () => {
    await a.stop()
    await b.stop()
  })
  const user = `u${process.pid}x${++userCounter}`
  const changes = () => heard.filter((h) => h.user === user).map((h) => h.online)
  const heardIn = (conv: string) =>
    heard.filter((h) => h.user === user && h.conv === conv).map((h) => h.online)
  return { a, b, user, changes, heardIn }
}

async function settled(changes: () => boolean[], count: number, quietMs: number): Promise<boolean[]> {
  await eventually(async () => (changes().length >= count ? true : undefined), `${count} announcements`)
  // Long enough for a doubled announcement to show.
  await new Promise((r) => setTimeout(r, quietMs))
  return changes()
}

t.test("a socket that closes before its arrival is written still ends offline", async (t) => {
  for (let round = 0; round < 10; round++) {
    const { a, user, changes } = await twoEdges(t, 20)
    const arrival = a.arrived(user, conversations)
    a.left(user, conversations)
    await arrival
    t.same(await settled(changes, 2, 100), [true, false], `round ${round}`)
    t.same(await a.online([user]), { [user]: false })
  }
})

t.test("the last devices leaving two edges at the same moment announce offline once", async (t) => {
  for (let round = 0; round < 10; round++) {
    const { a, b, user, changes } = await twoEdges(t, 30)
    await a.arrived(user, conversations)
    await b.arrived(user, conversations)
    a.left(user, conversations)
    b.left(user, conversations)
    t.same(await settled(changes, 2, 150), [true, false], `round ${round}`)
  }
})

t.test("an arrival on one edge racing the last leave on another ends online", async (t) => {
  for (let round = 0; round < 10; round++) {
    const { a, b, user, changes } = await twoEdges(t, 0)
    await a.arrived(user, conversations)
    a.left(user, conversations)
    // The leave's timer fires on the next turn; the arrival races its bucket work.
    await new Promise((r) => setTimeout(r, round))
    await b.arrived(user, conversations)
    await new Promise((r) => setTimeout(r, 100))
    const seen = changes()
    t.equal(seen.at(-1), true, `round ${round}: the last announcement says online (${seen.join(",")})`)
    t.same(await a.online([user]), { [user]: true })
  }
})

t.test("a device coming back within the grace period causes no flicker", async (t) => {
  const { a, b, user, changes } = await twoEdges(t, 100)
  await a.arrived(user, conversations)
  a.left(user, conversations)
  await a.arrived(user, conversations)
  await b.arrived(user, conversations)
  a.left(user, conversations)
  b.left(user, conversations)
  t.same(await settled(changes, 2, 200), [true, false])
})

t.test("a conversation an online user joins hears it once, and hears the user go", async (t) => {
  const { a, b, user, heardIn } = await twoEdges(t, 20)
  // Offline: joining tells nobody.
  await a.joined(user, "conv2")
  t.same(heardIn("conv2"), [])
  // Online on two edges; both see the membership event.
  await a.arrived(user, conversations)
  await b.arrived(user, conversations)
  await Promise.all([a.joined(user, "conv2"), b.joined(user, "conv2")])
  await a.joined(user, "conv2")
  t.same(heardIn("conv2"), [true], "told once, whichever edges saw the join")
  // The edges know the user's conversations now include conv2.
  const both = new Set(["conv1", "conv2"])
  a.left(user, both)
  b.left(user, both)
  await eventually(async () => (heardIn("conv2").length === 2 ? true : undefined), "offline in conv2")
  t.same(heardIn("conv1"), [true, false])
  t.same(heardIn("conv2"), [true, false])
})

t.test("a conversation the user left is taken off those their presence reaches", async (t) => {
  const { a, b, user } = await twoEdges(t, 20)
  const states = await nc.jetstream().views.kv(PRESENCE_STATE_BUCKET)
  const told = async () => {
    const entry = await states.get(user)
    return entry === null ? undefined : (JSON.parse(entry.string()) as { told: string[] }).told.sort()
  }
  await a.departed(user, "conv1")
  t.equal(await told(), undefined, "offline: nothing to change")
  await a.arrived(user, new Set(["conv1", "conv2"]))
  await b.arrived(user, new Set(["conv1", "conv2"]))
  t.same(await told(), ["conv1", "conv2"])
  // Both edges hold the user's sockets and both hear the removal.
  await Promise.all([a.departed(user, "conv2"), b.departed(user, "conv2")])
  t.same(await told(), ["conv1"], "a sweep would tell conv1 only")
})

/**
 * The edge's fan-out held while control events catch up after a NATS reconnect (gateway/edge.ts):
 * what arrives meanwhile is kept in order and handed over on release, within a byte limit.
 */
import { connect } from "nats"
import t, { type Test } from "tap"
import { Fanout, MAX_HELD_BYTES } from "../../gateway/fanout"
import type { Socket } from "../../gateway/socket"
import { subjects } from "../../lib/protocol/subjects"
import { testLog, withNats } from "../support/servers"

async function subscribedFanout(t: Test) {
  const nats = await withNats(t)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const published: { topic: string; text: string }[] = []
  const fanout = new Fanout(
    nc,
    (topic, data) => published.push({ topic, text: new TextDecoder().decode(data) }),
    () => undefined,
    testLog,
  )
  const socket: Socket<{ conversations: Set<string> }> = {
    data: { conversations: new Set() },
    send: () => 0,
    close: () => undefined,
    subscribe: () => undefined,
    unsubscribe: () => undefined,
  }
  fanout.join(socket, "c1")
  await fanout.subscribed()
  const deliver = async (...frames: string[]) => {
    for (const f of frames) nc.publish(subjects.delivery("c1"), new TextEncoder().encode(f))
    await nc.flush()
    // One more round trip: the deliveries have come back to this connection's subscription.
    await nc.flush()
  }
  return { fanout, published, deliver }
}

t.test("held deliveries reach the sockets on release, in the order they came", async (t) => {
  const { fanout, published, deliver } = await subscribedFanout(t)
  fanout.hold()
  await deliver('{"n":1}', '{"n":2}\n{"n":3}')
  t.same(published, [], "nothing while held")
  t.equal(fanout.release(true), true, "nothing dropped")
  t.same(
    published.map((p) => p.text),
    ['{"n":1}', '{"n":2}', '{"n":3}'],
  )
  t.equal(fanout.holding, false)
  await deliver('{"n":4}')
  t.equal(published.at(-1)?.text, '{"n":4}', "delivered at once again")
})

t.test("a release without delivering drops what was held and says so", async (t) => {
  const { fanout, published, deliver } = await subscribedFanout(t)
  fanout.hold()
  await deliver('{"n":1}')
  t.equal(fanout.release(false), false)
  t.same(published, [])
})

t.test("past the byte limit, deliveries are dropped and the release says so", async (t) => {
  const { fanout, published, deliver } = await subscribedFanout(t)
  fanout.hold()
  const big = `"${"x".repeat(512 * 1024)}"`
  const count = Math.ceil(MAX_HELD_BYTES / big.length) + 2
  for (let i = 0; i < count; i++) await deliver(big)
  t.equal(fanout.release(true), false, "some were dropped")
  t.equal(published.length, Math.floor(MAX_HELD_BYTES / big.length), "those that fit were delivered")
})

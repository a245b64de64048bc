/**
 * Delivery payloads (frames joined by newlines) and the grouping that makes one NATS message of
 * a conversation's events of a batch, or of a partition's stored events.
 */
import t from "tap"
import { groupBySubject, joinParts } from "../../lib/adapters/nats-payload-groups"
import { FRAME_SEPARATOR, splitFrames } from "../../lib/protocol/delivery"

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const bytes = (value: unknown) => encoder.encode(JSON.stringify(value))
const texts = (frames: Uint8Array[]) => frames.map((f) => decoder.decode(f))

t.test("frames survive the trip through one payload, byte for byte", async (t) => {
  const frames = [
    { type: "message", seq: 1, body: { kind: "text", text: "第一行\n第二行 👋" } },
    { type: "message", seq: 2, body: { kind: "text", text: "\u2028 \r\n \\n" } },
    { type: "read", seq: 2 },
  ]
  const payload = joinParts(frames.map(bytes), FRAME_SEPARATOR)
  t.same(
    texts(splitFrames(payload)),
    frames.map((f) => JSON.stringify(f)),
    "newlines in text are escaped by JSON",
  )
  const one = bytes(frames[0])
  t.same(splitFrames(one), [one], "a single frame (as control events publish) is the payload itself")
  t.same(
    texts(splitFrames(encoder.encode('{"a":1}\n\n{"b":2}\n'))),
    ['{"a":1}', '{"b":2}'],
    "empty lines skipped",
  )
  t.same(splitFrames(new Uint8Array(0)), [], "an empty payload has no frame")
})

t.test("events are grouped per subject in their order, within the byte budget", async (t) => {
  const events = [
    { conv: "a", n: 1 },
    { conv: "b", n: 1 },
    { conv: "a", n: 2 },
    { conv: "a", n: 3 },
    { conv: "b", n: 2 },
  ]
  const size = bytes(events[0]).byteLength
  const all = groupBySubject(events, (e) => e.conv, bytes, 1_000_000)
  t.same(
    all.map((g) => [g.subject, g.events.map((e) => e.n)]),
    [
      ["a", [1, 2, 3]],
      ["b", [1, 2]],
    ],
  )
  const array = joinParts(all[0]?.parts ?? [], 0x2c, 0x5b, 0x5d)
  t.same(JSON.parse(decoder.decode(array)), [events[0], events[2], events[3]], "a JSON array of the events")
  t.ok((all[0]?.bytes ?? 0) >= array.byteLength, "the count covers the joined size")

  // Room for two events per group: a's three events need two groups, in order.
  const small = groupBySubject(events, (e) => e.conv, bytes, 2 * (size + 1) + 2)
  t.same(
    small.map((g) => [g.subject, g.events.map((e) => e.n)]),
    [
      ["a", [1, 2]],
      ["b", [1, 2]],
      ["a", [3]],
    ],
  )
  const tooBig = groupBySubject(events, (e) => e.conv, bytes, 1)
  t.equal(tooBig.length, events.length, "an event over the budget goes alone")
})

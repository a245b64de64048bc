/** The SDK's per-conversation ordering, without a network: exactly once, in order, gaps reported. */
import fc from "fast-check"
import t from "tap"
import type { StoredEvent } from "../../lib/protocol/events"
import { Sequencer } from "../../sdk/src/sequencer"

const ev = (conv: string, seq: number): StoredEvent => ({
  type: "message",
  conv,
  seq,
  id: `${conv}-${seq}`,
  from: "u",
  ts: "2026-11-27T10:00:00.000Z",
  body: { kind: "text", text: `m${seq}` },
})

function harness() {
  const emitted: Array<[string, number]> = []
  const gaps: Array<[string, number]> = []
  const s = new Sequencer({
    emit: (e) => emitted.push([e.conv, e.seq]),
    gap: (c, after) => gaps.push([c, after]),
  })
  return { s, emitted, gaps }
}

t.test("in order once; duplicates and old seqs dropped; conversations independent", async (t) => {
  const { s, emitted, gaps } = harness()
  s.watch("a", 0)
  for (const seq of [1, 2, 2, 1, 3]) s.accept(ev("a", seq))
  s.accept(ev("b", 7))
  s.accept(ev("b", 7))
  t.same(emitted, [
    ["a", 1],
    ["a", 2],
    ["a", 3],
    ["b", 7],
  ])
  t.same(gaps, [])
  t.equal(s.lastSeq("a"), 3)
  t.equal(s.lastSeq("b"), 7, "a conversation first seen starts at that delivery")
})

t.test("a gap holds later events back and asks for history; the fill releases them in order", async (t) => {
  const { s, emitted, gaps } = harness()
  s.watch("a", 2)
  t.equal(s.accept(ev("a", 5)), true)
  t.equal(s.accept(ev("a", 5)), false, "a buffered duplicate")
  t.same(emitted, [])
  t.same(gaps, [["a", 2]])
  t.ok(s.hasGap("a"))
  for (const seq of [3, 4, 5]) s.accept(ev("a", seq))
  t.same(
    emitted.map(([, seq]) => seq),
    [3, 4, 5],
  )
  t.notOk(s.hasGap("a"))
})

t.test("watch never moves back and skips what the app already has", async (t) => {
  const { s, emitted } = harness()
  s.watch("a", 0)
  s.accept(ev("a", 3))
  s.watch("a", 2)
  t.same(emitted, [["a", 3]], "watching up to 2 releases 3")
  s.watch("a", 1)
  t.equal(s.lastSeq("a"), 3)
  s.forget("a")
  t.equal(s.lastSeq("a"), undefined)
})

t.test(
  "property: any interleaving of deliveries, redeliveries and history fills emits 1..n once, in order",
  async (t) => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 120 }),
        (n, picks) => {
          const emitted: number[] = []
          const pendingFills: number[] = []
          const s = new Sequencer({
            emit: (e) => emitted.push(e.seq),
            gap: (_c, after) => pendingFills.push(after),
          })
          s.watch("c", 0)
          // Deliveries: some seqs, some twice, in any order; fills run at arbitrary points.
          for (const [pick, fill] of picks) {
            s.accept(ev("c", (pick % n) + 1))
            if (fill && pendingFills.length > 0) {
              const after = pendingFills.shift() as number
              for (let seq = after + 1; seq <= n; seq++) s.accept(ev("c", seq))
            }
          }
          // After a reconnect the client fills from its last seq.
          for (let seq = (s.lastSeq("c") ?? 0) + 1; seq <= n; seq++) s.accept(ev("c", seq))
          return emitted.length === n && emitted.every((seq, i) => seq === i + 1)
        },
      ),
    )
    t.pass("held for every generated case")
  },
)

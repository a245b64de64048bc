import fc from "fast-check"
import t from "tap"
import { partitionOf, partitionSubject, subjects } from "../../lib/protocol/subjects"

const SAFE_SUBJECT = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/

function builtOrRefused(build: () => string): string | undefined {
  try {
    return build()
  } catch {
    // Refusing an unsafe id is the other allowed outcome.
    return undefined
  }
}

t.test("subject builders never emit wildcards, spaces or empty tokens, whatever the input", async (t) => {
  fc.assert(
    fc.property(
      fc.string({ unit: "binary", maxLength: 80 }),
      fc.integer({ min: 1, max: 64 }),
      (id, partitions) => {
        for (const subject of [
          builtOrRefused(() => subjects.delivery(id)),
          builtOrRefused(() => subjects.inbound(id, partitions)),
          builtOrRefused(() => subjects.deadLetter(id)),
        ]) {
          if (subject !== undefined && !SAFE_SUBJECT.test(subject)) return false
        }
        return true
      },
    ),
    { numRuns: 2000 },
  )
  t.throws(() => subjects.delivery("a.b"))
  t.throws(() => subjects.delivery("*"))
  t.throws(() => subjects.delivery(">"))
  t.throws(() => subjects.delivery(""))
  t.equal(subjects.delivery("general"), "cove.deliver.general")
})

t.test("a conversation always maps to the same partition, within range", async (t) => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
      fc.integer({ min: 1, max: 256 }),
      (conv, partitions) => {
        const p = partitionOf(conv, partitions)
        return Number.isInteger(p) && p >= 0 && p < partitions && p === partitionOf(conv, partitions)
      },
    ),
  )
  t.throws(() => partitionSubject("cove.in", -1))
  // Spread: 10,000 ids over 8 partitions, none starved.
  const counts = new Array<number>(8).fill(0)
  for (let i = 0; i < 10_000; i++)
    counts[partitionOf(`conv-${i}`, 8)] = (counts[partitionOf(`conv-${i}`, 8)] ?? 0) + 1
  t.ok(Math.min(...counts) > 1000, `partitions are used evenly: ${counts.join(", ")}`)
})

/** The session state machine on its own: invariants under random frame sequences (fast-check). */
import fc from "fast-check"
import t from "tap"
import { type Effect, openSession, type SessionInput, type SessionPolicy, step } from "../../gateway/session"
import { decodeClientFrame } from "../../lib/protocol/frames"

const policy: SessionPolicy = { frames: { ratePerSec: 5, burst: 10 }, strikes: { ratePerSec: 1, burst: 3 } }
const limits = {
  max_frame_bytes: 1024,
  first_frame_timeout_ms: 1000,
  idle_timeout_ms: 120_000,
  rate_per_sec: 5,
  rate_burst: 10,
  user_rate_per_sec: 50,
  user_rate_burst: 100,
  max_sockets_per_user: 3,
}

type Event = { gapMs: number; input: "ping" | "junk" | "binary" | "deadline" | "revoked" | "user_limited" }

const event = fc.record({
  gapMs: fc.integer({ min: 0, max: 400 }),
  input: fc.constantFrom("ping", "junk", "binary", "deadline", "revoked", "user_limited"),
}) as fc.Arbitrary<Event>

function inputOf(e: Event, now: number): SessionInput {
  const user = { ok: e.input !== "user_limited", retryAfterMs: e.input === "user_limited" ? 20 : 0 }
  switch (e.input) {
    case "deadline":
      return { kind: "first_frame_deadline" }
    case "revoked":
      return { kind: "terminate", reason: "AUTH_SESSION_REVOKED" }
    case "binary":
      return { kind: "frame", body: "binary", user, now }
    case "junk":
      return { kind: "frame", body: decodeClientFrame("{"), user, now }
    default:
      return { kind: "frame", body: decodeClientFrame('{"type":"ping","ref":"r"}'), user, now }
  }
}

t.test("hello first; at most one close, after which nothing is sent; pongs within the bucket", async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.array(event, { maxLength: 200 }), (events) => {
        let now = 1_000_000
        const opened = openSession({ userId: "u", sessionId: "s", now, limits, policy })
        if (opened.effects[0]?.kind !== "send" || opened.effects[0].frame.type !== "hello") return false
        let state = opened.state
        const effects: Effect[] = []
        const start = now
        for (const e of events) {
          now += e.gapMs
          const next = step(state, inputOf(e, now), policy)
          state = next.state
          effects.push(...next.effects)
        }
        const closeAt = effects.findIndex((x) => x.kind === "close")
        if (closeAt >= 0 && closeAt !== effects.length - 1) return false
        if (closeAt >= 0 && state.phase !== "closed") return false
        const pongs = effects.filter((x) => x.kind === "send" && x.frame.type === "pong").length
        return pongs <= policy.frames.burst + ((now - start) * policy.frames.ratePerSec) / 1000
      }),
      { numRuns: 1_000 },
    ),
  )
})

t.test("the first-frame deadline closes only a socket that has not spoken", async (t) => {
  const { state } = openSession({ userId: "u", sessionId: "s", now: 0, limits, policy })
  t.match(step(state, { kind: "first_frame_deadline" }, policy).effects, [{ kind: "close", code: 4008 }])
  const spoke = step(state, inputOf({ gapMs: 0, input: "junk" }, 1), policy).state
  t.same(step(spoke, { kind: "first_frame_deadline" }, policy).effects, [])
})

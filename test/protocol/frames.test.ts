import fc from "fast-check"
import t from "tap"
import { ERRORS } from "../../lib/errors"
import { decodeClientFrame, type FrameErrorCode, MAX_REF_LENGTH } from "../../lib/protocol/frames"

const FRAME_ERROR_CODES: readonly FrameErrorCode[] = [
  "INVALID_JSON",
  "INVALID_FRAME",
  "UNKNOWN_FRAME_TYPE",
  "RATE_LIMITED",
]

t.test("every error-frame code is in the error catalogue", async (t) => {
  for (const code of FRAME_ERROR_CODES) t.ok(code in ERRORS, code)
})

t.test("decode never throws, and answers every failure with an error frame", async (t) => {
  const anyText = fc.oneof(
    fc.string(),
    fc.json(),
    fc.jsonValue().map((v) => JSON.stringify(v)),
  )
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(anyText, (text) => {
        const result = decodeClientFrame(text)
        if (result.ok) return result.frame.type === "ping"
        return result.error.type === "error" && FRAME_ERROR_CODES.includes(result.error.code)
      }),
      { numRuns: 2_000 },
    ),
  )
})

t.test("a ping decodes to itself; a valid ref is kept on errors", async (t) => {
  const ref = fc.string({ minLength: 1, maxLength: MAX_REF_LENGTH })
  fc.assert(
    fc.property(ref, (r) => {
      const ping = decodeClientFrame(JSON.stringify({ type: "ping", ref: r }))
      const unknown = decodeClientFrame(JSON.stringify({ type: "nope", ref: r }))
      return ping.ok && ping.frame.ref === r && !unknown.ok && unknown.error.ref === r
    }),
  )
  t.same(decodeClientFrame('{"type":"ping"}'), { ok: true, frame: { type: "ping" } })
  t.match(decodeClientFrame(JSON.stringify({ type: "ping", ref: "x".repeat(MAX_REF_LENGTH + 1) })), {
    ok: false,
    error: { code: "INVALID_FRAME" },
  })
})

/**
 * One connection's protocol state: `step(state, input) → { state, effects }`, with no I/O and
 * the clock as an argument. The server turns socket events into inputs and carries out the
 * effects. Issue 4 adds `send` frames (effect: publish; input: published → ack) the same way.
 */
import { ERRORS } from "../lib/errors"
import {
  BINARY_FRAME_ERROR,
  type ConnectionLimits,
  type ConversationFrame,
  type DecodeResult,
  type ErrorFrame,
  type ServerFrame,
  type WhoFrame,
} from "../lib/protocol/frames"
import { PROTOCOL_VERSION } from "../lib/protocol/subjects"
import { type Bucket, type BucketSpec, fullBucket, take } from "./rate-limit"

export type SessionPolicy = {
  /** Frames per socket. */
  readonly frames: BucketSpec
  /** Rate-limited frames a socket may send before it is closed. */
  readonly strikes: BucketSpec
}

export type SessionState = {
  /** awaiting_first_frame → open → closed; closed is final and ignores every input. */
  readonly phase: "awaiting_first_frame" | "open" | "closed"
  readonly frames: Bucket
  readonly strikes: Bucket
}

/** Why a connection-level close happens; each code has a close code in lib/errors.ts. */
export type CloseReason =
  | "FIRST_FRAME_TIMEOUT"
  | "RATE_LIMITED"
  | "FRAME_TOO_LARGE"
  | "SLOW_CONSUMER"
  | "CONNECTION_REPLACED"
  | "AUTH_SESSION_REVOKED"
  | "AUTH_USER_DISABLED"
  | "SHUTTING_DOWN"
  | "RESYNC_REQUIRED"
  | "UNAVAILABLE"

export type SessionInput =
  | {
      readonly kind: "frame"
      /** A decoded text frame, or "binary". */
      readonly body: DecodeResult | "binary"
      /** The verdict of the user's shared bucket for this frame. */
      readonly user: { readonly ok: boolean; readonly retryAfterMs: number }
      readonly now: number
    }
  | { readonly kind: "first_frame_deadline" }
  | { readonly kind: "terminate"; readonly reason: CloseReason }

export type Effect =
  | { readonly kind: "send"; readonly frame: ServerFrame }
  /** A frame about a conversation: checked for membership, then published (and acked) or relayed. */
  | { readonly kind: "conversation"; readonly frame: ConversationFrame }
  /** A presence question, answered from the presence bucket. */
  | { readonly kind: "who"; readonly frame: WhoFrame }
  | { readonly kind: "close"; readonly code: number; readonly reason: CloseReason }

export type Step = { readonly state: SessionState; readonly effects: readonly Effect[] }

export type OpenParams = {
  readonly userId: string
  readonly sessionId: string
  readonly now: number
  readonly limits: ConnectionLimits
  readonly policy: SessionPolicy
}

export function openSession(p: OpenParams): Step {
  const state: SessionState = {
    phase: "awaiting_first_frame",
    frames: fullBucket(p.policy.frames, p.now),
    strikes: fullBucket(p.policy.strikes, p.now),
  }
  const hello: ServerFrame = {
    type: "hello",
    protocol: PROTOCOL_VERSION,
    user: { id: p.userId },
    session: p.sessionId,
    server_time: new Date(p.now).toISOString(),
    limits: p.limits,
  }
  return { state, effects: [{ kind: "send", frame: hello }] }
}

export function closeCodeOf(reason: CloseReason): number {
  return ERRORS[reason].closeCode
}

function close(state: SessionState, reason: CloseReason): Step {
  return {
    state: { ...state, phase: "closed" },
    effects: [{ kind: "close", code: closeCodeOf(reason), reason }],
  }
}

function rateLimited(body: DecodeResult | "binary", retryAfterMs: number): ErrorFrame {
  const ref = refOf(body)
  // A refused send names its id, so the client's outbox retries exactly that one later.
  const id = body !== "binary" && body.ok && "id" in body.frame ? body.frame.id : undefined
  return {
    type: "error",
    code: "RATE_LIMITED",
    message: ERRORS.RATE_LIMITED.message,
    retry_after_ms: retryAfterMs,
    ...(ref === undefined ? {} : { ref }),
    ...(id === undefined ? {} : { id }),
  }
}

function refOf(body: DecodeResult | "binary"): string | undefined {
  if (body === "binary") return undefined
  return body.ok ? body.frame.ref : body.error.ref
}

export function step(state: SessionState, input: SessionInput, policy: SessionPolicy): Step {
  if (state.phase === "closed") return { state, effects: [] }
  switch (input.kind) {
    case "first_frame_deadline":
      return state.phase === "awaiting_first_frame"
        ? close(state, "FIRST_FRAME_TIMEOUT")
        : { state, effects: [] }
    case "terminate":
      return close(state, input.reason)
    case "frame":
      return onFrame(state, input, policy)
  }
}

function onFrame(state: SessionState, input: SessionInput & { kind: "frame" }, policy: SessionPolicy): Step {
  const own = take(policy.frames, state.frames, input.now)
  const admitted: SessionState = { ...state, phase: "open", frames: own.bucket }
  if (!own.ok || !input.user.ok) {
    const strike = take(policy.strikes, state.strikes, input.now)
    const next: SessionState = { ...admitted, strikes: strike.bucket }
    if (!strike.ok) return close(next, "RATE_LIMITED")
    const retryAfterMs = Math.max(own.retryAfterMs, input.user.retryAfterMs)
    return {
      state: next,
      effects: [{ kind: "send", frame: rateLimited(input.body, retryAfterMs) }],
    }
  }
  const body = input.body
  if (body === "binary") return { state: admitted, effects: [{ kind: "send", frame: BINARY_FRAME_ERROR }] }
  if (!body.ok) return { state: admitted, effects: [{ kind: "send", frame: body.error }] }
  switch (body.frame.type) {
    case "who":
      return { state: admitted, effects: [{ kind: "who", frame: body.frame }] }
    case "send":
    case "edit":
    case "recall":
    case "react":
    case "read":
    case "typing":
      return { state: admitted, effects: [{ kind: "conversation", frame: body.frame }] }
    case "ping": {
      const ref = body.frame.ref
      return {
        state: admitted,
        effects: [{ kind: "send", frame: ref === undefined ? { type: "pong" } : { type: "pong", ref } }],
      }
    }
  }
}

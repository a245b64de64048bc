/**
 * WebSocket frames between clients and the edge: JSON text, one object per frame, with a `type`.
 * docs/protocol.md is the reference for clients; keep the two in step.
 */
import type { PROTOCOL_VERSION } from "./subjects"

/** A client's correlation id, echoed on the answer (pong, error); at most 64 characters. */
export const MAX_REF_LENGTH = 64

export type PingFrame = { readonly type: "ping"; readonly ref?: string }

/** Every frame a client may send. Issue 4 adds `send` and the conversation frames. */
export type ClientFrame = PingFrame

/** The codes an error frame can carry; each is an entry of lib/errors.ts. */
export type FrameErrorCode =
  | "INVALID_JSON"
  | "INVALID_FRAME"
  | "UNKNOWN_FRAME_TYPE"
  | "RATE_LIMITED"
  | "INTERNAL"

export type ConnectionLimits = {
  readonly max_frame_bytes: number
  readonly first_frame_timeout_ms: number
  readonly idle_timeout_ms: number
  readonly rate_per_sec: number
  readonly rate_burst: number
  readonly user_rate_per_sec: number
  readonly user_rate_burst: number
  readonly max_sockets_per_user: number
}

export type HelloFrame = {
  readonly type: "hello"
  readonly protocol: typeof PROTOCOL_VERSION
  readonly user: { readonly id: string }
  readonly session: string
  readonly server_time: string
  readonly limits: ConnectionLimits
}

export type PongFrame = { readonly type: "pong"; readonly ref?: string }

export type ErrorFrame = {
  readonly type: "error"
  readonly code: FrameErrorCode
  readonly message: string
  readonly ref?: string
  /** Only with RATE_LIMITED: when the next frame will be accepted. */
  readonly retry_after_ms?: number
}

export type ServerFrame = HelloFrame | PongFrame | ErrorFrame

/** A frame that could not be accepted: the error frame to answer with. */
export type DecodeError = { readonly ok: false; readonly error: ErrorFrame }
export type DecodeResult = { readonly ok: true; readonly frame: ClientFrame } | DecodeError

function invalid(code: FrameErrorCode, message: string, ref: string | undefined): DecodeError {
  return {
    ok: false,
    error: ref === undefined ? { type: "error", code, message } : { type: "error", code, message, ref },
  }
}

function isRef(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_REF_LENGTH
}

/** Parses one text frame. Never throws: anything that is not a valid client frame is a DecodeError. */
export function decodeClientFrame(text: string): DecodeResult {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    // Not JSON: answered with an error frame, the connection stays open.
    return invalid("INVALID_JSON", "The frame is not valid JSON.", undefined)
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return invalid("INVALID_FRAME", "A frame must be a JSON object.", undefined)
  }
  const fields = value as Record<string, unknown>
  const rawRef = fields.ref
  if (rawRef !== undefined && !isRef(rawRef)) {
    return invalid("INVALID_FRAME", `ref must be a string of 1 to ${MAX_REF_LENGTH} characters.`, undefined)
  }
  const ref = rawRef
  const type = fields.type
  if (typeof type !== "string") return invalid("INVALID_FRAME", "A frame needs a string `type`.", ref)
  switch (type) {
    case "ping":
      return { ok: true, frame: ref === undefined ? { type } : { type, ref } }
    default:
      return invalid("UNKNOWN_FRAME_TYPE", `Unknown frame type ${JSON.stringify(type.slice(0, 32))}.`, ref)
  }
}

/** The answer to a binary frame: Cove frames are JSON text only. */
export const BINARY_FRAME_ERROR: ErrorFrame = {
  type: "error",
  code: "INVALID_FRAME",
  message: "Binary frames are not supported; send JSON text frames.",
}

export function encodeServerFrame(frame: ServerFrame): string {
  return JSON.stringify(frame)
}

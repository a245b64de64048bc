/**
 * WebSocket frames between clients and the edge: JSON text, one object per frame, with a `type`.
 * docs/protocol.md is the reference for clients; keep the two in step.
 */
import { z } from "zod"
import { emoji, messageBody } from "./events"
import { safeId, uuid } from "./ids"
import type { PROTOCOL_VERSION } from "./subjects"

/** A client's correlation id, echoed on the answer (pong, error); at most 64 characters. */
export const MAX_REF_LENGTH = 64

export type PingFrame = { readonly type: "ping"; readonly ref?: string }

/**
 * Frames that change a conversation. Each is answered with an `ack` (after JetStream stored it)
 * or an error frame carrying its `id`; `read` has no id and is answered by its `ref` only.
 */
const ref = z.string().min(1).max(MAX_REF_LENGTH).optional()
export const sendFrame = z.object({
  type: z.literal("send"),
  id: uuid,
  conv: safeId,
  body: messageBody,
  reply_to: uuid.optional(),
  ref,
})
export const editFrame = z.object({
  type: z.literal("edit"),
  id: uuid,
  conv: safeId,
  target: uuid,
  body: messageBody,
  ref,
})
export const recallFrame = z.object({ type: z.literal("recall"), id: uuid, conv: safeId, target: uuid, ref })
export const reactFrame = z.object({
  type: z.literal("react"),
  id: uuid,
  conv: safeId,
  target: uuid,
  emoji,
  op: z.enum(["add", "remove"]),
  ref,
})
export const readFrame = z.object({
  type: z.literal("read"),
  conv: safeId,
  seq: z.number().int().min(0),
  ref,
})
/** Who of these users is online (on any device, on any edge)? Answered by a `who` frame. */
export const whoFrame = z.object({ type: z.literal("who"), users: z.array(safeId).min(1).max(200), ref })
export type WhoFrame = z.output<typeof whoFrame>

/** Ephemeral: relayed to the conversation's members, never stored, never acknowledged. */
export const typingFrame = z.object({ type: z.literal("typing"), conv: safeId, ref })

const conversationFrames = {
  send: sendFrame,
  edit: editFrame,
  recall: recallFrame,
  react: reactFrame,
  read: readFrame,
  typing: typingFrame,
} as const

export type ConversationFrame = z.output<(typeof conversationFrames)[keyof typeof conversationFrames]>

/** Every frame a client may send. */
export type ClientFrame = PingFrame | ConversationFrame | WhoFrame

/** The codes an error frame can carry; each is an entry of lib/errors.ts. */
export type FrameErrorCode =
  | "INVALID_JSON"
  | "INVALID_FRAME"
  | "UNKNOWN_FRAME_TYPE"
  | "RATE_LIMITED"
  | "NOT_FOUND"
  | "UNAVAILABLE"
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
  /** The id of the send (or edit, recall, react) that failed: retry it with the same id. */
  readonly id?: string
  /** Only with RATE_LIMITED: when the next frame will be accepted. */
  readonly retry_after_ms?: number
}

/** JetStream stored the frame's event: it will be sequenced and delivered. Retries with the same id are safe. */
export type AckFrame = {
  readonly type: "ack"
  readonly id?: string
  readonly conv: string
  readonly ref?: string
  /** The same id was sent before (a retry): nothing new was stored. */
  readonly duplicate: boolean
}

export type WhoAnswer = {
  readonly type: "who"
  readonly users: Readonly<Record<string, boolean>>
  readonly ref?: string
}

export type ServerFrame = HelloFrame | PongFrame | ErrorFrame | AckFrame | WhoAnswer

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
    case "who": {
      const parsed = whoFrame.safeParse(fields)
      return parsed.success
        ? { ok: true, frame: parsed.data }
        : invalid("INVALID_FRAME", "A who frame lists 1 to 200 user ids in `users`.", ref)
    }
    case "send":
    case "edit":
    case "recall":
    case "react":
    case "read":
    case "typing": {
      const parsed = conversationFrames[type].safeParse(fields)
      if (parsed.success) return { ok: true, frame: parsed.data }
      const problems = parsed.error.issues
        .map((i) => `${i.path.join(".") || "(frame)"}: ${i.message}`)
        .join("; ")
      const error = invalid("INVALID_FRAME", `Invalid ${type} frame: ${problems}`.slice(0, 500), ref)
      // Name the send that failed when its id is usable, so the client can mark it failed.
      return uuid.safeParse(fields.id).success
        ? { ok: false, error: { ...error.error, id: fields.id as string } }
        : error
    }
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

/** Events carried by JetStream between the edge, the HTTP functions and the event functions. */
import { z } from "zod"
import { decodeJson } from "./decode"
import { safeId, uuid } from "./ids"

/**
 * Text is kept exactly as sent (no normalisation). What PostgreSQL cannot store in jsonb, a NUL
 * or a lone UTF-16 surrogate, is refused here, before anything is acknowledged.
 */
export const messageText = z
  .string()
  .min(1, "must not be empty")
  .max(16_384, "must be at most 16,384 characters")
  .refine((t) => !t.includes("\u0000"), "must not contain NUL characters")
  .refine((t) => t.isWellFormed(), "must be well-formed Unicode (no lone surrogates)")
export const textBody = z.object({ kind: z.literal("text"), text: messageText })
/** A file uploaded through the files function; the sequencer checks it is ready, the sender's and this conversation's. */
export const fileBody = z.object({
  kind: z.literal("file"),
  file_id: safeId,
  caption: messageText.optional(),
})
export const messageBody = z.discriminatedUnion("kind", [textBody, fileBody])
export type MessageBody = z.output<typeof messageBody>

/** A reaction: one emoji (or a short sequence, e.g. with skin tone), no spaces or controls. */
export const emoji = z
  .string()
  .min(1)
  .max(64)
  .refine(
    (e) => e.isWellFormed() && !/[\s\p{Cc}]/u.test(e),
    "must be an emoji without spaces or control characters",
  )

const inboundBase = {
  v: z.literal(1),
  conv: safeId,
  from: safeId,
  ts: z.iso.datetime({ offset: true }),
}

/** A message accepted by the edge (or POST /function/messages), not yet sequenced. */
export const newMessage = z.object({
  ...inboundBase,
  type: z.literal("message"),
  id: uuid,
  body: messageBody,
  reply_to: uuid.optional(),
})
export type NewMessage = z.output<typeof newMessage>

/** Events about an earlier message; each gets its own seq. `id` is the event's client id. */
export const editEvent = z.object({
  ...inboundBase,
  type: z.literal("edit"),
  id: uuid,
  target: uuid,
  body: messageBody,
})
export const recallEvent = z.object({ ...inboundBase, type: z.literal("recall"), id: uuid, target: uuid })
export const reactionEvent = z.object({
  ...inboundBase,
  type: z.literal("reaction"),
  id: uuid,
  target: uuid,
  emoji,
  op: z.enum(["add", "remove"]),
})
/** A read receipt: the member has read up to `seq`. Monotonic; not an event with a seq. */
export const readEvent = z.object({ ...inboundBase, type: z.literal("read"), seq: z.number().int().min(0) })

export const inboundEvent = z.discriminatedUnion("type", [
  newMessage,
  editEvent,
  recallEvent,
  reactionEvent,
  readEvent,
])
export type InboundEvent = z.output<typeof inboundEvent>
export type EditEvent = z.output<typeof editEvent>
export type RecallEvent = z.output<typeof recallEvent>
export type ReactionEvent = z.output<typeof reactionEvent>
export type ReadEvent = z.output<typeof readEvent>

type StoredBase = {
  readonly conv: string
  readonly seq: number
  readonly id: string
  readonly from: string
  readonly ts: string
}

/** A message as members receive it and as history shows it (with later edits and recalls applied). */
export type StoredMessage = StoredBase & {
  readonly type: "message"
  /** null once recalled. */
  readonly body: MessageBody | null
  readonly reply_to?: string
  readonly edited_at?: string
  readonly recalled?: true
  /** In history: reactions per emoji. */
  readonly reactions?: Readonly<Record<string, number>>
  /** In history: the emoji of `reactions` that the reader reacted with themselves. */
  readonly my_reactions?: readonly string[]
}
export type StoredEdit = StoredBase & {
  readonly type: "edit"
  readonly target: string
  /** null in history once the target is recalled: a recall removes every version of the text. */
  readonly body: MessageBody | null
  readonly recalled?: true
}
export type StoredRecall = StoredBase & { readonly type: "recall"; readonly target: string }
export type StoredReaction = StoredBase & {
  readonly type: "reaction"
  readonly target: string
  readonly emoji: string
  readonly op: "add" | "remove"
}
/** Everything that has a seq in a conversation. */
export type StoredEvent = StoredMessage | StoredEdit | StoredRecall | StoredReaction

/** Delivered to the other members when a member's read position moves forward. */
export type ReadReceipt = {
  readonly type: "read"
  readonly conv: string
  readonly user: string
  readonly seq: number
}

/** One message of a batch the connector POSTs to an event function. */
export const batchItem = z.object({
  subject: z.string(),
  seq: z.number().int().positive(),
  delivered: z.number().int().positive(),
  headers: z.record(z.string(), z.string()).default({}),
  data: z.unknown(),
})
export const eventBatch = z.object({
  function: z.string(),
  stream: z.string(),
  consumer: z.string(),
  messages: z.array(batchItem).max(10_000),
})
export type EventBatch = z.output<typeof eventBatch>

/** What an event function answers: stream sequences it refused as invalid (they are dead-lettered). */
export type BatchResult = {
  readonly processed: number
  readonly rejected: ReadonlyArray<{ seq: number; code: string; message: string }>
}

/**
 * A membership change. Published on `subjects.userMembership(user)` for each user added or
 * removed (edges subscribe or unsubscribe that user's sockets, and send it to them: an added
 * user is not yet subscribed when the conversation's copy goes out) and on the conversation's
 * delivery subject (members' clients update their member list). `id` names the change, so a
 * client that receives both copies drops the second.
 */
export const membershipEvent = z.object({
  type: z.literal("membership"),
  id: uuid,
  conv: safeId,
  added: z.array(safeId),
  removed: z.array(safeId),
  by: safeId,
  /** How many members the conversation has after the change (absent in events before 2026-11-27). */
  members: z.number().int().nonnegative().optional(),
})
export type MembershipEvent = z.output<typeof membershipEvent>

/**
 * The sequencer refused an event that JetStream had stored (so the sender was acked): the
 * sender's sockets are told, so the client marks that outbox entry failed instead of waiting.
 * Published on `subjects.userRefused(sender)`, sent to the sockets as it is.
 */
export const refusedNotice = z.object({
  type: z.literal("refused"),
  id: uuid,
  conv: safeId,
  /** A RefusalCode of lib/ports.ts (NOT_A_MEMBER, TARGET_NOT_FOUND, FORBIDDEN, ID_TAKEN, ...). */
  code: z.string().regex(/^[A-Z_]{1,64}$/),
  message: z.string().max(500),
})
export type RefusedNotice = z.output<typeof refusedNotice>

/** A group renamed, or a member's role changed; delivered to the members, never stored. */
export type ConversationUpdate = {
  readonly type: "conversation"
  readonly id: string
  readonly conv: string
  readonly by: string
  readonly title?: string
  readonly role?: { readonly user: string; readonly role: "admin" | "member" }
}

/** Decodes a membership event from NATS; undefined for anything else. */
export function parseMembershipEvent(data: Uint8Array): MembershipEvent | undefined {
  const decoded = decodeJson(membershipEvent, data)
  return decoded.ok ? decoded.data : undefined
}

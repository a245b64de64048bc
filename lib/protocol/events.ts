/** Events carried by JetStream between the edge, the HTTP functions and the event functions. */
import { z } from "zod"
import { safeId, uuid } from "./ids"

export const textBody = z.object({ kind: z.literal("text"), text: z.string().min(1).max(16_384) })
export const messageBody = z.discriminatedUnion("kind", [textBody])
export type MessageBody = z.output<typeof messageBody>

/** A message accepted by the edge (or POST /function/messages), not yet sequenced. */
export const newMessage = z.object({
  v: z.literal(1),
  id: uuid,
  conv: safeId,
  from: safeId,
  body: messageBody,
  reply_to: uuid.optional(),
  ts: z.iso.datetime({ offset: true }),
})
export type NewMessage = z.output<typeof newMessage>

/** A message after the sequencer stored it; what members receive. */
export type StoredMessage = {
  readonly conv: string
  readonly seq: number
  readonly id: string
  readonly from: string
  readonly body: MessageBody
  readonly reply_to?: string
  readonly ts: string
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

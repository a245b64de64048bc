import { z } from "zod"
import { emoji, messageBody } from "../../lib/protocol/events"
import { safeId, uuid } from "../../lib/protocol/ids"

const seq = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

export const historyQuery = z
  .object({
    conv: safeId,
    after: seq.optional(),
    before: seq.min(1).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .refine((q) => q.after === undefined || q.before === undefined, {
    message: "use either after or before, not both",
  })
export type HistoryQueryInput = z.output<typeof historyQuery>

/** The same fields as the WebSocket `send` frame (docs/protocol.md). */
export const sendInput = z.object({ id: uuid, conv: safeId, body: messageBody, reply_to: uuid.optional() })
export type SendInput = z.output<typeof sendInput>

/** Events about an earlier message, with their own client-generated id (for idempotency). */
export const editInput = z.object({ id: uuid, conv: safeId, target: uuid, body: messageBody })
export const recallInput = z.object({ id: uuid, conv: safeId, target: uuid })
export const reactionInput = z.object({
  id: uuid,
  conv: safeId,
  target: uuid,
  emoji,
  op: z.enum(["add", "remove"]),
})
export const readInput = z.object({ conv: safeId, seq: z.number().int().min(0) })

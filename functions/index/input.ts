import { z } from "zod"
import { parseEventLists } from "../../lib/function/event-batch"
import type { BatchResult, EventBatch } from "../../lib/protocol/events"
import { safeId, uuid } from "../../lib/protocol/ids"

const base = {
  conv: safeId,
  seq: z.number().int().positive(),
  id: uuid,
  from: safeId,
  ts: z.iso.datetime({ offset: true }),
}

/**
 * What the sequencer publishes on COVE_STORED (lib/protocol/events.ts StoredEvent), as far as the
 * index needs it. Bodies are read loosely: a body kind the index does not know yet is indexed
 * by what it recognises (text, caption, file) rather than refused.
 */
const storedEvent = z.discriminatedUnion("type", [
  z.object({ ...base, type: z.literal("message"), body: z.unknown().nullable() }),
  z.object({ ...base, type: z.literal("edit"), target: uuid, body: z.unknown() }),
  z.object({ ...base, type: z.literal("recall"), target: uuid }),
  z.object({ ...base, type: z.literal("reaction") }),
])
export type IndexedEvent = z.output<typeof storedEvent>

export type ParsedBatch = {
  readonly events: readonly IndexedEvent[]
  readonly rejected: BatchResult["rejected"]
}

/**
 * The events to index from a batch of COVE_STORED messages (each an array of events), and the
 * messages holding invalid ones (dead-lettered by the connector; their valid events are indexed).
 */
export function parseBatch(batch: EventBatch): ParsedBatch {
  const { valid, rejected } = parseEventLists(batch, storedEvent)
  return { events: valid.map((v) => v.event), rejected }
}

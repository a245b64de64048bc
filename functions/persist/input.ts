import { type ParsedEvents, parseEvents } from "../../lib/function/event-batch"
import { type EventBatch, type InboundEvent, inboundEvent } from "../../lib/protocol/events"

export type ParsedBatch = ParsedEvents<InboundEvent>

/** Splits a batch into events the sequencer can apply and the ones it refuses (dead-lettered). */
export function parseBatch(batch: EventBatch): ParsedBatch {
  return parseEvents(batch, inboundEvent)
}

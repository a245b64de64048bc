import type { DeliveryBus, RefusalNotices, SequencerStore, StoredEventLog } from "../../lib/ports"
import type { BatchResult, EventBatch } from "../../lib/protocol/events"
import { parseBatch } from "./input"

export type PersistPorts = {
  readonly sequencer: SequencerStore
  readonly deliveries: DeliveryBus
  readonly stored: StoredEventLog
  readonly refusals: RefusalNotices
  readonly now: () => Date
}

/**
 * The sequencer: applies a batch once, giving each conversation contiguous seqs, then tells the
 * edges. Safe to run twice with the same batch: nothing is stored twice, and duplicates are
 * delivered again (clients drop what they already have by seq). Events the sender may not send
 * (not a member, unknown or recalled target, someone else's message) are refused one by one,
 * their senders told, and dead-lettered by the connector.
 */
export async function handle(batch: EventBatch, ports: PersistPorts): Promise<BatchResult> {
  const { valid, rejected } = parseBatch(batch)
  const result = await ports.sequencer.apply(
    valid.map((v) => v.event),
    ports.now(),
  )
  // Both after the commit and in the same round trip to NATS: the edges (at-most-once, clients
  // fill gaps) and the followers (durable: the batch is answered, so acked, only after every
  // PubAck). A failure of either fails the batch, which is retried; both are idempotent.
  // Senders of refused events are told the same way (at-most-once): they were acked already.
  await Promise.all([
    ports.deliveries.deliver([...result.duplicates, ...result.stored, ...result.reads]),
    ports.stored.publish([...result.duplicates, ...result.stored]),
    ports.refusals.tell(result.refused),
  ])
  const refused = new Map(result.refused.map((r) => [r.event, r.code]))
  const notAllowed = valid.flatMap((v) => {
    const code = refused.get(v.event)
    return code === undefined
      ? []
      : [{ seq: v.seq, code, message: `${v.event.type} by ${v.event.from} in ${v.event.conv}` }]
  })
  return { processed: valid.length - notAllowed.length, rejected: [...rejected, ...notAllowed] }
}

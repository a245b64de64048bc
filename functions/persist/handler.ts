import type { DeliveryBus, MessageStore } from "../../lib/ports"
import type { BatchResult, EventBatch } from "../../lib/protocol/events"
import { parseBatch } from "./input"

export type PersistPorts = {
  readonly messages: MessageStore
  readonly deliveries: DeliveryBus
  readonly now: () => Date
}

/**
 * The sequencer: stores a batch once, giving each conversation contiguous seqs, then tells the
 * edges. Safe to run twice with the same batch: duplicates are not stored again, and their
 * deliveries are re-published (clients drop what they already have by seq).
 */
export async function handle(batch: EventBatch, ports: PersistPorts): Promise<BatchResult> {
  const { valid, rejected } = parseBatch(batch)
  const result = await ports.messages.storeBatch(valid, ports.now())
  await ports.deliveries.deliver([...result.duplicates, ...result.stored])
  return { processed: valid.length, rejected }
}

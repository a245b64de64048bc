/** What the domain needs from the outside world, named for the domain, not for a driver. */
import type { NewMessage, StoredMessage } from "./protocol/events"

export type StoreBatchResult = {
  /** Newly sequenced, in the order they were given. */
  readonly stored: readonly StoredMessage[]
  /** Already stored earlier (a redelivery or a client retry), with their original seq. */
  readonly duplicates: readonly StoredMessage[]
}

export type MessageStore = {
  /** Stores the messages once each, giving each conversation contiguous seqs; atomic. */
  storeBatch(messages: readonly NewMessage[], now: Date): Promise<StoreBatchResult>
}

export type DeliveryBus = {
  /** Tells every edge serving the conversation; at-most-once, clients fill gaps from history. */
  deliver(messages: readonly StoredMessage[]): Promise<void>
}

import { createHash } from "node:crypto"
import { type NatsConnection, headers as natsHeaders } from "nats"
import type { StoredEventLog } from "../ports"
import type { StoredEvent } from "../protocol/events"
import { HEADERS, PROTOCOL_VERSION, STORED_STREAM, subjects } from "../protocol/subjects"
import { eventBytes } from "./nats-event-bytes"
import { streamPartitions } from "./nats-partitions"
import { groupBySubject, joinParts, payloadBudget } from "./nats-payload-groups"
import { PubAckPublisher } from "./nats-pubacks"

/**
 * Publishes what the sequencer stored to the COVE_STORED stream, awaiting every PubAck, so that
 * followers (search indexing) miss nothing. Each partition's events of a batch go in one message
 * whose data is a JSON array of events: one message per batch instead of one per event for the
 * server, the connector and the follower. Without the stream (no follower deployed) it does
 * nothing.
 */
export function natsStoredEventLog(nc: NatsConnection, timeoutMs = 5_000): StoredEventLog {
  const publisher = new PubAckPublisher(nc, timeoutMs)
  const partitions = streamPartitions(nc, STORED_STREAM)
  return {
    async publish(events) {
      if (events.length === 0) return
      const count = await partitions.get()
      if (count === undefined) return
      const groups = groupBySubject(
        events,
        (e) => subjects.stored(e.conv, count),
        eventBytes,
        payloadBudget(nc),
      )
      try {
        await Promise.all(
          groups.map((g) => {
            // One set of headers per message: the publisher adds its Nats-Msg-Id to them.
            const h = natsHeaders()
            h.set(HEADERS.version, String(PROTOCOL_VERSION))
            return publisher.publish(g.subject, joinParts(g.parts, COMMA, OPEN, CLOSE), {
              msgId: storedDedupId(g.events),
              headers: h,
            })
          }),
        )
      } catch (err) {
        partitions.reset()
        throw err
      }
    },
  }
}

const [OPEN, COMMA, CLOSE] = [0x5b, 0x2c, 0x5d] as const

/**
 * Names a group by the events in it: a redelivered batch that stores nothing new groups its
 * events the same way, so JetStream drops the copy. A batch grouped differently is published
 * again, which followers take as they must take any redelivery (they are idempotent).
 */
function storedDedupId(events: readonly StoredEvent[]): string {
  const hash = createHash("sha256")
  for (const e of events) hash.update(`${e.conv}:${e.seq}\n`)
  return `stored-${hash.digest("base64url").slice(0, 32)}`
}

import { type NatsConnection, headers as natsHeaders } from "nats"
import type { StoredEventLog } from "../ports"
import { HEADERS, PROTOCOL_VERSION, STORED_STREAM, storedDedupId, subjects } from "../protocol/subjects"
import { eventBytes } from "./nats-event-bytes"
import { streamPartitions } from "./nats-partitions"
import { PubAckPublisher } from "./nats-pubacks"

/**
 * Publishes what the sequencer stored to the COVE_STORED stream, awaiting every PubAck, so that
 * followers (search indexing) miss nothing. Without the stream (no follower deployed) it does
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
      try {
        await Promise.all(
          events.map((e) => {
            const h = natsHeaders()
            h.set(HEADERS.version, String(PROTOCOL_VERSION))
            return publisher.publish(subjects.stored(e.conv, count), eventBytes(e), {
              msgId: storedDedupId(e.conv, e.seq),
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

import { type NatsConnection, headers as natsHeaders } from "nats"
import { AppError } from "../errors"
import type { InboundLog } from "../ports"
import { HEADERS, INBOUND_STREAM, inboundDedupId, PROTOCOL_VERSION, subjects } from "../protocol/subjects"
import { streamPartitions } from "./nats-partitions"
import { PubAckPublisher } from "./nats-pubacks"

const encoder = new TextEncoder()

/**
 * Appends inbound events (messages, edits, recalls, reactions, reads) to the inbound stream, on
 * the partition of their conversation.
 */
export function natsInboundLog(nc: NatsConnection, timeoutMs = 5_000): InboundLog {
  const publisher = new PubAckPublisher(nc, timeoutMs)
  const partitions = streamPartitions(nc, INBOUND_STREAM)
  return {
    async append(event, requestId) {
      const count = await partitions.get().catch((err: unknown) => {
        throw new AppError("UNAVAILABLE", "The message log is not reachable.", { cause: err })
      })
      if (count === undefined)
        throw new AppError("UNAVAILABLE", `The ${INBOUND_STREAM} stream does not exist yet.`)
      const h = natsHeaders()
      h.set(HEADERS.version, String(PROTOCOL_VERSION))
      h.set(HEADERS.requestId, requestId)
      try {
        const ack = await publisher.publish(
          subjects.inbound(event.conv, count),
          encoder.encode(JSON.stringify(event)),
          {
            msgId: inboundDedupId(event),
            headers: h,
          },
        )
        return { duplicate: ack.duplicate }
      } catch (err) {
        partitions.reset()
        throw new AppError("UNAVAILABLE", "The message could not be stored; retry with the same id.", {
          cause: err,
        })
      }
    },
  }
}

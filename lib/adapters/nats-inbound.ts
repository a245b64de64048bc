import { type JetStreamClient, type NatsConnection, headers as natsHeaders } from "nats"
import { AppError } from "../errors"
import type { InboundLog } from "../ports"
import { HEADERS, INBOUND_STREAM, inboundDedupId, PROTOCOL_VERSION, subjects } from "../protocol/subjects"

const encoder = new TextEncoder()

/**
 * Appends inbound events (messages, edits, recalls, reactions, reads) to the inbound stream, on the partition of their conversation. The
 * partition count is read from the stream itself (one subject per partition), so publishers
 * can never disagree with the sequencer's consumers about it.
 */
export function natsInboundLog(nc: NatsConnection): InboundLog {
  const js: JetStreamClient = nc.jetstream()
  let partitions: Promise<number> | undefined
  const partitionCount = (): Promise<number> => {
    partitions ??= nc
      .jetstreamManager()
      .then((jsm) => jsm.streams.info(INBOUND_STREAM))
      .then((info) => info.config.subjects.length)
      .catch((err: unknown) => {
        partitions = undefined
        throw new AppError("UNAVAILABLE", "The message log is not reachable.", { cause: err })
      })
    return partitions
  }
  return {
    async append(event, requestId) {
      const h = natsHeaders()
      h.set(HEADERS.version, String(PROTOCOL_VERSION))
      h.set(HEADERS.requestId, requestId)
      const subject = subjects.inbound(event.conv, await partitionCount())
      try {
        const ack = await js.publish(subject, encoder.encode(JSON.stringify(event)), {
          msgID: inboundDedupId(event),
          headers: h,
        })
        return { duplicate: ack.duplicate }
      } catch (err) {
        // The stream may have been re-partitioned: ask again next time.
        partitions = undefined
        throw new AppError("UNAVAILABLE", "The message could not be stored; retry with the same id.", {
          cause: err,
        })
      }
    },
  }
}

import { type NatsConnection, headers as natsHeaders } from "nats"
import { AppError } from "../errors"
import type { FileEvents } from "../ports"
import type { FileReadyEvent } from "../protocol/files"
import { FILES_STREAM, HEADERS, PROTOCOL_VERSION, subjects } from "../protocol/subjects"
import { streamPartitions } from "./nats-partitions"

const encoder = new TextEncoder()

/**
 * Publishes "file ready" to the COVE_FILES stream, awaiting the PubAck, so the thumbnail
 * function misses nothing. The file id is the dedup id: completing twice publishes once.
 * Without the stream (no follower deployed) it does nothing.
 */
export function natsFileEvents(nc: NatsConnection): FileEvents {
  const js = nc.jetstream()
  const partitions = streamPartitions(nc, FILES_STREAM)
  return {
    async ready(file) {
      const count = await partitions.get().catch((err: unknown) => {
        throw new AppError("UNAVAILABLE", "The event log is not reachable.", { cause: err })
      })
      if (count === undefined) return
      const event: FileReadyEvent = {
        v: 1,
        type: "file.ready",
        id: file.id,
        conv: file.conversationId,
        content_type: file.contentType,
        size: file.size,
      }
      const h = natsHeaders()
      h.set(HEADERS.version, String(PROTOCOL_VERSION))
      try {
        await js.publish(subjects.fileReady(file.id, count), encoder.encode(JSON.stringify(event)), {
          msgID: `file-ready:${file.id}`,
          headers: h,
        })
      } catch (err) {
        partitions.reset()
        throw new AppError("UNAVAILABLE", "The file is ready but its event was not stored; complete again.", {
          cause: err,
        })
      }
    },
  }
}

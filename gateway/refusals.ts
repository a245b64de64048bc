/**
 * Refusals from the sequencer to the sender's sockets: an event JetStream stored (so the client
 * was acked) that the sequencer then refused will never be delivered; without this frame the
 * client's outbox would wait for it forever. At-most-once, like deliveries.
 */
import type { NatsConnection, Subscription } from "nats"
import type { Logger } from "../lib/log"
import { decodeJson } from "../lib/protocol/decode"
import { refusedNotice } from "../lib/protocol/events"
import { USER_REFUSED_SUBJECTS } from "../lib/protocol/subjects"

export function forwardRefusals(
  nc: NatsConnection,
  socketsOf: (userId: string) => ReadonlyArray<{ send(text: string): number }>,
  log: Logger,
): Subscription {
  return nc.subscribe(USER_REFUSED_SUBJECTS, {
    callback: (err, msg) => {
      if (err !== null) {
        log.error({ err }, "refusal subscription failed")
        return
      }
      const user = msg.subject.split(".")[2] ?? ""
      const sockets = socketsOf(user)
      if (sockets.length === 0) return
      const decoded = decodeJson(refusedNotice, msg.data)
      if (!decoded.ok) {
        // The publisher is broken; nothing to forward.
        log.warn({ ...decoded.detail, subject: msg.subject }, `refusal notice ${decoded.problem}; ignored`)
        return
      }
      // Re-encoded from the parsed notice: only the documented fields reach clients.
      const frame = JSON.stringify(decoded.data)
      for (const socket of sockets) socket.send(frame)
    },
  })
}

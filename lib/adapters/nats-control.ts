/**
 * Publishes the events the edges must not miss (membership changes, revocations) as the control
 * outbox hands them over (pg-control-outbox.ts). The copies for the edges go to COVE_CONTROL's
 * subjects and are awaited until JetStream has stored them; members' clients get a
 * membership change once more on the conversation's delivery subject, at-most-once like every
 * delivery. Without the stream (no edge has started yet, so none follows it) the copies go out
 * as core NATS: nobody is there to miss them.
 */
import type { NatsConnection } from "nats"
import type { ControlEvent } from "../ports"
import type { MembershipEvent } from "../protocol/events"
import { CONTROL_STREAM, subjects } from "../protocol/subjects"
import type { UserRevokedEvent } from "../protocol/tokens"
import { streamPartitions } from "./nats-partitions"
import { PubAckPublisher } from "./nats-pubacks"

const encoder = new TextEncoder()

/** `outboxId` names the queued event: republishing it after a crash is dropped by JetStream's dedup. */
export type ControlPublisher = (outboxId: string, e: ControlEvent) => Promise<void>

type Copy = { readonly subject: string; readonly data: Uint8Array; readonly kept: boolean }

export function natsControlPublisher(nc: NatsConnection, timeoutMs = 5_000): ControlPublisher {
  const publisher = new PubAckPublisher(nc, timeoutMs)
  const stream = streamPartitions(nc, CONTROL_STREAM, 10_000)
  return async (outboxId, e) => {
    const copies = e.kind === "membership" ? membershipCopies(e.event) : revokedCopies(e.event)
    const kept = (await stream.get()) !== undefined
    try {
      await Promise.all(
        copies.map((c, i) => {
          if (!kept || !c.kept) {
            nc.publish(c.subject, c.data)
            return undefined
          }
          return publisher.publish(c.subject, c.data, { msgId: `cove-control-${outboxId}-${i}` })
        }),
      )
      await nc.flush()
    } catch (err) {
      stream.reset()
      throw err
    }
  }
}

/**
 * Each affected user's edges (un)subscribe their sockets and tell them: their copy names only
 * them, so a 10,000-member group costs 10,000 small messages, not 10,000 lists of 10,000. The
 * members' clients get the whole change once, on the conversation's subject.
 */
function membershipCopies(event: MembershipEvent): Copy[] {
  const own = (user: string, joined: boolean): Copy => ({
    subject: subjects.userMembership(user),
    data: encoder.encode(
      JSON.stringify({ ...event, added: joined ? [user] : [], removed: joined ? [] : [user] }),
    ),
    kept: true,
  })
  return [
    ...event.added.map((user) => own(user, true)),
    ...event.removed.map((user) => own(user, false)),
    { subject: subjects.delivery(event.conv), data: encoder.encode(JSON.stringify(event)), kept: false },
  ]
}

function revokedCopies(event: UserRevokedEvent): Copy[] {
  return [
    { subject: subjects.userRevoked(event.user), data: encoder.encode(JSON.stringify(event)), kept: true },
  ]
}

import { randomUUID } from "node:crypto"
import type { NatsConnection } from "nats"
import type { ConversationUpdates } from "../ports"
import type { ConversationUpdate } from "../protocol/events"
import { subjects } from "../protocol/subjects"

const encoder = new TextEncoder()

/**
 * Renames and role changes, for the members' devices only (at-most-once: clients read the
 * conversation again after a reconnect). Membership changes, which edges must not miss, go
 * through the control outbox instead (pg-control-outbox.ts, nats-control.ts).
 */
export function natsConversationUpdates(nc: NatsConnection): ConversationUpdates {
  return {
    async updated(change) {
      const event: ConversationUpdate = { type: "conversation", id: randomUUID(), ...change }
      nc.publish(subjects.delivery(change.conv), encoder.encode(JSON.stringify(event)))
      await nc.flush()
    },
  }
}

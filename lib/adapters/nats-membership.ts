import { randomUUID } from "node:crypto"
import type { NatsConnection } from "nats"
import type { MembershipBus } from "../ports"
import type { ConversationUpdate, MembershipEvent } from "../protocol/events"
import { subjects } from "../protocol/subjects"

const encoder = new TextEncoder()

export function natsMembershipBus(nc: NatsConnection): MembershipBus {
  return {
    async changed(change) {
      const event: MembershipEvent = {
        type: "membership",
        id: randomUUID(),
        conv: change.conv,
        added: [...change.added],
        removed: [...change.removed],
        by: change.by,
      }
      // Each affected user's edges (un)subscribe their sockets and tell them: their copy names
      // only them, so a 10,000-member group costs 10,000 small messages, not 10,000 lists of
      // 10,000. The members' clients get the whole change once, on the conversation's subject.
      for (const user of change.added)
        nc.publish(
          subjects.userMembership(user),
          encoder.encode(JSON.stringify({ ...event, added: [user], removed: [] })),
        )
      for (const user of change.removed)
        nc.publish(
          subjects.userMembership(user),
          encoder.encode(JSON.stringify({ ...event, added: [], removed: [user] })),
        )
      nc.publish(subjects.delivery(change.conv), encoder.encode(JSON.stringify(event)))
      await nc.flush()
    },
    async updated(change) {
      const event: ConversationUpdate = { type: "conversation", id: randomUUID(), ...change }
      nc.publish(subjects.delivery(change.conv), encoder.encode(JSON.stringify(event)))
      await nc.flush()
    },
  }
}

import { randomUUID } from "node:crypto"
import type { NatsConnection } from "nats"
import type { MembershipBus } from "../ports"
import type { MembershipEvent } from "../protocol/events"
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
      const data = encoder.encode(JSON.stringify(event))
      // Each affected user's edges (un)subscribe their sockets; the members' clients are told.
      for (const user of [...change.added, ...change.removed]) nc.publish(subjects.userMembership(user), data)
      nc.publish(subjects.delivery(change.conv), data)
      await nc.flush()
    },
  }
}

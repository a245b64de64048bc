import type { NatsConnection } from "nats"
import type { RevocationBus } from "../ports"
import { subjects } from "../protocol/subjects"

const encoder = new TextEncoder()

export function natsRevocationBus(nc: NatsConnection): RevocationBus {
  return {
    async revoked(event) {
      nc.publish(subjects.userRevoked(event.user), encoder.encode(JSON.stringify(event)))
      // Returns once the server has the event, so the caller's answer means the edges were told.
      await nc.flush()
    },
  }
}

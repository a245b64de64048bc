import { connect, type NatsConnection, headers as natsHeaders } from "nats"
import type { Logger } from "../log"
import type { DeliveryBus } from "../ports"
import { HEADERS, PROTOCOL_VERSION, subjects } from "../protocol/subjects"
import { eventBytes } from "./nats-event-bytes"

export async function connectNats(url: string, name: string, log: Logger): Promise<NatsConnection> {
  const nc = await connect({
    servers: url.split(","),
    name,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: false,
  })
  void (async () => {
    for await (const s of nc.status()) log.info({ nats: s.type, data: String(s.data) }, "nats status")
  })()
  return nc
}

export function natsDeliveryBus(nc: NatsConnection): DeliveryBus {
  return {
    async deliver(events) {
      const h = natsHeaders()
      h.set(HEADERS.version, String(PROTOCOL_VERSION))
      for (const e of events) nc.publish(subjects.delivery(e.conv), eventBytes(e), { headers: h })
      await nc.flush()
    },
  }
}

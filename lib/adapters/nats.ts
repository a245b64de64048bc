import { connect, type NatsConnection, headers as natsHeaders } from "nats"
import type { Logger } from "../log"
import type { DeliveryBus } from "../ports"
import type { StoredMessage } from "../protocol/events"
import { HEADERS, PROTOCOL_VERSION, subjects } from "../protocol/subjects"

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

const encoder = new TextEncoder()

export function natsDeliveryBus(nc: NatsConnection): DeliveryBus {
  return {
    async deliver(messages: readonly StoredMessage[]): Promise<void> {
      for (const m of messages) {
        const h = natsHeaders()
        h.set(HEADERS.version, String(PROTOCOL_VERSION))
        nc.publish(subjects.delivery(m.conv), encoder.encode(JSON.stringify({ type: "message", ...m })), {
          headers: h,
        })
      }
      await nc.flush()
    },
  }
}

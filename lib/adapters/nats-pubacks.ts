/**
 * JetStream publishing with one shared reply subscription: each publish carries its own reply
 * subject under one inbox prefix and the PubAcks are matched here, instead of one request per
 * message. ARCHITECTURE.md measured ~11 us of client CPU per message this way against ~90 us
 * for `js.publish()`; the durability is the same (the caller waits for the PubAck).
 */
import { createInbox, type MsgHdrs, type NatsConnection, headers as natsHeaders } from "nats"

export type PubAck = { readonly stream: string; readonly seq: number; readonly duplicate: boolean }

type Waiting = { resolve: (ack: PubAck) => void; reject: (err: Error) => void; deadline: number }

const decoder = new TextDecoder()

export class PubAckPublisher {
  private readonly prefix = createInbox()
  private readonly waiting = new Map<string, Waiting>()
  private next = 0
  private readonly sweeper: NodeJS.Timeout

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    nc.subscribe(`${this.prefix}.*`, {
      callback: (err, msg) => {
        if (err !== null) return this.failAll(err)
        const id = msg.subject.slice(this.prefix.length + 1)
        const w = this.waiting.get(id)
        if (w === undefined) return
        this.waiting.delete(id)
        // No stream listens on the subject: the server answers 503 in a status header.
        if (msg.headers?.code === 503) return w.reject(new Error("no JetStream stream takes this subject"))
        try {
          const body = JSON.parse(decoder.decode(msg.data)) as Partial<PubAck> & {
            error?: { description?: string }
          }
          if (body.error !== undefined)
            return w.reject(new Error(body.error.description ?? "JetStream refused the message"))
          w.resolve({
            stream: String(body.stream),
            seq: Number(body.seq),
            duplicate: body.duplicate === true,
          })
        } catch (parseErr) {
          w.reject(parseErr as Error)
        }
      },
    })
    // One timer for all: a per-message timer would cost more than the publish.
    this.sweeper = setInterval(
      () => {
        const now = Date.now()
        for (const [id, w] of this.waiting) {
          if (w.deadline > now) continue
          this.waiting.delete(id)
          w.reject(new Error(`no PubAck within ${timeoutMs} ms`))
        }
      },
      Math.max(50, Math.floor(timeoutMs / 10)),
    )
    this.sweeper.unref()
  }

  publish(subject: string, data: Uint8Array, options: { msgId: string; headers?: MsgHdrs }): Promise<PubAck> {
    const id = (this.next++).toString(36)
    const h = options.headers ?? natsHeaders()
    h.set("Nats-Msg-Id", options.msgId)
    return new Promise<PubAck>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, deadline: Date.now() + this.timeoutMs })
      try {
        this.nc.publish(subject, data, { reply: `${this.prefix}.${id}`, headers: h })
      } catch (err) {
        // Closed or draining connection: fail this publish now.
        this.waiting.delete(id)
        reject(err as Error)
      }
    })
  }

  close(): void {
    clearInterval(this.sweeper)
    this.failAll(new Error("publisher closed"))
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err)
    this.waiting.clear()
  }
}

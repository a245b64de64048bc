/**
 * Deliveries from NATS to sockets: one NATS subscription per conversation that any socket of
 * this edge is in, and one uWS topic per conversation that its sockets subscribe to, so a
 * message costs one NATS delivery per edge whatever the group size (ARCHITECTURE invariant 5).
 */
import type { NatsConnection, Subscription } from "nats"
import type { Logger } from "../lib/log"
import { splitFrames } from "../lib/protocol/delivery"
import { subjects } from "../lib/protocol/subjects"
import type { Socket } from "./socket"

export function topicOf(conv: string): string {
  return `c/${conv}`
}

type Member = { readonly conversations: Set<string> }

export class Fanout {
  private readonly subscriptions = new Map<string, { sub: Subscription; sockets: number }>()

  constructor(
    private readonly nc: NatsConnection,
    private readonly publish: (topic: string, data: Uint8Array) => void,
    private readonly onDelivery: () => void,
    private readonly log: Logger,
  ) {}

  join<D extends Member>(socket: Socket<D>, conv: string): void {
    if (socket.data.conversations.has(conv)) return
    socket.data.conversations.add(conv)
    socket.subscribe(topicOf(conv))
    const existing = this.subscriptions.get(conv)
    if (existing !== undefined) {
      existing.sockets++
      return
    }
    const topic = topicOf(conv)
    const sub = this.nc.subscribe(subjects.delivery(conv), {
      callback: (err, msg) => {
        if (err !== null) {
          this.log.error({ err, conv }, "delivery subscription failed")
          return
        }
        // The payload is one or more frames, already JSON: handed to uWS without decoding.
        for (const frame of splitFrames(msg.data)) {
          this.publish(topic, frame)
          this.onDelivery()
        }
      },
    })
    this.subscriptions.set(conv, { sub, sockets: 1 })
  }

  leave<D extends Member>(socket: Socket<D>, conv: string, socketOpen = true): void {
    if (!socket.data.conversations.delete(conv)) return
    if (socketOpen) socket.unsubscribe(topicOf(conv))
    const entry = this.subscriptions.get(conv)
    if (entry === undefined) return
    entry.sockets--
    if (entry.sockets === 0) {
      entry.sub.unsubscribe()
      this.subscriptions.delete(conv)
    }
  }

  /** A closed socket: uWS already dropped its topics; only the counts remain to update. */
  closed<D extends Member>(socket: Socket<D>): void {
    for (const conv of [...socket.data.conversations]) this.leave(socket, conv, false)
  }

  /**
   * Resolves once the NATS server has every subscription made so far (one round trip), or after
   * `timeoutMs` when NATS is away: nats.js sends them again when it reconnects.
   */
  async subscribed(timeoutMs = 2_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.nc.flush().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs)
      }),
    ])
    clearTimeout(timer)
  }

  /** Conversations this edge currently receives from NATS. */
  get size(): number {
    return this.subscriptions.size
  }
}

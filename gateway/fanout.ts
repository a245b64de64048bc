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

/** Most bytes of deliveries held while control events catch up (see `hold`). */
export const MAX_HELD_BYTES = 16 * 1024 * 1024

export class Fanout {
  private readonly subscriptions = new Map<string, { sub: Subscription; sockets: number }>()
  /** Deliveries that arrived while held, in arrival order; undefined when not holding. */
  private held: { topic: string; frame: Uint8Array }[] | undefined
  private heldBytes = 0
  private heldDropped = false

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
          if (this.held !== undefined) this.keep(topic, frame)
          else this.handOver(topic, frame)
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

  /**
   * Keeps deliveries back instead of handing them to sockets, until `release`. When NATS comes
   * back after a cut, the delivery subscriptions resume at once, while the control events of
   * the cut (a member removed meanwhile) are still being read: until they are, a removed
   * member's sockets are still subscribed to the conversation.
   */
  hold(): void {
    if (this.held !== undefined) return
    this.held = []
    this.heldBytes = 0
    this.heldDropped = false
  }

  /**
   * Stops holding. With `deliver`, what was held goes to the sockets subscribed now, in the order
   * it came. Answers false if deliveries were dropped: over MAX_HELD_BYTES, or not delivered.
   */
  release(deliver: boolean): boolean {
    const held = this.held
    this.held = undefined
    if (held === undefined) return true
    if (deliver) for (const h of held) this.handOver(h.topic, h.frame)
    return deliver && !this.heldDropped
  }

  get holding(): boolean {
    return this.held !== undefined
  }

  private handOver(topic: string, frame: Uint8Array): void {
    this.publish(topic, frame)
    this.onDelivery()
  }

  private keep(topic: string, frame: Uint8Array): void {
    if (this.heldBytes + frame.byteLength > MAX_HELD_BYTES) {
      this.heldDropped = true
      return
    }
    this.held?.push({ topic, frame })
    this.heldBytes += frame.byteLength
  }

  /** Conversations this edge currently receives from NATS. */
  get size(): number {
    return this.subscriptions.size
  }
}

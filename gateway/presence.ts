/**
 * Who is online, across every device and every edge. Each edge keeps one key per user it
 * serves in the NATS KV bucket COVE_PRESENCE (`<user>.<edge>`), refreshed on a heartbeat and
 * expiring by TTL if the edge dies. A user goes offline only when their last socket on every
 * edge has been gone for the grace period (a page reload or a network switch is not an
 * absence). Changes are announced to the user's conversations as `presence` deliveries.
 */
import type { KV, NatsConnection } from "nats"
import type { Logger } from "../lib/log"

export const PRESENCE_BUCKET = "COVE_PRESENCE"

export type PresenceOptions = {
  readonly nc: NatsConnection
  readonly edgeId: string
  readonly graceMs: number
  readonly heartbeatMs: number
  /** Publishes a presence delivery to one conversation's members. */
  readonly announce: (conv: string, frame: { type: "presence"; user: string; online: boolean }) => void
  readonly log: Logger
}

export class Presence {
  private readonly here = new Set<string>()
  private readonly leaving = new Map<string, NodeJS.Timeout>()
  private heartbeat: NodeJS.Timeout | undefined
  private stopped = false
  /** Bucket operations under way: a stop waits for them, so none is cut off by the closing connection. */
  private readonly inFlight = new Set<Promise<unknown>>()

  private constructor(
    private readonly o: PresenceOptions,
    private readonly kv: KV,
  ) {}

  static async start(o: PresenceOptions): Promise<Presence> {
    // Keys live three heartbeats: an edge that dies takes its users offline within that time.
    const kv = await o.nc.jetstream().views.kv(PRESENCE_BUCKET, { ttl: o.heartbeatMs * 3, history: 1 })
    const presence = new Presence(o, kv)
    presence.heartbeat = setInterval(() => presence.refresh(), o.heartbeatMs)
    presence.heartbeat.unref()
    return presence
  }

  /** The user's first socket on this edge opened (or came back within the grace period). */
  async arrived(userId: string, conversations: ReadonlySet<string>): Promise<void> {
    if (this.stopped) return
    const op = this.arrive(userId, conversations)
    this.inFlight.add(op)
    try {
      await op
    } finally {
      this.inFlight.delete(op)
    }
  }

  private async arrive(userId: string, conversations: ReadonlySet<string>): Promise<void> {
    const pending = this.leaving.get(userId)
    if (pending !== undefined) {
      clearTimeout(pending)
      this.leaving.delete(userId)
    }
    if (this.here.has(userId)) return
    const wasOnline = await this.onlineElsewhere(userId)
    this.here.add(userId)
    await this.kv.put(this.key(userId), String(Date.now()))
    if (!wasOnline) this.tell(userId, conversations, true)
  }

  /** The user's last socket on this edge closed: offline after the grace period, if nowhere else. */
  left(userId: string, conversations: ReadonlySet<string>): void {
    // A draining edge leaves its users' keys to expire: they reconnect elsewhere within the grace.
    if (this.stopped || !this.here.has(userId) || this.leaving.has(userId)) return
    const timer = setTimeout(() => {
      this.leaving.delete(userId)
      this.here.delete(userId)
      const op = this.kv
        .delete(this.key(userId))
        .then(() => this.onlineElsewhere(userId))
        .then((elsewhere) => {
          if (!elsewhere) this.tell(userId, conversations, false)
        })
        .catch((err: unknown) => this.o.log.warn({ err, user: userId }, "presence update failed"))
      this.inFlight.add(op)
      void op.finally(() => this.inFlight.delete(op))
    }, this.o.graceMs)
    // A grace period never keeps the process alive on its own.
    timer.unref()
    this.leaving.set(userId, timer)
  }

  /** Whether each user is online on any edge. */
  async online(userIds: readonly string[]): Promise<Record<string, boolean>> {
    const out: Record<string, boolean> = {}
    for (const id of userIds) out[id] = this.here.has(id) || (await this.onlineElsewhere(id))
    return out
  }

  /**
   * Stops, then waits (at most `deadlineMs`) for bucket operations under way: a key listing cut
   * off by the closing connection kept its consumer's timer, and the process, alive ~40 s.
   */
  async stop(deadlineMs = 1_000): Promise<void> {
    this.stopped = true
    clearInterval(this.heartbeat)
    for (const t of this.leaving.values()) clearTimeout(t)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, deadlineMs)
      }),
    ])
    clearTimeout(timer)
  }

  private key(userId: string): string {
    return `${userId}.${this.o.edgeId}`
  }

  private async onlineElsewhere(userId: string): Promise<boolean> {
    const keys = await this.kv.keys(`${userId}.*`)
    for await (const key of keys) if (key !== this.key(userId)) return true
    return false
  }

  private refresh(): void {
    for (const userId of this.here) {
      this.kv.put(this.key(userId), String(Date.now())).catch((err: unknown) => {
        this.o.log.warn({ err, user: userId }, "presence heartbeat failed")
      })
    }
  }

  private tell(userId: string, conversations: ReadonlySet<string>, online: boolean): void {
    for (const conv of conversations) this.o.announce(conv, { type: "presence", user: userId, online })
  }
}

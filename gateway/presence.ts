/**
 * Who is online, across every device and every edge. Each edge keeps one key per user it
 * serves in the NATS KV bucket COVE_PRESENCE (`<user>.<edge>`), refreshed on a heartbeat and
 * expiring by TTL if the edge dies. A user goes offline only when their last socket on every
 * edge has been gone for the grace period (a page reload or a network switch is not an
 * absence). Changes are announced to the user's conversations as `presence` deliveries.
 *
 * Exactly one announcement per change, however edges interleave: the announced state of each
 * user lives in COVE_PRESENCE_STATE and only the edge whose compare-and-set moves it announces.
 * An arriving edge rewrites the state even when it already says online, so an edge that saw no
 * devices just before that arrival loses its compare-and-set, looks again, and stays quiet.
 */
import type { KV, NatsConnection } from "nats"
import type { Logger } from "../lib/log"

export const PRESENCE_BUCKET = "COVE_PRESENCE"
export const PRESENCE_STATE_BUCKET = "COVE_PRESENCE_STATE"

const ONLINE = "1"
const OFFLINE = "0"
/** Compare-and-set attempts before giving up on one change; each loss means another edge moved. */
const MAX_ATTEMPTS = 20

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
  /** Users with a socket on this edge, or within their grace period; changed synchronously. */
  private readonly here = new Set<string>()
  private readonly leaving = new Map<string, NodeJS.Timeout>()
  /** Bucket work per user runs in order: an arrival's key is written before a later leave deletes it. */
  private readonly queues = new Map<string, Promise<void>>()
  private heartbeat: NodeJS.Timeout | undefined
  private stopped = false
  /** Bucket operations under way: a stop waits for them, so none is cut off by the closing connection. */
  private readonly inFlight = new Set<Promise<unknown>>()

  private constructor(
    private readonly o: PresenceOptions,
    private readonly devices: KV,
    private readonly states: KV,
  ) {}

  static async start(o: PresenceOptions): Promise<Presence> {
    const js = o.nc.jetstream()
    // Keys live three heartbeats: an edge that dies takes its users' devices away within that time.
    const devices = await js.views.kv(PRESENCE_BUCKET, { ttl: o.heartbeatMs * 3, history: 1 })
    const states = await js.views.kv(PRESENCE_STATE_BUCKET, { history: 1 })
    const presence = new Presence(o, devices, states)
    presence.heartbeat = setInterval(() => presence.refresh(), o.heartbeatMs)
    presence.heartbeat.unref()
    return presence
  }

  /** The user's first socket on this edge opened (or came back within the grace period). */
  async arrived(userId: string, conversations: ReadonlySet<string>): Promise<void> {
    if (this.stopped) return
    const pending = this.leaving.get(userId)
    if (pending !== undefined) {
      clearTimeout(pending)
      this.leaving.delete(userId)
    }
    if (this.here.has(userId)) return
    this.here.add(userId)
    await this.inOrder(userId, async () => {
      await this.devices.put(this.key(userId), String(Date.now()))
      await this.markOnline(userId, conversations)
    })
  }

  /** The user's last socket on this edge closed: offline after the grace period, if nowhere else. */
  left(userId: string, conversations: ReadonlySet<string>): void {
    // A draining edge leaves its users' keys to expire: they reconnect elsewhere within the grace.
    if (this.stopped || !this.here.has(userId) || this.leaving.has(userId)) return
    const timer = setTimeout(() => {
      this.leaving.delete(userId)
      this.here.delete(userId)
      void this.inOrder(userId, async () => {
        await this.devices.delete(this.key(userId))
        await this.markOfflineIfGone(userId, conversations)
      })
    }, this.o.graceMs)
    // A grace period never keeps the process alive on its own.
    timer.unref()
    this.leaving.set(userId, timer)
  }

  /** Whether each user is online on any edge. */
  async online(userIds: readonly string[]): Promise<Record<string, boolean>> {
    const out: Record<string, boolean> = {}
    for (const id of userIds) out[id] = this.here.has(id) || (await this.deviceKeys(id)).length > 0
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

  private inOrder(userId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.queues.get(userId) ?? Promise.resolve()
    const next = previous
      .then(work)
      .catch((err: unknown) => this.o.log.warn({ err, user: userId }, "presence update failed"))
    this.queues.set(userId, next)
    this.inFlight.add(next)
    void next.finally(() => {
      this.inFlight.delete(next)
      if (this.queues.get(userId) === next) this.queues.delete(userId)
    })
    return next
  }

  /** Writes "online" even over "online": that write is what makes a concurrent offline lose. */
  private async markOnline(userId: string, conversations: ReadonlySet<string>): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const state = await this.states.get(userId)
      const wasOnline = state !== null && state.string() === ONLINE
      if (await this.compareAndSet(userId, ONLINE, state?.revision)) {
        if (!wasOnline) this.tell(userId, conversations, true)
        return
      }
    }
    throw new Error("presence state kept changing")
  }

  private async markOfflineIfGone(userId: string, conversations: ReadonlySet<string>): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // The state is read before the devices: a device that arrives after this listing moves
      // the state, so the compare-and-set below fails and the next round sees the device.
      const state = await this.states.get(userId)
      if (state === null || state.string() !== ONLINE) return
      if ((await this.deviceKeys(userId)).length > 0) return
      if (await this.compareAndSet(userId, OFFLINE, state.revision)) {
        this.tell(userId, conversations, false)
        return
      }
    }
    throw new Error("presence state kept changing")
  }

  /** False when another edge wrote the state since `revision` was read. */
  private async compareAndSet(userId: string, value: string, revision: number | undefined): Promise<boolean> {
    try {
      if (revision === undefined) await this.states.create(userId, value)
      else await this.states.update(userId, value, revision)
      return true
    } catch (err) {
      if (isWrongRevision(err)) return false
      throw err
    }
  }

  private async deviceKeys(userId: string): Promise<string[]> {
    const found: string[] = []
    for await (const key of await this.devices.keys(`${userId}.*`)) found.push(key)
    return found
  }

  private refresh(): void {
    for (const userId of this.here) {
      this.devices.put(this.key(userId), String(Date.now())).catch((err: unknown) => {
        this.o.log.warn({ err, user: userId }, "presence heartbeat failed")
      })
    }
  }

  private tell(userId: string, conversations: ReadonlySet<string>, online: boolean): void {
    for (const conv of conversations) this.o.announce(conv, { type: "presence", user: userId, online })
  }
}

/** JetStream refuses a write whose expected last sequence is stale (API error 10071). */
function isWrongRevision(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as Error & { api_error?: { err_code?: number } }).api_error?.err_code
  return code === 10071 || /wrong last sequence|key exists/i.test(err.message)
}

/**
 * Who is online, across every device and every edge. Each edge keeps one key per user it
 * serves in the NATS KV bucket COVE_PRESENCE (`<user>.<edge>`), refreshed on a heartbeat and
 * expiring by TTL if the edge dies. A user goes offline only when their last socket on every
 * edge has been gone for the grace period (a page reload or a network switch is not an
 * absence). Changes are announced to the user's conversations as `presence` deliveries, once
 * each: presence-state.ts keeps what was announced.
 *
 * A dead edge deletes nothing and a TTL expiry makes no KV event (NATS 2.9), so the edges sweep:
 * once per heartbeat across the cluster (whoever takes the turn in COVE_PRESENCE_SWEEP), one
 * edge lists the users whose state says online and the device keys, and gives each user who
 * has none the grace period before it checks and announces as after a last socket closed. The
 * users of an edge that died are announced offline within its keys' TTL (3 heartbeats) + one
 * sweep (at most 1⅝ heartbeats apart) + the grace period, by whichever edges are up; the first
 * edge up after the whole cluster stopped sweeps at once.
 */
import type { JetStreamManager, KV, NatsConnection } from "nats"
import type { Logger } from "../lib/log"
import { keysNow, purgeKey } from "./kv-keys"
import { AnnouncedStates, isWrongRevision } from "./presence-state"

export const PRESENCE_BUCKET = "COVE_PRESENCE"
/** One key, `turn`, created by the edge that sweeps; it expires a heartbeat later, for the next one. */
export const PRESENCE_SWEEP_BUCKET = "COVE_PRESENCE_SWEEP"
/** The edges of members added together receive their copies of the event within milliseconds. */
const JOIN_SETTLE_MS = 1_000

export type PresenceOptions = {
  readonly nc: NatsConnection
  readonly edgeId: string
  readonly graceMs: number
  readonly heartbeatMs: number
  /** How long after joining a conversation an online user is announced in it (default 1 s). */
  readonly joinSettleMs?: number
  /** Publishes a presence delivery to one conversation's members. */
  readonly announce: (conv: string, frame: { type: "presence"; user: string; online: boolean }) => void
  readonly log: Logger
}

/** A user served here: the conversations told of the arrival, and the device key's revision once written. */
type Here = { readonly conversations: ReadonlySet<string>; revision: number | undefined; renewing: boolean }

export class Presence {
  /** Users with a socket on this edge, or within their grace period; changed synchronously. */
  private readonly here = new Map<string, Here>()
  private readonly leaving = new Map<string, NodeJS.Timeout>()
  /** Users a sweep found online without a device anywhere, until checked after the grace period. */
  private readonly suspects = new Set<string>()
  private readonly graceTimers = new Set<NodeJS.Timeout>()
  /** Bucket work per user runs in order: an arrival's key is written before a later leave deletes it. */
  private readonly queues = new Map<string, Promise<void>>()
  private heartbeat: NodeJS.Timeout | undefined
  private sweepTimer: NodeJS.Timeout | undefined
  private stopped = false
  /** Bucket operations under way: a stop waits for them, so none is cut off by the closing connection. */
  private readonly inFlight = new Set<Promise<unknown>>()

  private constructor(
    private readonly o: PresenceOptions,
    private readonly jsm: JetStreamManager,
    private readonly devices: KV,
    private readonly states: AnnouncedStates,
    private readonly turns: KV,
  ) {}

  static async start(o: PresenceOptions): Promise<Presence> {
    const js = o.nc.jetstream()
    // Keys live three heartbeats: an edge that dies takes its users' devices away within that time.
    const devices = await js.views.kv(PRESENCE_BUCKET, { ttl: o.heartbeatMs * 3, history: 1 })
    const jsm = await o.nc.jetstreamManager()
    const states = await AnnouncedStates.open(o.nc, jsm, (user, conversations, online) => {
      for (const conv of conversations) o.announce(conv, { type: "presence", user, online })
    })
    const turns = await js.views.kv(PRESENCE_SWEEP_BUCKET, { ttl: o.heartbeatMs, history: 1 })
    const presence = new Presence(o, jsm, devices, states, turns)
    presence.heartbeat = setInterval(() => presence.refresh(), o.heartbeatMs)
    presence.heartbeat.unref()
    // At once: after a whole-cluster restart the first edge up cleans up what the others left.
    presence.scheduleSweep(0)
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
    const device: Here = { conversations, revision: undefined, renewing: false }
    this.here.set(userId, device)
    await this.inOrder(userId, () => this.announceArrival(userId, device))
  }

  /**
   * A user with a socket here joined `conv`: its members are told the user is online (once,
   * whichever edges call this), and will be told when the user goes. Told after
   * `joinSettleMs`: the members' edges that were not subscribed to the conversation (members
   * added with the user) subscribe when their own copies of the membership event arrive, and an
   * announcement before that would not reach them.
   */
  async joined(userId: string, conv: string): Promise<void> {
    const settleMs = this.o.joinSettleMs ?? JOIN_SETTLE_MS
    if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs).unref())
    if (this.stopped || !this.here.has(userId)) return
    await this.inOrder(userId, () => this.states.joined(userId, conv))
  }

  /** A user with a socket here left `conv`: it will not be told when the user goes. */
  async departed(userId: string, conv: string): Promise<void> {
    if (this.stopped || !this.here.has(userId)) return
    await this.inOrder(userId, () => this.states.departed(userId, conv))
  }

  /** The user's last socket on this edge closed: offline after the grace period, if nowhere else. */
  left(userId: string, conversations: ReadonlySet<string>): void {
    // A draining edge leaves its users' keys to expire: they reconnect elsewhere within the grace.
    if (this.stopped || !this.here.has(userId) || this.leaving.has(userId)) return
    const timer = setTimeout(() => {
      this.leaving.delete(userId)
      this.here.delete(userId)
      void this.inOrder(userId, async () => {
        // No delete marker: to every listing the user is gone from this edge at once.
        await purgeKey(this.jsm, PRESENCE_BUCKET, this.key(userId))
        await this.states.markOfflineIfGone(userId, () => this.present(userId), conversations)
      })
    }, this.o.graceMs)
    // A grace period never keeps the process alive on its own.
    timer.unref()
    this.leaving.set(userId, timer)
  }

  /** Whether each user is online on any edge. */
  async online(userIds: readonly string[]): Promise<Record<string, boolean>> {
    // Each a small filtered listing, asked together rather than one round trip after another.
    const present = await Promise.all(userIds.map((id) => this.present(id)))
    return Object.fromEntries(userIds.map((id, i) => [id, present[i] === true]))
  }

  /**
   * Stops, then waits (at most `deadlineMs`) for bucket operations under way, so that the
   * closing connection cuts none of them off. Keys and states stay: a draining edge's users
   * reconnect elsewhere, and a sweep announces those who do not.
   */
  async stop(deadlineMs = 1_000): Promise<void> {
    this.stopped = true
    clearInterval(this.heartbeat)
    clearTimeout(this.sweepTimer)
    for (const t of this.leaving.values()) clearTimeout(t)
    for (const t of this.graceTimers) clearTimeout(t)
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
    this.track(next)
    void next.finally(() => {
      if (this.queues.get(userId) === next) this.queues.delete(userId)
    })
    return next
  }

  private track(work: Promise<unknown>): void {
    this.inFlight.add(work)
    void work.finally(() => this.inFlight.delete(work))
  }

  private async announceArrival(userId: string, device: Here): Promise<void> {
    device.revision = await this.devices.put(this.key(userId), String(Date.now()))
    await this.states.markOnline(userId, device.conversations)
  }

  private async present(userId: string): Promise<boolean> {
    return this.here.has(userId) || (await keysNow(this.jsm, PRESENCE_BUCKET, `${userId}.*`)).length > 0
  }

  private refresh(): void {
    for (const [userId, device] of this.here) {
      // Not written yet (the arrival is queued), or the last renewal has not answered.
      if (device.revision === undefined || device.renewing) continue
      device.renewing = true
      this.devices
        .update(this.key(userId), String(Date.now()), device.revision)
        .then(
          (revision) => {
            device.revision = revision
          },
          (err: unknown) => {
            if (!isWrongRevision(err)) {
              this.o.log.warn({ err, user: userId }, "presence heartbeat failed")
              return
            }
            // The key expired (no renewal for three heartbeats): a sweep may have announced the
            // user offline. Arrive again; the state's compare-and-set decides whether that is news.
            this.o.log.warn({ user: userId }, "presence key expired while connected; arriving again")
            void this.inOrder(userId, async () => {
              if (this.here.get(userId) === device) await this.announceArrival(userId, device)
            })
          },
        )
        .finally(() => {
          device.renewing = false
        })
    }
  }

  /** Every ~half heartbeat, jittered so that edges started together do not ask together. */
  private scheduleSweep(delayMs: number): void {
    if (this.stopped) return
    this.sweepTimer = setTimeout(() => {
      const turn = this.sweepIfMyTurn().catch((err: unknown) =>
        this.o.log.warn({ err }, "presence sweep failed"),
      )
      this.track(turn)
      void turn.finally(() => this.scheduleSweep(this.o.heartbeatMs * (0.375 + Math.random() * 0.25)))
    }, delayMs)
    this.sweepTimer.unref()
  }

  private async sweepIfMyTurn(): Promise<void> {
    try {
      await this.turns.create("turn", this.o.edgeId)
    } catch (err) {
      // Another edge swept less than a heartbeat ago.
      if (isWrongRevision(err)) return
      throw err
    }
    const live = await this.listed()
    const suspects = (await this.states.users()).filter((u) => !live.has(u) && !this.suspects.has(u))
    if (suspects.length === 0) return
    // Online without a device: their edge died. They get the grace period to reconnect
    // elsewhere, as after any last socket, then one check for them all.
    for (const userId of suspects) this.suspects.add(userId)
    const timer = setTimeout(() => {
      this.graceTimers.delete(timer)
      const check = this.states
        .markOfflineUnlessListed(suspects, () => this.listed())
        .then((offline) => this.o.log.info({ suspects: suspects.length, offline }, "presence swept"))
        .catch((err: unknown) => this.o.log.warn({ err }, "presence sweep failed"))
        .finally(() => {
          for (const userId of suspects) this.suspects.delete(userId)
        })
      this.track(check)
    }, this.o.graceMs)
    timer.unref()
    this.graceTimers.add(timer)
  }

  /** Users with a device key on any edge, or a socket here (whose key may not be written yet). */
  private async listed(): Promise<Set<string>> {
    const users = new Set(this.here.keys())
    for (const key of await keysNow(this.jsm, PRESENCE_BUCKET)) users.add(key.slice(0, key.indexOf(".")))
    return users
  }
}

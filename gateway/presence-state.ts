/**
 * The announced presence of each user, in the NATS KV bucket COVE_PRESENCE_STATE: what the
 * members of their conversations were last told. Exactly one announcement per change, however
 * edges interleave: only the edge whose compare-and-set moves a state announces. An arriving
 * edge rewrites the state even when it already says online, so an edge that saw no devices just
 * before that arrival loses its compare-and-set, looks again, and stays quiet.
 *
 * An online state lists the conversations that heard it, so any edge, also one the user never
 * connected to, can tell the same conversations that the user is gone (the sweep after an edge
 * died). An offline state is purged once written, that revision only: the bucket holds the users
 * who are online, and its key list is what a sweep checks.
 */
import type { JetStreamManager, KV, KvEntry, NatsConnection } from "nats"
import { z } from "zod"
import { decodeJson } from "../lib/protocol/decode"
import { safeId } from "../lib/protocol/ids"
import { keysNow, purgeKey } from "./kv-keys"

export const PRESENCE_STATE_BUCKET = "COVE_PRESENCE_STATE"

const OFFLINE = "0"
/** Compare-and-set attempts before giving up on one change; each loss means another edge moved. */
const MAX_ATTEMPTS = 20
/** States a sweep reads in parallel. */
const READS_AT_ONCE = 100
/**
 * Conversations an online state lists at most: ~400 KB of ids, within NATS's default 1 MB
 * payload. A sweep does not reach the rest; a user's clean leave still does.
 */
const MAX_TOLD = 10_000

const onlineState = z.object({ online: z.literal(true), told: z.array(safeId) })

type Announced = { readonly online: false } | { readonly online: true; readonly told: readonly string[] }

/**
 * Anything but "0" (or no state) is online: "1" is how online was written before the list was
 * kept, and a state that cannot be read is better swept to offline than left online for ever.
 */
function decodeState(entry: KvEntry | null): Announced {
  if (entry === null || entry.operation !== "PUT" || entry.string() === OFFLINE) return { online: false }
  const decoded = decodeJson(onlineState, entry.value)
  return { online: true, told: decoded.ok ? decoded.data.told : [] }
}

function encodeOnline(told: ReadonlySet<string>): string {
  return JSON.stringify({ online: true, told: [...told].slice(0, MAX_TOLD) })
}

/** Tells the user's conversations that the user came or went. */
export type Tell = (userId: string, conversations: Iterable<string>, online: boolean) => void

export class AnnouncedStates {
  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly tell: Tell,
  ) {}

  static async open(nc: NatsConnection, jsm: JetStreamManager, tell: Tell): Promise<AnnouncedStates> {
    const kv = await nc.jetstream().views.kv(PRESENCE_STATE_BUCKET, { history: 1 })
    return new AnnouncedStates(kv, jsm, tell)
  }

  /**
   * Writes online even over online: that write is what makes a concurrent offline lose. Tells
   * `conversations` only when the state was offline; a state already online adds them to its list.
   */
  async markOnline(userId: string, conversations: ReadonlySet<string>): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const state = await this.kv.get(userId)
      const was = decodeState(state)
      const told = was.online ? new Set([...was.told, ...conversations]) : conversations
      if ((await this.compareAndSet(userId, encodeOnline(told), state?.revision)) !== undefined) {
        if (!was.online) this.tell(userId, conversations, true)
        return
      }
    }
    throw new Error("presence state kept changing")
  }

  /**
   * An online user joined `conv`: adds it to the conversations that heard, and tells it, unless
   * it heard already (another edge of the user's did this first). An offline user is left alone.
   */
  async joined(userId: string, conv: string): Promise<void> {
    const added = await this.changeTold(userId, (told) =>
      told.includes(conv) ? undefined : new Set([...told, conv]),
    )
    if (added) this.tell(userId, [conv], true)
  }

  /**
   * The user left `conv` (or was removed): it is taken off the conversations that heard, so a
   * sweep never tells it about a user who is no longer a member.
   */
  async departed(userId: string, conv: string): Promise<void> {
    await this.changeTold(userId, (told) =>
      told.includes(conv) ? new Set(told.filter((c) => c !== conv)) : undefined,
    )
  }

  /**
   * Rewrites the list of conversations an online state says heard it; `change` answers
   * undefined when there is nothing to do. True when this call wrote it; offline states are
   * left alone.
   */
  private async changeTold(
    userId: string,
    change: (told: readonly string[]) => ReadonlySet<string> | undefined,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const state = await this.kv.get(userId)
      const was = decodeState(state)
      if (!was.online) return false
      const told = change(was.told)
      if (told === undefined) return false
      if ((await this.compareAndSet(userId, encodeOnline(told), state?.revision)) !== undefined) return true
    }
    throw new Error("presence state kept changing")
  }

  /** Marks the user offline unless `present` finds a device, and tells `conversations`. */
  async markOfflineIfGone(
    userId: string,
    present: () => Promise<boolean>,
    conversations: ReadonlySet<string>,
  ): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // The state is read before the devices: a device that arrives after this listing moves
      // the state, so the compare-and-set below fails and the next round sees the device.
      const state = await this.kv.get(userId)
      if (state === null) return
      if (!decodeState(state).online) {
        // Left by an edge that stopped between its write and its purge, or by an older edge.
        await this.forget(userId, state.revision)
        return
      }
      if (await present()) return
      const offline = await this.compareAndSet(userId, OFFLINE, state.revision)
      if (offline !== undefined) {
        this.tell(userId, conversations, false)
        await this.forget(userId, offline)
        return
      }
    }
    throw new Error("presence state kept changing")
  }

  /** Users with a state: online ones, and offline ones not purged yet. */
  users(): Promise<string[]> {
    return keysNow(this.jsm, PRESENCE_STATE_BUCKET)
  }

  /**
   * For a sweep: marks offline those of `users` whom `present` does not list, telling the
   * conversations each online state lists (this edge may never have served them). One listing
   * serves all, made after every state was read: the order markOfflineIfGone keeps. A lost
   * compare-and-set is left alone: another edge moved that state since, for an arrival or to
   * announce the same. Returns how many went offline; on an error the rest wait for a later sweep.
   */
  async markOfflineUnlessListed(
    users: readonly string[],
    present: () => Promise<ReadonlySet<string>>,
  ): Promise<number> {
    const states: KvEntry[] = []
    for (let i = 0; i < users.length; i += READS_AT_ONCE) {
      const read = await Promise.all(users.slice(i, i + READS_AT_ONCE).map((u) => this.kv.get(u)))
      for (const state of read) if (state !== null) states.push(state)
    }
    const listed = await present()
    let offline = 0
    for (const state of states) {
      const was = decodeState(state)
      if (!was.online) await this.forget(state.key, state.revision)
      else if (!listed.has(state.key)) {
        const revision = await this.compareAndSet(state.key, OFFLINE, state.revision)
        if (revision === undefined) continue
        this.tell(state.key, was.told, false)
        offline++
        await this.forget(state.key, revision)
      }
    }
    return offline
  }

  /**
   * Removes the state up to `revision` and no further: a later write (an arrival) stays, and an
   * edge holding `revision` for a compare-and-set fails it and reads again.
   */
  private forget(userId: string, revision: number): Promise<void> {
    return purgeKey(this.jsm, PRESENCE_STATE_BUCKET, userId, revision)
  }

  /** The revision written, or undefined when another edge wrote the state since `revision` was read. */
  private async compareAndSet(
    userId: string,
    value: string,
    revision: number | undefined,
  ): Promise<number | undefined> {
    try {
      return revision === undefined
        ? await this.kv.create(userId, value)
        : await this.kv.update(userId, value, revision)
    } catch (err) {
      if (isWrongRevision(err)) return undefined
      throw err
    }
  }
}

/** JetStream refuses a write whose expected last sequence is stale (API error 10071). */
export function isWrongRevision(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as Error & { api_error?: { err_code?: number } }).api_error?.err_code
  return code === 10071 || /wrong last sequence|key exists/i.test(err.message)
}

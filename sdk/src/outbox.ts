/**
 * Unacknowledged sends, edits, recalls and reactions. Each keeps its id across retries, so the
 * edge stores it once however often it is written (docs/protocol.md "send"), and each is kept in
 * storage until it is acknowledged, so it survives a reconnect and a page reload.
 *
 * pending → acked (the edge stored it in JetStream) → stored (its delivery came back with a seq);
 * pending → failed (refused: INVALID_FRAME, NOT_FOUND, ...); acked → failed when the sequencer
 * refuses it later (a `refused` frame: FORBIDDEN, TARGET_RECALLED, ...). Stored entries leave the outbox.
 */
import type { ConnectionLimits } from "../../lib/protocol/frames"
import { readJson } from "./storage"
import type { OutboxEntry, OutboxFrame, OutboxKind, Storage } from "./types"

/** Codes after which the same frame may succeed later; every other code fails the entry. */
const TRANSIENT = new Set(["UNAVAILABLE", "RATE_LIMITED", "INTERNAL"])

/** Acked entries whose delivery never came (the sequencer refused the event) are dropped at load after this. */
const ACKED_KEEP_MS = 24 * 3_600_000

const KIND: Record<OutboxFrame["type"], OutboxKind> = {
  send: "send",
  edit: "edit",
  recall: "recall",
  react: "react",
}

export type OutboxPorts = {
  readonly storage: Storage
  readonly key: string
  /** Writes the frame if the socket is open; false if it is not. */
  readonly write: (frame: OutboxFrame) => boolean
  readonly changed: (entry: OutboxEntry) => void
  readonly now: () => number
}

export class Outbox {
  private readonly entries = new Map<string, OutboxEntry>()
  /** Written on the current socket and not answered yet. */
  private readonly inFlight = new Set<string>()
  /** Not to be written before this time (after UNAVAILABLE or RATE_LIMITED). */
  private readonly notBefore = new Map<string, number>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private open = false
  private bucket = { tokens: 0, capacity: 0, perMs: 0, at: 0 }

  constructor(private readonly ports: OutboxPorts) {
    const saved = readJson<OutboxEntry[]>(ports.storage, ports.key) ?? []
    const now = ports.now()
    for (const e of saved.sort((a, b) => a.created_at - b.created_at)) {
      if (e.state === "acked" && now - e.created_at > ACKED_KEEP_MS) continue
      this.entries.set(e.id, e)
    }
  }

  list(): OutboxEntry[] {
    return [...this.entries.values()]
  }

  get(id: string): OutboxEntry | undefined {
    return this.entries.get(id)
  }

  add(frame: OutboxFrame): OutboxEntry {
    const entry: OutboxEntry = {
      id: frame.id,
      conv: frame.conv,
      kind: KIND[frame.type],
      frame,
      state: "pending",
      created_at: this.ports.now(),
      attempts: 0,
    }
    this.update(entry)
    this.flush()
    return entry
  }

  /** The socket is open: everything unanswered goes again, paced by the edge's rate limits. */
  opened(limits: ConnectionLimits): void {
    this.open = true
    this.inFlight.clear()
    // Half the socket's budget, leaving room for reads, typing, pings and who.
    const capacity = Math.max(1, Math.floor(limits.rate_burst / 2))
    this.bucket = { tokens: capacity, capacity, perMs: limits.rate_per_sec / 2 / 1000, at: this.ports.now() }
    this.flush()
  }

  /** Frames written on a closed socket may or may not have arrived: they are written again after the next hello. */
  closed(): void {
    this.open = false
    this.inFlight.clear()
    this.clearTimer()
  }

  acked(id: string): void {
    const e = this.entries.get(id)
    this.inFlight.delete(id)
    if (e === undefined || e.state !== "pending") return
    this.update({ ...e, state: "acked" })
  }

  refused(id: string, code: string, message: string, retryAfterMs: number | undefined): void {
    const e = this.entries.get(id)
    this.inFlight.delete(id)
    if (e === undefined || e.state !== "pending") return
    if (TRANSIENT.has(code)) {
      const delay = retryAfterMs ?? Math.min(30_000, 250 * 2 ** Math.min(e.attempts, 7))
      this.notBefore.set(id, this.ports.now() + delay)
      this.update({ ...e, error: { code, message } })
      this.flush()
      return
    }
    this.update({ ...e, state: "failed", error: { code, message } })
  }

  /** The sequencer refused it after JetStream stored it (a `refused` frame): it will never be stored. */
  refusedLater(id: string, code: string, message: string): void {
    const e = this.entries.get(id)
    if (e === undefined || e.state === "stored" || e.state === "failed") return
    this.inFlight.delete(id)
    this.notBefore.delete(id)
    this.update({ ...e, state: "failed", error: { code, message } })
  }

  /** Its delivery came back with a seq: done, whatever state it was in. */
  stored(id: string): void {
    const e = this.entries.get(id)
    if (e === undefined) return
    this.inFlight.delete(id)
    this.notBefore.delete(id)
    const { error: _, ...rest } = e
    this.update({ ...rest, state: "stored" })
  }

  retry(id: string): void {
    const e = this.entries.get(id)
    if (e === undefined || e.state !== "failed") return
    const { error: _, ...rest } = e
    this.update({ ...rest, state: "pending" })
    this.flush()
  }

  discard(id: string): void {
    if (!this.entries.delete(id)) return
    this.inFlight.delete(id)
    this.notBefore.delete(id)
    this.save()
  }

  stop(): void {
    this.closed()
  }

  /** Writes what is due, as far as the pacing allows; sets a timer for the rest. */
  private flush(): void {
    if (!this.open) return
    this.clearTimer()
    const now = this.ports.now()
    const b = this.bucket
    b.tokens = Math.min(b.capacity, b.tokens + (now - b.at) * b.perMs)
    b.at = now
    let wake = Number.POSITIVE_INFINITY
    for (const e of this.entries.values()) {
      if (e.state !== "pending" || this.inFlight.has(e.id)) continue
      const due = this.notBefore.get(e.id) ?? 0
      if (due > now) {
        wake = Math.min(wake, due)
        continue
      }
      if (b.tokens < 1) {
        wake = Math.min(wake, now + (1 - b.tokens) / b.perMs)
        break
      }
      if (!this.ports.write(e.frame)) return
      b.tokens -= 1
      this.notBefore.delete(e.id)
      this.inFlight.add(e.id)
      this.update({ ...e, attempts: e.attempts + 1 })
    }
    if (wake !== Number.POSITIVE_INFINITY)
      this.timer = setTimeout(() => this.flush(), Math.max(0, wake - now))
  }

  /** Saves the entry; tells the app when its state or error changed (not on every attempt). */
  private update(entry: OutboxEntry): void {
    const before = this.entries.get(entry.id)
    if (entry.state === "stored") this.entries.delete(entry.id)
    else this.entries.set(entry.id, entry)
    this.save()
    if (before?.state !== entry.state || before.error?.code !== entry.error?.code) this.ports.changed(entry)
  }

  private save(): void {
    this.ports.storage.set(this.ports.key, JSON.stringify([...this.entries.values()]))
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}

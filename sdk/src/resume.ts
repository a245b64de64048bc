/**
 * Filling gaps from history (GET /function/messages?conv=&after=): after every (re)connect for
 * each tracked conversation, and whenever a delivery skips seqs. What history returns goes
 * through the same Sequencer as live deliveries, so overlaps are dropped and order holds.
 */
import type { ConversationPage, HistoryPage } from "./api"
import { HttpError } from "./http"
import type { Sequencer } from "./sequencer"
import type { StoredEvent } from "./types"

export type ResumePorts = {
  readonly sequencer: Sequencer
  readonly after: (conv: string, after: number, limit: number) => Promise<HistoryPage>
  readonly latest: (conv: string, limit: number) => Promise<HistoryPage>
  /** A page of the conversation list, the most recently active first. */
  readonly conversations: (cursor: string | undefined) => Promise<ConversationPage>
  readonly deliver: (event: StoredEvent) => void
  readonly onError: (err: Error) => void
  readonly pageSize: number
}

/** At most this many history requests at once after a reconnect. */
const PARALLEL = 4
/** Margin for clocks and in-flight events when judging "new since the socket was lost". */
const LOST_MARGIN_MS = 2_000

export class Resumer {
  private readonly filling = new Set<string>()
  private readonly again = new Set<string>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private stopped = false

  constructor(private readonly ports: ResumePorts) {}

  /**
   * After a (re)connect. `lostAt` (the edge's clock, ms) is when the previous socket last heard
   * from the edge: conversations not tracked yet whose last message is newer are picked up from
   * that point (e.g. someone wrote in a conversation this client had not seen this session).
   */
  async resume(lostAt: number | undefined): Promise<void> {
    if (lostAt !== undefined) await this.discover(lostAt - LOST_MARGIN_MS)
    const queue = this.ports.sequencer.tracked()
    const worker = async () => {
      for (let conv = queue.shift(); conv !== undefined; conv = queue.shift()) await this.fill(conv)
    }
    await Promise.all(Array.from({ length: PARALLEL }, worker))
  }

  /** Fetches history after the last emitted seq until caught up; one fill per conversation at a time. */
  async fill(conv: string, attempt = 0): Promise<void> {
    if (this.stopped) return
    if (this.filling.has(conv)) {
      this.again.add(conv)
      return
    }
    this.filling.add(conv)
    const { sequencer } = this.ports
    try {
      for (;;) {
        const after = sequencer.lastSeq(conv)
        if (after === undefined || this.stopped) return
        const page = await this.ports.after(conv, after, this.ports.pageSize)
        for (const event of page.items) this.ports.deliver(event)
        if (page.next_after !== null && page.items.length > 0) continue
        if (this.again.delete(conv)) continue
        // Deliveries past what history has: the sequencer committed them, history will have them.
        if (sequencer.hasGap(conv)) this.later(conv, attempt + 1)
        return
      }
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) {
        // No longer a member (or the conversation is gone): nothing more will come.
        sequencer.forget(conv)
        return
      }
      this.ports.onError(err instanceof Error ? err : new Error(String(err)))
      this.later(conv, attempt + 1)
    } finally {
      this.filling.delete(conv)
    }
  }

  stop(): void {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  private later(conv: string, attempt: number): void {
    if (this.stopped) return
    const timer = setTimeout(
      () => {
        this.timers.delete(timer)
        void this.fill(conv, attempt)
      },
      Math.min(30_000, 250 * 2 ** Math.min(attempt, 7)),
    )
    this.timers.add(timer)
  }

  /**
   * Pages through the list only while it is still in conversations active since `since`: a
   * page whose last conversation was last active before it ends the walk, since the later ones
   * are older still. Last activity is the last message's `ts` (or `created_at` without one), give
   * or take the edges' clock differences that LOST_MARGIN_MS allows for (docs/conversations.md).
   */
  private async discover(since: number): Promise<void> {
    const { sequencer } = this.ports
    let cursor: string | undefined
    do {
      let list: ConversationPage
      try {
        list = await this.ports.conversations(cursor)
      } catch (err) {
        this.ports.onError(err instanceof Error ? err : new Error(String(err)))
        return
      }
      for (const c of list.items) {
        const last = c.last_message
        if (last === null || sequencer.lastSeq(c.id) !== undefined || Date.parse(last.ts) < since) continue
        try {
          // The newest page: start after the last event from before the socket was lost.
          const page = await this.ports.latest(c.id, this.ports.pageSize)
          const before = page.items.filter((e) => Date.parse(e.ts) < since).at(-1)
          sequencer.watch(c.id, before?.seq ?? Math.max(0, (page.items[0]?.seq ?? 1) - 1))
        } catch (err) {
          this.ports.onError(err instanceof Error ? err : new Error(String(err)))
        }
      }
      const end = list.items.at(-1)
      const recent = end !== undefined && Date.parse(end.last_message?.ts ?? end.created_at) >= since
      cursor = recent ? (list.next_cursor ?? undefined) : undefined
    } while (cursor !== undefined)
  }
}

/**
 * Exactly-once, in-order delivery per conversation. Events with a seq (message, edit, recall,
 * reaction) share one gapless sequence per conversation (docs/protocol.md "Deliveries"), so the
 * last emitted seq says everything the app has seen: anything at or below it is a duplicate
 * (a redelivery, a retry, or a history page overlapping live deliveries), anything past the next
 * one waits in a buffer until history fills the gap. Pure: no I/O, no timers.
 */
import type { StoredEvent } from "./types"

type ConvState = { last: number; readonly buffer: Map<number, StoredEvent> }

export type SequencerPorts = {
  /** Called once per seq per conversation, in seq order. */
  readonly emit: (event: StoredEvent) => void
  /** A gap: the caller should fetch history after `after` and `accept` what it gets. */
  readonly gap: (conv: string, after: number) => void
}

export class Sequencer {
  private readonly convs = new Map<string, ConvState>()

  constructor(private readonly ports: SequencerPorts) {}

  /**
   * Tracks `conv` as known up to `lastSeq` (e.g. the app loaded history that far). Never moves
   * back: what was already emitted is not emitted again.
   */
  watch(conv: string, lastSeq: number): void {
    const state = this.convs.get(conv)
    if (state === undefined) {
      this.convs.set(conv, { last: lastSeq, buffer: new Map() })
      return
    }
    if (lastSeq <= state.last) return
    state.last = lastSeq
    for (const seq of state.buffer.keys()) if (seq <= lastSeq) state.buffer.delete(seq)
    this.drain(conv, state)
  }

  forget(conv: string): void {
    this.convs.delete(conv)
  }

  lastSeq(conv: string): number | undefined {
    return this.convs.get(conv)?.last
  }

  tracked(): string[] {
    return [...this.convs.keys()]
  }

  /** Whether `conv` waits for seqs below the lowest one it holds. */
  hasGap(conv: string): boolean {
    const state = this.convs.get(conv)
    return state !== undefined && state.buffer.size > 0
  }

  /**
   * A delivery or a history item. A conversation seen for the first time starts at this event
   * (earlier history is the app's to load, then `watch`). Returns false for a duplicate.
   */
  accept(event: StoredEvent): boolean {
    let state = this.convs.get(event.conv)
    if (state === undefined) {
      state = { last: event.seq - 1, buffer: new Map() }
      this.convs.set(event.conv, state)
    }
    if (event.seq <= state.last || state.buffer.has(event.seq)) return false
    state.buffer.set(event.seq, event)
    this.drain(event.conv, state)
    return true
  }

  private drain(conv: string, state: ConvState): void {
    for (
      let next = state.buffer.get(state.last + 1);
      next !== undefined;
      next = state.buffer.get(state.last + 1)
    ) {
      state.buffer.delete(next.seq)
      state.last = next.seq
      this.ports.emit(next)
      // The app may have forgotten or re-watched the conversation from its handler.
      if (this.convs.get(conv) !== state) return
    }
    if (state.buffer.size > 0) this.ports.gap(conv, state.last)
  }
}

/**
 * The SDK's reconnect discovery without a network: it walks the paged conversation list while
 * the list still holds conversations active since the socket was lost, picks those up from
 * where the loss happened, and asks for no page beyond the first one that reaches older ones.
 * (Paging itself, on the real stack: test/functions/conversations.test.ts.)
 */
import t from "tap"
import type { ConversationPage, ConversationSummary, HistoryPage } from "../../sdk/src/api"
import { Resumer } from "../../sdk/src/resume"
import { Sequencer } from "../../sdk/src/sequencer"
import type { StoredEvent } from "../../sdk/src/types"

const LOST_AT = Date.parse("2026-11-27T12:00:00Z")
const minutes = (m: number) => new Date(LOST_AT + m * 60_000).toISOString()

const message = (conv: string, seq: number, ts: string): StoredEvent => ({
  type: "message",
  conv,
  seq,
  id: `${conv}-${seq}`,
  from: "someone",
  ts,
  body: { kind: "text", text: `${conv} ${seq}` },
})

/** A conversation whose seq 1 was sent an hour before the loss and seq 2 at `lastAt` minutes from it. */
function conversation(id: string, lastAt: number): ConversationSummary {
  return {
    id,
    kind: "group",
    title: id,
    created_by: "someone",
    created_at: minutes(-120),
    role: "member",
    unread: 0,
    last_read_seq: 0,
    last_message: message(id, 2, minutes(lastAt)) as ConversationSummary["last_message"],
  }
}

function harness(pages: ConversationSummary[][]) {
  const asked: (string | undefined)[] = []
  const emitted: StoredEvent[] = []
  const sequencer = new Sequencer({ emit: (e) => emitted.push(e), gap: () => undefined })
  const history = (conv: string): StoredEvent[] => {
    const last = pages.flat().find((c) => c.id === conv)?.last_message
    return [message(conv, 1, minutes(-60)), ...(last ? [message(conv, 2, last.ts)] : [])]
  }
  const page = (items: StoredEvent[]): HistoryPage => ({ items, next_after: null, prev_before: null })
  const resumer = new Resumer({
    sequencer,
    conversations: async (cursor): Promise<ConversationPage> => {
      asked.push(cursor)
      const i = cursor === undefined ? 0 : Number(cursor)
      return { items: pages[i] ?? [], next_cursor: i + 1 < pages.length ? String(i + 1) : null }
    },
    latest: async (conv) => page(history(conv)),
    after: async (conv, after) => page(history(conv).filter((e) => e.seq > after)),
    deliver: (e) => sequencer.accept(e),
    onError: (err) => {
      throw err
    },
    pageSize: 50,
  })
  return { resumer, sequencer, asked, emitted }
}

t.test("conversations active since the loss are found on every page that holds them", async (t) => {
  const { resumer, sequencer, asked, emitted } = harness([
    [conversation("a", 5), conversation("b", 4)],
    [conversation("c", 3), conversation("d", 1)],
    // Still active since the loss (within the margin for clocks), then older: the last page read.
    [conversation("e", 0), conversation("old1", -30)],
    [conversation("old2", -40)],
  ])
  await resumer.resume(LOST_AT)
  t.same(asked, [undefined, "1", "2"], "no page after the first that reaches older conversations")
  t.same(sequencer.tracked().sort(), ["a", "b", "c", "d", "e"])
  t.same(
    emitted.map((e) => e.id),
    ["a-2", "b-2", "c-2", "d-2", "e-2"],
    "each picked up after its last event from before the loss, nothing older",
  )
})

t.test("one page is enough when its last conversation is already older", async (t) => {
  const { resumer, asked, sequencer } = harness([
    [conversation("a", 5), conversation("old", -30)],
    [conversation("older", -60)],
  ])
  await resumer.resume(LOST_AT)
  t.same(asked, [undefined])
  t.same(sequencer.tracked(), ["a"])
})

t.test("the last page ends the walk", async (t) => {
  const { resumer, asked, sequencer } = harness([[conversation("a", 5)], [conversation("b", 4)]])
  await resumer.resume(LOST_AT)
  t.same(asked, [undefined, "1"])
  t.same(sequencer.tracked().sort(), ["a", "b"])
})

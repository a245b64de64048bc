import type { FileNames, SearchDocument, SearchIndex } from "../../lib/ports"
import type { BatchResult, EventBatch } from "../../lib/protocol/events"
import { fileIdOf, indexedContent } from "../../lib/search/document"
import { type IndexedEvent, parseBatch } from "./input"

export type IndexPorts = { readonly index: SearchIndex; readonly files: FileNames }

type Row =
  | {
      readonly kind: "whole"
      conv: string
      id: string
      seq: number
      from: string
      ts: string
      version: number
      body: unknown
    }
  | { readonly kind: "change"; conv: string; id: string; version: number; body: unknown }

/**
 * Follows what the sequencer stored: a message is indexed, an edit re-indexes its target, a
 * recall empties it, reactions change nothing. The batch is folded into one row per message (the
 * highest seq wins) and written in one statement; every row carries the seq it reflects, so a
 * redelivered or reordered event never brings back an older text. Membership is not looked at:
 * the search function filters by the caller's conversations.
 */
export async function handle(batch: EventBatch, ports: IndexPorts): Promise<BatchResult> {
  const { events, rejected } = parseBatch(batch)
  const rows = fold(events)
  const fileIds = [...rows.values()].map((r) => fileIdOf(r.body)).filter((f) => f !== undefined)
  const names = await ports.files.namesOf([...new Set(fileIds)])
  await ports.index.write([...rows.values()].map((r) => toDocument(r, names)))
  return { processed: events.length, rejected }
}

function fold(events: readonly IndexedEvent[]): Map<string, Row> {
  const rows = new Map<string, Row>()
  // Within a conversation, in seq order (the stream's order already; sorting makes it certain).
  const ordered = [...events].sort((a, b) => (a.conv < b.conv ? -1 : a.conv > b.conv ? 1 : a.seq - b.seq))
  for (const e of ordered) {
    if (e.type === "reaction") continue
    if (e.type === "message") {
      const key = `${e.conv}/${e.id}`
      const known = rows.get(key)
      // A later edit or recall of this message in the same batch keeps its newer content.
      const newer = known !== undefined && known.version > e.seq ? known : undefined
      rows.set(key, {
        kind: "whole",
        conv: e.conv,
        id: e.id,
        seq: e.seq,
        from: e.from,
        ts: e.ts,
        version: newer?.version ?? e.seq,
        body: newer === undefined ? e.body : newer.body,
      })
      continue
    }
    const key = `${e.conv}/${e.target}`
    const body = e.type === "edit" ? e.body : null
    const known = rows.get(key)
    if (known === undefined)
      rows.set(key, { kind: "change", conv: e.conv, id: e.target, version: e.seq, body })
    else if (known.version <= e.seq) {
      known.version = e.seq
      known.body = body
    }
  }
  return rows
}

function toDocument(row: Row, names: ReadonlyMap<string, string>): SearchDocument {
  const content = indexedContent(row.conv, row.body, names)
  const common = { conv: row.conv, id: row.id, version: row.version, ...content }
  return row.kind === "whole" ? { ...common, seq: row.seq, from: row.from, ts: row.ts } : common
}

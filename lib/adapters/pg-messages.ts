import type pg from "pg"
import type { MessageStore, StoreBatchResult } from "../ports"
import type { MessageBody, NewMessage, StoredMessage } from "../protocol/events"

type Row = {
  conversation_id: string
  seq: string
  id: string
  sender_id: string
  body: MessageBody
  reply_to: string | null
  sent_at: Date
}

function toStored(row: Row): StoredMessage {
  return {
    conv: row.conversation_id,
    seq: Number(row.seq),
    id: row.id,
    from: row.sender_id,
    body: row.body,
    ...(row.reply_to === null ? {} : { reply_to: row.reply_to }),
    ts: row.sent_at.toISOString(),
  }
}

export function pgMessageStore(pool: pg.Pool): MessageStore {
  return {
    async storeBatch(messages: readonly NewMessage[]): Promise<StoreBatchResult> {
      if (messages.length === 0) return { stored: [], duplicates: [] }
      const client = await pool.connect()
      try {
        await client.query("BEGIN")
        const existing = await client.query<Row>(
          `SELECT conversation_id, seq, id, sender_id, body, reply_to, sent_at
             FROM messages
            WHERE (sender_id, id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))`,
          [messages.map((m) => m.from), messages.map((m) => m.id)],
        )
        const known = new Map(existing.rows.map((r) => [`${r.sender_id}/${r.id}`, r]))
        const fresh: NewMessage[] = []
        const duplicates: StoredMessage[] = []
        for (const m of messages) {
          const key = `${m.from}/${m.id}`
          const row = known.get(key)
          if (row !== undefined) {
            // Report each duplicate once, even if the batch repeats it.
            if (!duplicates.some((d) => d.from === m.from && d.id === m.id)) duplicates.push(toStored(row))
            continue
          }
          if (fresh.some((f) => f.from === m.from && f.id === m.id)) continue
          fresh.push(m)
        }
        const counts = new Map<string, number>()
        for (const m of fresh) counts.set(m.conv, (counts.get(m.conv) ?? 0) + 1)
        // Reserve a block of seqs per conversation; the row lock makes this the single writer.
        const heads = await client.query<{ conversation_id: string; last_seq: string }>(
          `INSERT INTO conversation_heads AS h (conversation_id, last_seq)
           SELECT * FROM unnest($1::text[], $2::bigint[])
           ON CONFLICT (conversation_id) DO UPDATE SET last_seq = h.last_seq + EXCLUDED.last_seq
           RETURNING conversation_id, last_seq`,
          [[...counts.keys()], [...counts.values()]],
        )
        const next = new Map<string, number>()
        for (const h of heads.rows) {
          next.set(h.conversation_id, Number(h.last_seq) - (counts.get(h.conversation_id) ?? 0) + 1)
        }
        const stored: StoredMessage[] = fresh.map((m) => {
          const seq = next.get(m.conv) as number
          next.set(m.conv, seq + 1)
          return {
            conv: m.conv,
            seq,
            id: m.id,
            from: m.from,
            body: m.body,
            ...(m.reply_to === undefined ? {} : { reply_to: m.reply_to }),
            ts: m.ts,
          }
        })
        if (stored.length > 0) {
          await client.query(
            `INSERT INTO messages (conversation_id, seq, id, sender_id, body, reply_to, sent_at)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::jsonb[], $6::uuid[], $7::timestamptz[])`,
            [
              stored.map((s) => s.conv),
              stored.map((s) => s.seq),
              stored.map((s) => s.id),
              stored.map((s) => s.from),
              stored.map((s) => JSON.stringify(s.body)),
              stored.map((s) => s.reply_to ?? null),
              stored.map((s) => s.ts),
            ],
          )
        }
        await client.query("COMMIT")
        return { stored, duplicates }
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined)
        throw err
      } finally {
        client.release()
      }
    },
  }
}

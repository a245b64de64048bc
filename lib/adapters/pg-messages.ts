import type pg from "pg"
import type { HistoryStore } from "../ports"
import type { MessageBody, StoredEvent } from "../protocol/events"

/** The columns every reader of `messages` selects, in this order. */
export const EVENT_COLUMNS =
  "conversation_id, seq, id, sender_id, kind, target_id, body, reply_to, sent_at, edited_at, recalled_at, emoji, reaction_op"

export type EventRow = {
  conversation_id: string
  seq: string
  id: string
  sender_id: string
  kind: StoredEvent["type"]
  target_id: string | null
  body: MessageBody | null
  reply_to: string | null
  sent_at: Date
  edited_at: Date | null
  recalled_at: Date | null
  emoji: string | null
  reaction_op: "add" | "remove" | null
}

/** A message's reactions as history shows them: counts per emoji, and the reader's own emoji. */
export type ReactionsView = { readonly counts: Record<string, number>; readonly mine: string[] }

export function toStoredEvent(row: EventRow, reactions?: ReactionsView): StoredEvent {
  const base = {
    conv: row.conversation_id,
    seq: Number(row.seq),
    id: row.id,
    from: row.sender_id,
    ts: row.sent_at.toISOString(),
  }
  switch (row.kind) {
    case "message":
      return {
        ...base,
        type: "message",
        body: row.recalled_at === null ? row.body : null,
        ...(row.reply_to === null ? {} : { reply_to: row.reply_to }),
        ...(row.edited_at === null || row.recalled_at !== null
          ? {}
          : { edited_at: row.edited_at.toISOString() }),
        ...(row.recalled_at === null ? {} : { recalled: true as const }),
        ...(reactions === undefined ? {} : { reactions: reactions.counts, my_reactions: reactions.mine }),
      }
    case "edit":
      // An edit of a message recalled later shows no text either.
      return row.recalled_at === null
        ? { ...base, type: "edit", target: row.target_id as string, body: row.body as MessageBody }
        : { ...base, type: "edit", target: row.target_id as string, body: null, recalled: true }
    case "recall":
      return { ...base, type: "recall", target: row.target_id as string }
    case "reaction":
      return {
        ...base,
        type: "reaction",
        target: row.target_id as string,
        emoji: row.emoji as string,
        op: row.reaction_op as "add" | "remove",
      }
  }
}

export function pgHistoryStore(pool: pg.Pool): HistoryStore {
  return {
    async history(conversationId, query, reader) {
      // One row more than asked tells whether there is more; the primary key serves both orders.
      const { rows } =
        query.direction === "forward"
          ? await pool.query<EventRow>(
              `SELECT ${EVENT_COLUMNS} FROM messages
                WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
              [conversationId, query.after, query.limit + 1],
            )
          : await pool.query<EventRow>(
              `SELECT ${EVENT_COLUMNS} FROM messages
                WHERE conversation_id = $1 AND ($2::bigint IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3`,
              [conversationId, query.before ?? null, query.limit + 1],
            )
      const more = rows.length > query.limit
      const page = rows.slice(0, query.limit)
      if (query.direction === "backward") page.reverse()
      const messageIds = page.filter((r) => r.kind === "message" && r.recalled_at === null).map((r) => r.id)
      const views = new Map<string, ReactionsView>()
      if (messageIds.length > 0) {
        const reactions = await pool.query<{ message_id: string; emoji: string; n: number; mine: boolean }>(
          `SELECT message_id, emoji, count(*)::int AS n, bool_or(user_id = $3) AS mine FROM reactions
            WHERE conversation_id = $1 AND message_id = ANY($2::uuid[])
            GROUP BY message_id, emoji ORDER BY message_id, emoji`,
          [conversationId, messageIds, reader],
        )
        for (const r of reactions.rows) {
          // Computed keys, not assignment: an emoji may be any text, "__proto__" included.
          const seen = views.get(r.message_id)
          views.set(r.message_id, {
            counts: { ...seen?.counts, [r.emoji]: r.n },
            mine: r.mine ? [...(seen?.mine ?? []), r.emoji] : (seen?.mine ?? []),
          })
        }
      }
      return {
        items: page.map((r) =>
          toStoredEvent(
            r,
            r.kind === "message" && r.recalled_at === null
              ? (views.get(r.id) ?? { counts: {}, mine: [] })
              : undefined,
          ),
        ),
        more,
      }
    },
  }
}

/**
 * The search index in PostgreSQL (table search_docs, migration 0006). tsvector and tsquery values
 * arrive as text in their input syntax and are bound as parameters, never spliced into SQL.
 */
import type pg from "pg"
import type { FileNames, SearchIndex, SearchSource, SearchStore } from "../ports"

/**
 * The month lexeme of a row (lib/search/tsearch.ts `monthLexeme`), made from the row's own
 * sent_at so that an edit keeps it; a recalled row has no vector (NULL || x is NULL).
 */
const MONTH_LEXEME = (column: string) =>
  `array_to_tsvector(ARRAY['~m:' || to_char(${column} AT TIME ZONE 'UTC', 'YYYYMM')])`

export function pgSearchIndex(pool: pg.Pool): SearchIndex {
  return {
    async write(docs) {
      if (docs.length === 0) return
      // Whole rows are upserted, changes update existing rows; a batch names each row once, so
      // the two parts never touch the same row. Older versions never overwrite newer ones.
      await pool.query({
        name: "cove_index_write",
        text: `WITH u AS (
           SELECT * FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::text[], $5::timestamptz[],
                                $6::bigint[], $7::text[], $8::text[])
             AS u(conversation_id, message_id, seq, sender_id, sent_at, version, content, tsv)
         ), upserted AS (
           INSERT INTO search_docs AS d (conversation_id, message_id, seq, sender_id, sent_at, version, content, tsv)
           SELECT conversation_id, message_id, seq, sender_id, sent_at, version, content,
                  tsv::tsvector || ${MONTH_LEXEME("u.sent_at")}
             FROM u WHERE seq IS NOT NULL
           ON CONFLICT (conversation_id, message_id) DO UPDATE
             SET version = EXCLUDED.version, content = EXCLUDED.content, tsv = EXCLUDED.tsv, indexed_at = now()
             WHERE d.version <= EXCLUDED.version
         )
         UPDATE search_docs d
            SET version = u.version, content = u.content, tsv = u.tsv::tsvector || ${MONTH_LEXEME("d.sent_at")},
                indexed_at = now()
           FROM u
          WHERE u.seq IS NULL AND d.conversation_id = u.conversation_id AND d.message_id = u.message_id
            AND d.version <= u.version`,
        values: [
          docs.map((d) => d.conv),
          docs.map((d) => d.id),
          docs.map((d) => d.seq ?? null),
          docs.map((d) => (d.seq === undefined ? null : d.from)),
          docs.map((d) => (d.seq === undefined ? null : d.ts)),
          docs.map((d) => d.version),
          docs.map((d) => d.content),
          docs.map((d) => d.vector),
        ],
      })
    },
  }
}

export function pgSearchSource(pool: pg.Pool): SearchSource {
  return {
    async count() {
      const { rows } = await pool.query<{ n: string }>(
        "SELECT count(*) AS n FROM messages WHERE kind = 'message'",
      )
      return Number(rows[0]?.n ?? 0)
    },
    async messagesAfter(after, limit) {
      // One statement, one snapshot: the head's last_seq covers every event applied to the rows.
      const { rows } = await pool.query<{
        conversation_id: string
        seq: string
        id: string
        sender_id: string
        sent_at: Date
        body: unknown
        last_seq: string
      }>(
        `SELECT m.conversation_id, m.seq, m.id, m.sender_id, m.sent_at,
                CASE WHEN m.recalled_at IS NULL THEN m.body END AS body, h.last_seq
           FROM messages m JOIN conversation_heads h ON h.conversation_id = m.conversation_id
          WHERE m.kind = 'message' AND ($1::text IS NULL OR (m.conversation_id, m.seq) > ($1, $2::bigint))
          ORDER BY m.conversation_id, m.seq
          LIMIT $3`,
        [after?.conv ?? null, after?.seq ?? 0, limit],
      )
      return rows.map((r) => ({
        conv: r.conversation_id,
        seq: Number(r.seq),
        id: r.id,
        from: r.sender_id,
        ts: r.sent_at.toISOString(),
        version: Number(r.last_seq),
        body: r.body,
      }))
    },
  }
}

/** File names from the files function's table (migration 0007). */
export function pgFileNames(pool: pg.Pool): FileNames {
  return {
    async namesOf(fileIds) {
      if (fileIds.length === 0) return new Map()
      const { rows } = await pool.query<{ id: string; name: string }>(
        "SELECT id, name FROM files WHERE id = ANY($1::text[])",
        [fileIds],
      )
      return new Map(rows.map((r) => [r.id, r.name]))
    },
  }
}

/**
 * The words and the caller's conversations are two conditions on the one GIN index: PostgreSQL
 * then intersects the two posting streams, skipping ahead in each (a single tsquery ORing 50
 * conversations into the words would evaluate that whole tree for every document of those
 * conversations).
 */
export function pgSearchStore(pool: pg.Pool): SearchStore {
  return {
    async search(q) {
      const { rows } = await pool.query<{
        conversation_id: string
        seq: string
        message_id: string
        sender_id: string
        sent_at: Date
        content: string
        rank: string
        at: string
        candidates: string
      }>(
        `SELECT conversation_id, seq, message_id, sender_id, sent_at, content, rank::text AS rank,
                sent_at::text AS at, candidates FROM (
           SELECT conversation_id, seq, message_id, sender_id, sent_at, content,
                  ts_rank(tsv, $1::tsquery) AS rank, count(*) OVER () AS candidates
             FROM search_docs
            WHERE tsv @@ $1::tsquery
              AND ${q.scope === undefined ? "$2::text IS NULL" : "tsv @@ $2::tsquery"}
              AND ${q.months === undefined ? "$12::text IS NULL" : "tsv @@ $12::tsquery"}
              -- Checked row by row on the hits: as an index condition the planner would read every
              -- document of the caller's conversations from the primary key.
              AND (conversation_id || '') = ANY($3::text[])
              AND ($4::text IS NULL OR sender_id = $4)
              AND ($5::timestamptz IS NULL OR sent_at > $5)
              AND ($6::timestamptz IS NULL OR sent_at < $6)
         ) hits
         WHERE $7::real IS NULL OR (rank, sent_at, conversation_id, seq) < ($7::real, $8::timestamptz, $9::text, $10::bigint)
         ORDER BY rank DESC, sent_at DESC, conversation_id DESC, seq DESC
         LIMIT $11`,
        [
          q.match,
          q.scope ?? null,
          q.conversations,
          q.from ?? null,
          q.after ?? null,
          q.before ?? null,
          q.cursor?.rank ?? null,
          q.cursor?.ts ?? null,
          q.cursor?.conv ?? null,
          q.cursor?.seq ?? null,
          q.limit,
          q.months ?? null,
        ],
      )
      return {
        candidates: Number(rows[0]?.candidates ?? 0),
        hits: rows.map((r) => ({
          conv: r.conversation_id,
          seq: Number(r.seq),
          id: r.message_id,
          from: r.sender_id,
          ts: r.sent_at.toISOString(),
          content: r.content,
          // Exact values as PostgreSQL prints them, so the next page starts exactly after this hit.
          position: { rank: r.rank, ts: r.at, conv: r.conversation_id, seq: Number(r.seq) },
        })),
      }
    },
  }
}

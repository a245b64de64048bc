/**
 * The sequencer's storage: applies a batch of inbound events in one transaction. Events are
 * checked in batch order against the state as it evolves within the batch (a message and its
 * edit may arrive together), then written with a few set-based statements.
 */
import type pg from "pg"
import type { ApplyResult, RefusalCode, Role, SequencerStore } from "../ports"
import type { InboundEvent, MessageBody, ReadReceipt, StoredEvent } from "../protocol/events"
import { EVENT_COLUMNS, type EventRow, toStoredEvent } from "./pg-messages"
import { inTransaction } from "./pg-transaction"

type SeqEvent = Exclude<InboundEvent, { type: "read" }>
type Target = { sender: string; recalled: boolean; kind: StoredEvent["type"] }

const key = (conv: string, id: string) => `${conv}/${id}`

export function pgSequencerStore(pool: pg.Pool): SequencerStore {
  return {
    apply(events, now) {
      if (events.length === 0) return Promise.resolve({ stored: [], duplicates: [], refused: [], reads: [] })
      return inTransaction(pool, (client) => applyBatch(client, events, now))
    },
  }
}

async function applyBatch(
  client: pg.PoolClient,
  events: readonly InboundEvent[],
  now: Date,
): Promise<ApplyResult> {
  const seqEvents = events.filter((e): e is SeqEvent => e.type !== "read")

  const existing = await client.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM messages
      WHERE (sender_id, id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))`,
    [seqEvents.map((e) => e.from), seqEvents.map((e) => e.id)],
  )
  const known = new Map(existing.rows.map((r) => [`${r.sender_id}/${r.id}`, r]))

  // Membership and roles, checked in the same transaction as the writes: a member removed after
  // the edge let an event through cannot act any more.
  const membership = await client.query<{ conversation_id: string; user_id: string; role: Role }>(
    `SELECT conversation_id, user_id::text AS user_id, role FROM conversation_members
      WHERE (conversation_id, user_id::text) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [events.map((e) => e.conv), events.map((e) => e.from)],
  )
  const roles = new Map(membership.rows.map((r) => [key(r.conversation_id, r.user_id), r.role]))

  // What the events point at, and their own ids: an id names one event of a conversation, so
  // one already used there by someone else is refused (else an edit could reach their message).
  const targetIds = seqEvents.flatMap((e) => [
    [e.conv, e.id],
    ...(e.type === "message" ? [] : [[e.conv, e.target]]),
  ])
  const targetRows = await client.query<{
    conversation_id: string
    id: string
    sender_id: string
    kind: StoredEvent["type"]
    recalled: boolean
  }>(
    `SELECT conversation_id, id, sender_id, kind, recalled_at IS NOT NULL AS recalled FROM messages
      WHERE (conversation_id, id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))`,
    [targetIds.map((t) => t[0]), targetIds.map((t) => t[1])],
  )
  const targets = new Map<string, Target>(
    targetRows.rows.map((r) => [
      key(r.conversation_id, r.id),
      { sender: r.sender_id, recalled: r.recalled, kind: r.kind },
    ]),
  )

  const files = await filesNamed(client, seqEvents)

  const accepted: SeqEvent[] = []
  const duplicates: StoredEvent[] = []
  const refused: { event: InboundEvent; code: RefusalCode }[] = []
  const readsWanted = new Map<string, { conv: string; user: string; seq: number }>()
  const seen = new Set<string>()
  for (const e of events) {
    const role = roles.get(key(e.conv, e.from))
    if (e.type === "read") {
      if (role === undefined) refused.push({ event: e, code: "NOT_A_MEMBER" })
      else {
        const k = key(e.conv, e.from)
        readsWanted.set(k, { conv: e.conv, user: e.from, seq: Math.max(e.seq, readsWanted.get(k)?.seq ?? 0) })
      }
      continue
    }
    const id = `${e.from}/${e.id}`
    if (seen.has(id)) continue
    seen.add(id)
    const row = known.get(id)
    if (row !== undefined) {
      duplicates.push(toStoredEvent(row))
      continue
    }
    const code = targets.has(key(e.conv, e.id))
      ? "ID_TAKEN"
      : (refusal(e, role, targets) ?? fileRefusal(e, files))
    if (code !== undefined) {
      refused.push({ event: e, code })
      continue
    }
    accepted.push(e)
    targets.set(key(e.conv, e.id), { sender: e.from, recalled: false, kind: e.type })
    if (e.type === "recall") {
      const t = targets.get(key(e.conv, e.target))
      if (t !== undefined) t.recalled = true
    }
  }

  const stored = await insertEvents(client, accepted)
  await applyEffects(client, accepted, now)
  const reads = await moveReads(client, [...readsWanted.values()])
  return { stored, duplicates, refused, reads }
}

/** Who may do what: members post and react; edits and recalls by the sender or a group admin. */
function refusal(e: SeqEvent, role: Role | undefined, targets: Map<string, Target>): RefusalCode | undefined {
  if (role === undefined) return "NOT_A_MEMBER"
  if (e.type === "message") return undefined
  const target = targets.get(key(e.conv, e.target))
  if (target === undefined || target.kind !== "message") return "TARGET_NOT_FOUND"
  if (target.recalled) return "TARGET_RECALLED"
  if (e.type === "reaction") return undefined
  const mayModerate = role === "owner" || role === "admin"
  return target.sender === e.from || mayModerate ? undefined : "FORBIDDEN"
}

type FileFacts = { conv: string; owner: string; ready: boolean }

/**
 * The files that messages and edits of the batch point at, in one query. FOR SHARE keeps them
 * from being deleted before the commit.
 */
async function filesNamed(
  client: pg.PoolClient,
  events: readonly SeqEvent[],
): Promise<Map<string, FileFacts>> {
  const ids = new Set<string>()
  for (const e of events)
    if ((e.type === "message" || e.type === "edit") && e.body.kind === "file") ids.add(e.body.file_id)
  if (ids.size === 0) return new Map()
  const { rows } = await client.query<{
    id: string
    conversation_id: string
    owner_id: string
    ready: boolean
  }>(
    `SELECT id, conversation_id, owner_id::text AS owner_id, status = 'ready' AS ready FROM files
      WHERE id = ANY($1::text[]) FOR SHARE`,
    [[...ids]],
  )
  return new Map(rows.map((r) => [r.id, { conv: r.conversation_id, owner: r.owner_id, ready: r.ready }]))
}

/** A file message may only name a ready file that its sender uploaded to the same conversation. */
function fileRefusal(e: SeqEvent, files: Map<string, FileFacts>): RefusalCode | undefined {
  if ((e.type !== "message" && e.type !== "edit") || e.body.kind !== "file") return undefined
  const file = files.get(e.body.file_id)
  if (file === undefined || !file.ready) return "FILE_NOT_READY"
  if (file.owner !== e.from) return "FILE_NOT_SENDERS"
  if (file.conv !== e.conv) return "FILE_OTHER_CONVERSATION"
  return undefined
}

async function insertEvents(client: pg.PoolClient, accepted: readonly SeqEvent[]): Promise<StoredEvent[]> {
  if (accepted.length === 0) return []
  const counts = new Map<string, number>()
  for (const e of accepted) counts.set(e.conv, (counts.get(e.conv) ?? 0) + 1)
  // Reserve a block of seqs per conversation; the row lock makes this the single writer.
  const heads = await client.query<{ conversation_id: string; last_seq: string }>(
    `INSERT INTO conversation_heads AS h (conversation_id, last_seq)
     SELECT * FROM unnest($1::text[], $2::bigint[])
     ON CONFLICT (conversation_id) DO UPDATE SET last_seq = h.last_seq + EXCLUDED.last_seq
     RETURNING conversation_id, last_seq`,
    [[...counts.keys()], [...counts.values()]],
  )
  const next = new Map<string, number>()
  for (const h of heads.rows)
    next.set(h.conversation_id, Number(h.last_seq) - (counts.get(h.conversation_id) ?? 0) + 1)
  const seqs = accepted.map((e) => {
    const seq = next.get(e.conv) as number
    next.set(e.conv, seq + 1)
    return seq
  })
  const { rows } = await client.query<EventRow>(
    `INSERT INTO messages (conversation_id, seq, id, sender_id, kind, target_id, body, reply_to, sent_at, emoji, reaction_op)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::uuid[], $7::jsonb[],
                          $8::uuid[], $9::timestamptz[], $10::text[], $11::text[])
     RETURNING ${EVENT_COLUMNS}`,
    [
      accepted.map((e) => e.conv),
      seqs,
      accepted.map((e) => e.id),
      accepted.map((e) => e.from),
      accepted.map((e) => e.type),
      accepted.map((e) => (e.type === "message" ? null : e.target)),
      accepted.map((e) => (e.type === "message" || e.type === "edit" ? JSON.stringify(e.body) : null)),
      accepted.map((e) => (e.type === "message" ? (e.reply_to ?? null) : null)),
      accepted.map((e) => e.ts),
      accepted.map((e) => (e.type === "reaction" ? e.emoji : null)),
      accepted.map((e) => (e.type === "reaction" ? e.op : null)),
    ],
  )
  // RETURNING does not promise the input order: put the events back in it.
  const bySeq = new Map(rows.map((r) => [key(r.conversation_id, r.seq), r]))
  return accepted.map((e, i) => toStoredEvent(bySeq.get(key(e.conv, String(seqs[i]))) as EventRow))
}

/** Edits, recalls and reactions change their target; the last edit in a batch wins. */
async function applyEffects(client: pg.PoolClient, accepted: readonly SeqEvent[], now: Date): Promise<void> {
  const edits = new Map<string, { conv: string; target: string; body: MessageBody; by: string }>()
  const recalls = new Map<string, { conv: string; target: string }>()
  const reactions: { conv: string; target: string; user: string; emoji: string; op: "add" | "remove" }[] = []
  for (const e of accepted) {
    if (e.type === "edit")
      edits.set(key(e.conv, e.target), { conv: e.conv, target: e.target, body: e.body, by: e.from })
    if (e.type === "recall") recalls.set(key(e.conv, e.target), { conv: e.conv, target: e.target })
    if (e.type === "reaction")
      reactions.push({ conv: e.conv, target: e.target, user: e.from, emoji: e.emoji, op: e.op })
  }
  if (edits.size > 0) {
    const list = [...edits.values()]
    await client.query(
      `UPDATE messages m SET body = u.body, edited_at = $5, edited_by = u.by
         FROM unnest($1::text[], $2::uuid[], $3::jsonb[], $4::text[]) AS u(conv, target, body, by)
        WHERE m.conversation_id = u.conv AND m.id = u.target AND m.kind = 'message'`,
      [
        list.map((x) => x.conv),
        list.map((x) => x.target),
        list.map((x) => JSON.stringify(x.body)),
        list.map((x) => x.by),
        now,
      ],
    )
  }
  for (const r of reactions) {
    if (r.op === "add") {
      await client.query(
        `INSERT INTO reactions (conversation_id, message_id, user_id, emoji, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING`,
        [r.conv, r.target, r.user, r.emoji, now],
      )
    } else {
      await client.query(
        "DELETE FROM reactions WHERE conversation_id = $1 AND message_id = $2 AND user_id = $3 AND emoji = $4",
        [r.conv, r.target, r.user, r.emoji],
      )
    }
  }
  if (recalls.size > 0) {
    const list = [...recalls.values()]
    // A recall removes the content for everyone: body, edits' bodies and reactions.
    await client.query(
      `UPDATE messages m SET body = NULL, recalled_at = $3
         FROM unnest($1::text[], $2::uuid[]) AS u(conv, target)
        WHERE m.conversation_id = u.conv
          AND ((m.id = u.target AND m.kind = 'message') OR (m.target_id = u.target AND m.kind = 'edit'))`,
      [list.map((x) => x.conv), list.map((x) => x.target), now],
    )
    await client.query(
      `DELETE FROM reactions r USING unnest($1::text[], $2::uuid[]) AS u(conv, target)
        WHERE r.conversation_id = u.conv AND r.message_id = u.target`,
      [list.map((x) => x.conv), list.map((x) => x.target)],
    )
  }
}

/** Read positions only move forward, and never past the conversation's last seq. */
async function moveReads(
  client: pg.PoolClient,
  wanted: readonly { conv: string; user: string; seq: number }[],
): Promise<ReadReceipt[]> {
  if (wanted.length === 0) return []
  const { rows } = await client.query<{ conversation_id: string; user_id: string; last_read_seq: string }>(
    `UPDATE conversation_members m
        SET last_read_seq = LEAST(u.seq, coalesce(h.last_seq, 0))
       FROM unnest($1::text[], $2::uuid[], $3::bigint[]) AS u(conv, usr, seq)
       LEFT JOIN conversation_heads h ON h.conversation_id = u.conv
      WHERE m.conversation_id = u.conv AND m.user_id = u.usr
        AND LEAST(u.seq, coalesce(h.last_seq, 0)) > m.last_read_seq
      RETURNING m.conversation_id, m.user_id::text AS user_id, m.last_read_seq`,
    [wanted.map((w) => w.conv), wanted.map((w) => w.user), wanted.map((w) => w.seq)],
  )
  return rows.map((r) => ({
    type: "read",
    conv: r.conversation_id,
    user: r.user_id,
    seq: Number(r.last_read_seq),
  }))
}

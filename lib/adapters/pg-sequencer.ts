/**
 * The sequencer's storage: applies a batch of inbound events in one transaction. Events are
 * checked in batch order against the state as it evolves within the batch (a message and its
 * edit may arrive together), then written with a few set-based statements. The transaction
 * takes two round trips on a pipelined pool (reads, then writes + COMMIT): see
 * inTwoStepTransaction.
 */
import type pg from "pg"
import type { ApplyResult, RefusalCode, Role, SequencerStore } from "../ports"
import type { InboundEvent, MessageBody, StoredEvent } from "../protocol/events"
import { isUuid } from "../protocol/ids"
import { EVENT_COLUMNS, type EventRow, toStoredEvent } from "./pg-messages"
import { inTwoStepTransaction, type Statement, type TwoStepTransaction } from "./pg-transaction"

type SeqEvent = Exclude<InboundEvent, { type: "read" }>
type Target = { sender: string; recalled: boolean; kind: StoredEvent["type"] }
type TargetRow = {
  conversation_id: string
  id: string
  sender_id: string
  kind: StoredEvent["type"]
  recalled: boolean
}
type FileRow = { id: string; conversation_id: string; owner_id: string; ready: boolean }

const key = (conv: string, id: string) => `${conv}/${id}`

export function pgSequencerStore(pool: pg.Pool): SequencerStore {
  return {
    apply(events, now) {
      if (events.length === 0) return Promise.resolve({ stored: [], duplicates: [], refused: [], reads: [] })
      return inTwoStepTransaction(pool, (tx) => applyBatch(tx, events, now))
    },
  }
}

async function applyBatch(
  tx: TwoStepTransaction,
  events: readonly InboundEvent[],
  now: Date,
): Promise<ApplyResult> {
  const seqEvents = events.filter((e): e is SeqEvent => e.type !== "read")
  // What the events point at, and their own ids: an id names one event of a conversation, so
  // one already used there by someone else is refused (else an edit could reach their message).
  const targetIds = seqEvents.flatMap((e) => [
    [e.conv, e.id],
    ...(e.type === "message" ? [] : [[e.conv, e.target]]),
  ])
  const fileIds = new Set<string>()
  for (const e of seqEvents)
    if ((e.type === "message" || e.type === "edit") && e.body.kind === "file") fileIds.add(e.body.file_id)

  // Each sender once per conversation: a batch is mostly a few people sending many messages.
  const pairs = [...new Map(events.map((e) => [key(e.conv, e.from), e])).values()]
  const reads: Statement[] = [
    {
      name: "cove_sequencer_known",
      text: `SELECT ${EVENT_COLUMNS} FROM messages
              WHERE (sender_id, id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))`,
      values: [seqEvents.map((e) => e.from), seqEvents.map((e) => e.id)],
    },
    // Membership and roles, checked in the same transaction as the writes: a member removed
    // after the edge let an event through cannot act any more. Compared as uuids, so that each
    // pair is one primary-key probe: comparing user_id::text scanned every membership row
    // (2.4 ms per batch with 10,000 members in all, and growing with them). A sender id that
    // is not a uuid cannot be a member: it is looked up as NULL, which matches nothing.
    {
      name: "cove_sequencer_members",
      text: `SELECT conversation_id, user_id::text AS user_id, role FROM conversation_members
              WHERE (conversation_id, user_id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))`,
      values: [pairs.map((p) => p.conv), pairs.map((p) => (isUuid(p.from) ? p.from : null))],
    },
  ]
  if (targetIds.length > 0)
    reads.push({
      name: "cove_sequencer_targets",
      text: `SELECT conversation_id, id, sender_id, kind, recalled_at IS NOT NULL AS recalled FROM messages
              WHERE (conversation_id, id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))`,
      values: [targetIds.map((t) => t[0]), targetIds.map((t) => t[1])],
    })
  // The files that messages and edits point at. FOR SHARE keeps them from being deleted before the commit.
  if (fileIds.size > 0)
    reads.push({
      name: "cove_sequencer_files",
      text: `SELECT id, conversation_id, owner_id::text AS owner_id, status = 'ready' AS ready FROM files
              WHERE id = ANY($1::text[]) FOR SHARE`,
      values: [[...fileIds]],
    })
  const results = await tx.read(reads)
  const rowsOf = <R>(i: number): R[] => (results[i]?.rows ?? []) as R[]
  const existing = rowsOf<EventRow>(0)
  const membership = rowsOf<{ conversation_id: string; user_id: string; role: Role }>(1)
  const targetRows = targetIds.length === 0 ? [] : rowsOf<TargetRow>(2)
  const fileRows = fileIds.size === 0 ? [] : rowsOf<FileRow>(reads.length - 1)

  const known = new Map(existing.map((r) => [`${r.sender_id}/${r.id}`, r]))
  const roles = new Map(membership.map((r) => [key(r.conversation_id, r.user_id), r.role]))
  const targets = new Map<string, Target>(
    targetRows.map((r) => [
      key(r.conversation_id, r.id),
      { sender: r.sender_id, recalled: r.recalled, kind: r.kind },
    ]),
  )
  const files = new Map<string, FileFacts>(
    fileRows.map((r) => [r.id, { conv: r.conversation_id, owner: r.owner_id, ready: r.ready }]),
  )

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

  const wantedReads = [...readsWanted.values()]
  const writes = [...insertEvents(accepted), ...effects(accepted, now), ...moveReads(wantedReads)]
  const written = await tx.writeAndCommit(writes)
  const stored = accepted.length === 0 ? [] : withSeqs(accepted, (written[0]?.rows ?? []) as SeqRow[])
  const moved = wantedReads.length === 0 ? [] : (written.at(-1)?.rows ?? [])
  return {
    stored,
    duplicates,
    refused,
    reads: (moved as { conversation_id: string; user_id: string; last_read_seq: string }[]).map((r) => ({
      type: "read",
      conv: r.conversation_id,
      user: r.user_id,
      seq: Number(r.last_read_seq),
    })),
  }
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

/** A file message may only name a ready file that its sender uploaded to the same conversation. */
function fileRefusal(e: SeqEvent, files: Map<string, FileFacts>): RefusalCode | undefined {
  if ((e.type !== "message" && e.type !== "edit") || e.body.kind !== "file") return undefined
  const file = files.get(e.body.file_id)
  if (file === undefined || !file.ready) return "FILE_NOT_READY"
  if (file.owner !== e.from) return "FILE_NOT_SENDERS"
  if (file.conv !== e.conv) return "FILE_OTHER_CONVERSATION"
  return undefined
}

/**
 * One statement: reserves a block of seqs per conversation in conversation_heads (the row lock
 * makes this the single writer until the commit) and inserts the events with seqs from that
 * block, in batch order within each conversation. The head also keeps the latest `ts` of the
 * conversation's messages (never moving back), the order of the conversation list.
 */
function insertEvents(accepted: readonly SeqEvent[]): Statement[] {
  if (accepted.length === 0) return []
  return [
    {
      name: "cove_sequencer_insert",
      text: `WITH batch AS (
               SELECT u.*, row_number() OVER (PARTITION BY u.conv ORDER BY u.ord) AS rn,
                      count(*) OVER (PARTITION BY u.conv) AS n
                 FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::jsonb[], $7::uuid[],
                             $8::timestamptz[], $9::text[], $10::text[])
                      WITH ORDINALITY AS u(conv, id, sender, kind, target, body, reply_to, sent_at, emoji, op, ord)
             ), heads AS (
               INSERT INTO conversation_heads AS h (conversation_id, last_seq, last_message_at)
               SELECT conv, count(*), max(sent_at) FILTER (WHERE kind = 'message') FROM batch GROUP BY conv
               ON CONFLICT (conversation_id) DO UPDATE
                  SET last_seq = h.last_seq + EXCLUDED.last_seq,
                      last_message_at = GREATEST(h.last_message_at, EXCLUDED.last_message_at)
               RETURNING conversation_id, last_seq
             )
             INSERT INTO messages (conversation_id, seq, id, sender_id, kind, target_id, body, reply_to, sent_at, emoji, reaction_op)
             SELECT b.conv, h.last_seq - b.n + b.rn, b.id, b.sender, b.kind, b.target, b.body, b.reply_to, b.sent_at, b.emoji, b.op
               FROM batch b JOIN heads h ON h.conversation_id = b.conv
             RETURNING conversation_id, id, seq`,
      values: [
        accepted.map((e) => e.conv),
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
    },
  ]
}

type SeqRow = { conversation_id: string; id: string; seq: string }

/**
 * The accepted events as stored, in batch order. The insert returns only each event's seq: the
 * rest is what the batch carried (new rows have no edit or recall yet), so PostgreSQL does not
 * send every body back to be parsed again. `ts` goes through Date as a row's sent_at does.
 */
function withSeqs(accepted: readonly SeqEvent[], rows: readonly SeqRow[]): StoredEvent[] {
  const seqs = new Map<string, number>()
  for (const r of rows) seqs.set(key(r.conversation_id, r.id), Number(r.seq))
  return accepted.map((e) => {
    const seq = seqs.get(key(e.conv, e.id))
    if (seq === undefined) throw new Error(`sequencer: no stored row for ${e.conv}/${e.id}`)
    return storedEvent(e, seq)
  })
}

function storedEvent(e: SeqEvent, seq: number): StoredEvent {
  const base = { conv: e.conv, seq, id: e.id, from: e.from, ts: new Date(e.ts).toISOString() }
  switch (e.type) {
    case "message":
      return {
        ...base,
        type: "message",
        body: e.body,
        ...(e.reply_to === undefined ? {} : { reply_to: e.reply_to }),
      }
    case "edit":
      return { ...base, type: "edit", target: e.target, body: e.body }
    case "recall":
      return { ...base, type: "recall", target: e.target }
    case "reaction":
      return { ...base, type: "reaction", target: e.target, emoji: e.emoji, op: e.op }
  }
}

/** Edits, recalls and reactions change their target; the last edit in a batch wins. */
function effects(accepted: readonly SeqEvent[], now: Date): Statement[] {
  const edits = new Map<string, { conv: string; target: string; body: MessageBody; by: string }>()
  const recalls = new Map<string, { conv: string; target: string }>()
  const out: Statement[] = []
  for (const e of accepted) {
    if (e.type === "edit")
      edits.set(key(e.conv, e.target), { conv: e.conv, target: e.target, body: e.body, by: e.from })
    if (e.type === "recall") recalls.set(key(e.conv, e.target), { conv: e.conv, target: e.target })
  }
  if (edits.size > 0) {
    const list = [...edits.values()]
    out.push({
      name: "cove_sequencer_edit",
      text: `UPDATE messages m SET body = u.body, edited_at = $5, edited_by = u.by
               FROM unnest($1::text[], $2::uuid[], $3::jsonb[], $4::text[]) AS u(conv, target, body, by)
              WHERE m.conversation_id = u.conv AND m.id = u.target AND m.kind = 'message'`,
      values: [
        list.map((x) => x.conv),
        list.map((x) => x.target),
        list.map((x) => JSON.stringify(x.body)),
        list.map((x) => x.by),
        now,
      ],
    })
  }
  // In batch order: an add and a remove of the same reaction must apply in the order sent.
  for (const e of accepted) {
    if (e.type !== "reaction") continue
    out.push(
      e.op === "add"
        ? {
            name: "cove_sequencer_reaction_add",
            text: `INSERT INTO reactions (conversation_id, message_id, user_id, emoji, created_at) VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT DO NOTHING`,
            values: [e.conv, e.target, e.from, e.emoji, now],
          }
        : {
            name: "cove_sequencer_reaction_remove",
            text: "DELETE FROM reactions WHERE conversation_id = $1 AND message_id = $2 AND user_id = $3 AND emoji = $4",
            values: [e.conv, e.target, e.from, e.emoji],
          },
    )
  }
  if (recalls.size > 0) {
    const list = [...recalls.values()]
    // A recall removes the content for everyone: body, edits' bodies and reactions.
    out.push(
      {
        name: "cove_sequencer_recall",
        text: `UPDATE messages m SET body = NULL, recalled_at = $3
                 FROM unnest($1::text[], $2::uuid[]) AS u(conv, target)
                WHERE m.conversation_id = u.conv
                  AND ((m.id = u.target AND m.kind = 'message') OR (m.target_id = u.target AND m.kind = 'edit'))`,
        values: [list.map((x) => x.conv), list.map((x) => x.target), now],
      },
      {
        name: "cove_sequencer_recall_reactions",
        text: `DELETE FROM reactions r USING unnest($1::text[], $2::uuid[]) AS u(conv, target)
                WHERE r.conversation_id = u.conv AND r.message_id = u.target`,
        values: [list.map((x) => x.conv), list.map((x) => x.target)],
      },
    )
  }
  return out
}

/**
 * Read positions only move forward, and never past the conversation's last seq (which the
 * writes before it in the same transaction have already moved). Last of the writes: its rows
 * are the receipts to deliver.
 */
function moveReads(wanted: readonly { conv: string; user: string; seq: number }[]): Statement[] {
  if (wanted.length === 0) return []
  return [
    {
      name: "cove_sequencer_reads",
      text: `UPDATE conversation_members m
                SET last_read_seq = LEAST(u.seq, coalesce(h.last_seq, 0))
               FROM unnest($1::text[], $2::uuid[], $3::bigint[]) AS u(conv, usr, seq)
               LEFT JOIN conversation_heads h ON h.conversation_id = u.conv
              WHERE m.conversation_id = u.conv AND m.user_id = u.usr
                AND LEAST(u.seq, coalesce(h.last_seq, 0)) > m.last_read_seq
              RETURNING m.conversation_id, m.user_id::text AS user_id, m.last_read_seq`,
      values: [wanted.map((w) => w.conv), wanted.map((w) => w.user), wanted.map((w) => w.seq)],
    },
  ]
}

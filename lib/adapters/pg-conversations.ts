import { randomUUID } from "node:crypto"
import type pg from "pg"
import type { Conversation, ConversationStore, ConversationSummary, Member, Role } from "../ports"
import type { StoredMessage } from "../protocol/events"
import { queueControlEvent } from "./pg-control-outbox"
import { EVENT_COLUMNS, type EventRow, toStoredEvent } from "./pg-messages"
import { inTransaction } from "./pg-transaction"

type ConversationRow = {
  id: string
  kind: "direct" | "group"
  title: string | null
  created_by: string
  created_at: Date
}

const CONVERSATION_COLUMNS = "c.id, c.kind, c.title, c.created_by, c.created_at"

function toConversation(row: ConversationRow): Conversation {
  return {
    id: row.id,
    kind: row.kind,
    title: row.title,
    createdBy: row.created_by,
    createdAt: row.created_at,
  }
}

export function pgConversationStore(pool: pg.Pool): ConversationStore {
  return {
    openDirect(id, a, b, now) {
      const [low, high] = a < b ? [a, b] : [b, a]
      return inTransaction(pool, async (client) => {
        const inserted = await client.query<ConversationRow>(
          `INSERT INTO conversations AS c (id, kind, direct_key, created_by, created_at)
           VALUES ($1, 'direct', $2, $3, $4)
           ON CONFLICT (direct_key) DO NOTHING
           RETURNING ${CONVERSATION_COLUMNS}`,
          [id, `${low}:${high}`, a, now],
        )
        const row = inserted.rows[0]
        if (row !== undefined) {
          await client.query(
            `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at)
             SELECT $1, unnest($2::uuid[]), 'member', $3`,
            [id, [low, high], now],
          )
          await queueMembership(client, { conv: id, added: [a, b], removed: [], by: a, members: 2 })
          return { conversation: toConversation(row), created: true }
        }
        const existing = await client.query<ConversationRow>(
          `SELECT ${CONVERSATION_COLUMNS} FROM conversations c WHERE c.direct_key = $1`,
          [`${low}:${high}`],
        )
        return { conversation: toConversation(existing.rows[0] as ConversationRow), created: false }
      })
    },

    createGroup(id, title, owner, members, now) {
      return inTransaction(pool, async (client) => {
        const { rows } = await client.query<ConversationRow>(
          `INSERT INTO conversations AS c (id, kind, title, created_by, created_at)
           VALUES ($1, 'group', $2, $3, $4) RETURNING ${CONVERSATION_COLUMNS}`,
          [id, title, owner, now],
        )
        const others = [...new Set(members)].filter((m) => m !== owner)
        await client.query(
          `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at)
           SELECT $1, u, CASE WHEN u = $2::uuid THEN 'owner' ELSE 'member' END, $3
             FROM unnest($4::uuid[]) AS u`,
          [id, owner, now, [owner, ...others]],
        )
        await queueMembership(client, {
          conv: id,
          added: [owner, ...others],
          removed: [],
          by: owner,
          members: others.length + 1,
        })
        return toConversation(rows[0] as ConversationRow)
      })
    },

    async get(conversationId) {
      const { rows } = await pool.query<ConversationRow>(
        `SELECT ${CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = $1`,
        [conversationId],
      )
      return rows[0] === undefined ? undefined : toConversation(rows[0])
    },

    async roleOf(conversationId, userId) {
      const { rows } = await pool.query<{ role: Role }>(
        "SELECT role FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
        [conversationId, userId],
      )
      return rows[0]?.role
    },

    async listFor(userId, page) {
      const { rows } = await pool.query<
        ConversationRow & {
          role: Role
          last_read_seq: string
          active_us: string
          more: boolean
          unread: string
          last: EventRow | null
        }
      >(
        // Last activity: the later of the creation and the latest message ts (which the head
        // keeps). Neither moves back, so a conversation only ever moves toward the front. The
        // order needs one row per conversation, so the page is cut first; unread counts and last
        // messages are looked up for it alone. Ids compare bytewise (COLLATE "C"): the same tie
        // order whatever the database's locale.
        `WITH mine AS (
           SELECT ${CONVERSATION_COLUMNS}, m.role, m.last_read_seq,
                  (extract(epoch FROM GREATEST(h.last_message_at, c.created_at)) * 1000000)::bigint AS active_us
             FROM conversation_members m
             JOIN conversations c ON c.id = m.conversation_id
             LEFT JOIN conversation_heads h ON h.conversation_id = m.conversation_id
            WHERE m.user_id = $1::uuid
         ), upcoming AS (
           -- One more than the page: whether another page follows.
           SELECT * FROM mine
            WHERE $2::bigint IS NULL OR active_us < $2 OR (active_us = $2 AND id COLLATE "C" > $3::text)
            ORDER BY active_us DESC, id COLLATE "C"
            LIMIT $4 + 1
         ), shown AS (
           SELECT * FROM upcoming ORDER BY active_us DESC, id COLLATE "C" LIMIT $4
         )
         SELECT s.*, (SELECT count(*) FROM upcoming) > $4 AS more,
                (SELECT count(*) FROM messages u
                  WHERE u.conversation_id = s.id AND u.seq > s.last_read_seq AND u.kind = 'message'
                    AND u.recalled_at IS NULL AND u.sender_id <> $1::text) AS unread,
                (SELECT row_to_json(lm) FROM (
                   SELECT ${EVENT_COLUMNS} FROM messages
                    WHERE conversation_id = s.id AND kind = 'message' ORDER BY seq DESC LIMIT 1) lm) AS last
           FROM shown s
          ORDER BY s.active_us DESC, s.id COLLATE "C"`,
        [userId, page.after?.activeMicros ?? null, page.after?.id ?? null, page.limit],
      )
      const items = rows.map(
        (r): ConversationSummary => ({
          ...toConversation(r),
          role: r.role,
          lastReadSeq: Number(r.last_read_seq),
          unread: Number(r.unread),
          // row_to_json turns timestamps into strings: give them back their type.
          lastMessage:
            r.last === null
              ? null
              : (toStoredEvent({
                  ...r.last,
                  sent_at: new Date(r.last.sent_at),
                  edited_at: r.last.edited_at === null ? null : new Date(r.last.edited_at),
                  recalled_at: r.last.recalled_at === null ? null : new Date(r.last.recalled_at),
                }) as StoredMessage),
        }),
      )
      const last = rows.at(-1)
      return {
        items,
        next:
          last === undefined || !last.more
            ? undefined
            : { activeMicros: Number(last.active_us), id: last.id },
      }
    },

    async idsFor(userId) {
      const { rows } = await pool.query<{ conversation_id: string }>(
        "SELECT conversation_id FROM conversation_members WHERE user_id = $1 ORDER BY conversation_id",
        [userId],
      )
      return rows.map((r) => r.conversation_id)
    },

    async idsWithSizesFor(userId) {
      const { rows } = await pool.query<{ conversation_id: string; members: number }>(
        `SELECT m.conversation_id,
                (SELECT count(*)::int FROM conversation_members c WHERE c.conversation_id = m.conversation_id) AS members
           FROM conversation_members m WHERE m.user_id = $1 ORDER BY m.conversation_id`,
        [userId],
      )
      return rows.map((r) => ({ id: r.conversation_id, members: r.members }))
    },

    async members(conversationId, after, limit) {
      const { rows } = await pool.query<{
        user_id: string
        username: string
        role: Role
        joined_at: Date
        last_read_seq: string
      }>(
        `SELECT m.user_id, u.username, m.role, m.joined_at, m.last_read_seq
           FROM conversation_members m JOIN users u ON u.id = m.user_id
          WHERE m.conversation_id = $1 AND ($2::uuid IS NULL OR m.user_id > $2::uuid)
          ORDER BY m.user_id
          LIMIT $3`,
        [conversationId, after ?? null, limit],
      )
      return rows.map(
        (r): Member => ({
          userId: r.user_id,
          username: r.username,
          role: r.role,
          joinedAt: r.joined_at,
          readSeq: Number(r.last_read_seq),
        }),
      )
    },

    addMembers(conversationId, userIds, now, maxMembers, by) {
      return inTransaction(pool, async (client) => {
        // The conversation's row lock serialises concurrent changes of its members, so the limit
        // holds and their events are queued in commit order.
        await client.query("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", [conversationId])
        const { rows } = await client.query<{ user_id: string }>(
          `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at)
           SELECT $1, u, 'member', $2 FROM unnest($3::uuid[]) AS u
           ON CONFLICT (conversation_id, user_id) DO NOTHING
           RETURNING user_id`,
          [conversationId, now, [...new Set(userIds)]],
        )
        const members = await memberCount(client, conversationId)
        if (members > maxMembers) {
          // Undo the insert with the transaction: nothing is added when the group would be too big.
          throw new GroupFullSignal()
        }
        const added = rows.map((r) => r.user_id)
        if (added.length > 0)
          await queueMembership(client, { conv: conversationId, added, removed: [], by, members })
        return added
      }).catch((err: unknown) => {
        if (err instanceof GroupFullSignal) return "full" as const
        throw err
      })
    },

    removeMember(conversationId, userId, by) {
      return inTransaction(pool, async (client) => {
        // As in addMembers: events of one conversation are queued in commit order.
        await client.query("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", [conversationId])
        const { rows } = await client.query<{ role: Role }>(
          "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2 RETURNING role",
          [conversationId, userId],
        )
        if (rows[0] === undefined) return false
        if (rows[0].role === "owner") {
          // Admins first, then by seniority: the group always keeps an owner while it has members.
          await client.query(
            `UPDATE conversation_members SET role = 'owner'
              WHERE (conversation_id, user_id) = (
                SELECT conversation_id, user_id FROM conversation_members
                 WHERE conversation_id = $1
                 ORDER BY (role = 'admin') DESC, joined_at, user_id LIMIT 1)`,
            [conversationId],
          )
        }
        const members = await memberCount(client, conversationId)
        await queueMembership(client, { conv: conversationId, added: [], removed: [userId], by, members })
        return true
      })
    },

    async setRole(conversationId, userId, role) {
      const { rowCount } = await pool.query(
        `UPDATE conversation_members SET role = $3
          WHERE conversation_id = $1 AND user_id = $2 AND role <> 'owner'`,
        [conversationId, userId, role],
      )
      return (rowCount ?? 0) > 0
    },

    async rename(conversationId, title) {
      await pool.query("UPDATE conversations SET title = $2 WHERE id = $1", [conversationId, title])
    },

    async activeUsers(userIds) {
      const { rows } = await pool.query<{ id: string }>(
        "SELECT id FROM users WHERE id = ANY($1::uuid[]) AND disabled_at IS NULL",
        [[...new Set(userIds)]],
      )
      return new Set(rows.map((r) => r.id))
    },
  }
}

/** How many members the conversation has now, as the transaction sees it. */
async function memberCount(client: pg.ClientBase, conversationId: string): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM conversation_members WHERE conversation_id = $1",
    [conversationId],
  )
  return rows[0]?.n ?? 0
}

/** Queues the change's membership event for the edges, in the transaction that makes it. */
function queueMembership(
  client: pg.ClientBase,
  change: { conv: string; added: string[]; removed: string[]; by: string; members: number },
): Promise<void> {
  return queueControlEvent(client, change.conv, {
    kind: "membership",
    event: { type: "membership", id: randomUUID(), ...change },
  })
}

/** Aborts the adding transaction; never leaves this module. */
class GroupFullSignal extends Error {}

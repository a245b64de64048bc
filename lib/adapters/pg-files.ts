import type pg from "pg"
import type { FileRecord, FileStore } from "../ports"
import { inTransaction } from "./pg-transaction"

type FileRow = {
  id: string
  conversation_id: string
  owner_id: string
  name: string
  size: string
  content_type: string
  sha256: string | null
  status: FileRecord["status"]
  upload_id: string | null
  created_at: Date
  thumbnail_width: number | null
  thumbnail_height: number | null
  thumbnail_size: number | null
}

const COLUMNS =
  "id, conversation_id, owner_id::text AS owner_id, name, size, content_type, sha256, status, upload_id, created_at, thumbnail_width, thumbnail_height, thumbnail_size"

/** A live message whose body is this file (uses messages_by_file). */
const SHOWN_BY_A_MESSAGE = `SELECT 1 FROM messages m
   WHERE m.conversation_id = f.conversation_id AND m.kind = 'message'
     AND m.body ->> 'kind' = 'file' AND m.body ->> 'file_id' = f.id`

function toRecord(r: FileRow): FileRecord {
  return {
    id: r.id,
    conversationId: r.conversation_id,
    ownerId: r.owner_id,
    name: r.name,
    size: Number(r.size),
    contentType: r.content_type,
    sha256: r.sha256 ?? undefined,
    status: r.status,
    uploadId: r.upload_id ?? undefined,
    createdAt: r.created_at,
    thumbnail:
      r.thumbnail_width === null || r.thumbnail_height === null || r.thumbnail_size === null
        ? undefined
        : { width: r.thumbnail_width, height: r.thumbnail_height, size: r.thumbnail_size },
  }
}

export function pgFileStore(pool: pg.Pool): FileStore {
  return {
    async create(f) {
      await pool.query(
        `INSERT INTO files (id, conversation_id, owner_id, name, size, content_type, sha256, status, upload_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9)`,
        [
          f.id,
          f.conversationId,
          f.ownerId,
          f.name,
          f.size,
          f.contentType,
          f.sha256 ?? null,
          f.uploadId ?? null,
          f.createdAt,
        ],
      )
    },
    async get(id) {
      const { rows } = await pool.query<FileRow>(`SELECT ${COLUMNS} FROM files WHERE id = $1`, [id])
      return rows[0] === undefined ? undefined : toRecord(rows[0])
    },
    async markReady(id, now) {
      const { rowCount } = await pool.query(
        "UPDATE files SET status = 'ready', ready_at = $2, upload_id = NULL WHERE id = $1 AND status = 'pending'",
        [id, now],
      )
      return rowCount === 1
    },
    async removePending(id) {
      const { rowCount } = await pool.query("DELETE FROM files WHERE id = $1 AND status = 'pending'", [id])
      return rowCount === 1
    },
    async expiredPending(before, limit) {
      const { rows } = await pool.query<FileRow>(
        `SELECT ${COLUMNS} FROM files WHERE status = 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2`,
        [before, limit],
      )
      return rows.map(toRecord)
    },
    removeUnreferenced(before, limit) {
      return inTransaction(pool, async (client) => {
        // Lock the candidates first: a sequencer transaction naming one of them (FOR SHARE) has
        // either committed before, and is seen by the delete's fresh snapshot below, or waits
        // for this one and then finds the file gone (FILE_NOT_READY).
        const candidates = await client.query<{ id: string }>(
          `SELECT f.id FROM files f
            WHERE f.status = 'ready' AND f.ready_at < $1 AND NOT EXISTS (${SHOWN_BY_A_MESSAGE})
            ORDER BY f.ready_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
          [before, limit],
        )
        if (candidates.rows.length === 0) return []
        const { rows } = await client.query<FileRow>(
          `DELETE FROM files f WHERE f.id = ANY($1::text[]) AND NOT EXISTS (${SHOWN_BY_A_MESSAGE})
           RETURNING ${COLUMNS}`,
          [candidates.rows.map((r) => r.id)],
        )
        return rows.map(toRecord)
      })
    },
    async setThumbnail(id, t) {
      await pool.query(
        "UPDATE files SET thumbnail_width = $2, thumbnail_height = $3, thumbnail_size = $4 WHERE id = $1",
        [id, t.width, t.height, t.size],
      )
    },
  }
}

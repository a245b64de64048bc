import type pg from "pg"
import type { RefreshTokenRecord, SessionStore } from "../ports"
import { inTransaction } from "./pg-transaction"

type Row = {
  family_id: string
  user_id: string
  expires_at: Date
  rotated_at: Date | null
  family_revoked_at: Date | null
}

/** Login sessions as refresh-token families (infra/migrations/sql/0002_auth.sql). */
export function pgSessionStore(pool: pg.Pool): SessionStore {
  return {
    start: ({ familyId, userId, token, now }) =>
      inTransaction(pool, async (client) => {
        await client.query("INSERT INTO token_families (id, user_id, created_at) VALUES ($1, $2, $3)", [
          familyId,
          userId,
          now,
        ])
        await client.query(
          "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
          [token.hash, familyId, now, token.expiresAt],
        )
        // Housekeeping on each login keeps the tables bounded without a scheduler: a few expired
        // tokens (refused anyway), then those of their families that have no token left.
        const gone = await client.query<{ family_id: string }>(
          `DELETE FROM refresh_tokens WHERE token_hash IN (
             SELECT token_hash FROM refresh_tokens WHERE expires_at < $1 LIMIT 50 FOR UPDATE SKIP LOCKED)
           RETURNING family_id`,
          [now],
        )
        if (gone.rows.length > 0) {
          await client.query(
            `DELETE FROM token_families f WHERE f.id = ANY($1::uuid[])
                AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id)`,
            [[...new Set(gone.rows.map((r) => r.family_id))]],
          )
        }
      }),
    async find(hash): Promise<RefreshTokenRecord | undefined> {
      const { rows } = await pool.query<Row>(
        `SELECT t.family_id, f.user_id, t.expires_at, t.rotated_at, f.revoked_at AS family_revoked_at
           FROM refresh_tokens t JOIN token_families f ON f.id = t.family_id
          WHERE t.token_hash = $1`,
        [hash],
      )
      const row = rows[0]
      if (row === undefined) return undefined
      return {
        familyId: row.family_id,
        userId: row.user_id,
        expiresAt: row.expires_at,
        rotatedAt: row.rotated_at ?? undefined,
        familyRevokedAt: row.family_revoked_at ?? undefined,
      }
    },
    rotate: (hash, next, now) =>
      inTransaction(pool, async (client) => {
        // The row lock taken by this UPDATE makes the exchange compare-and-set: of two parallel
        // uses of one token, exactly one sees rotated_at still NULL.
        const { rows } = await client.query<{ family_id: string }>(
          `UPDATE refresh_tokens t SET rotated_at = $2
             FROM token_families f
            WHERE t.token_hash = $1 AND t.rotated_at IS NULL AND f.id = t.family_id AND f.revoked_at IS NULL
            RETURNING t.family_id`,
          [hash, now],
        )
        const familyId = rows[0]?.family_id
        if (familyId === undefined) return false
        await client.query(
          "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
          [next.hash, familyId, now, next.expiresAt],
        )
        return true
      }),
    // One statement each, so the revocation and its notice for the edges (the control outbox,
    // keyed by the user) are committed together.
    async revokeFamily(familyId, reason, now, notice) {
      await pool.query(
        `WITH revoked AS (
           UPDATE token_families SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL)
         INSERT INTO control_outbox (order_key, kind, event) VALUES ($4, 'revoked', $5)`,
        [familyId, now, reason, notice.user, JSON.stringify(notice)],
      )
    },
    async revokeUser(userId, reason, now, notice) {
      const { rows } = await pool.query<{ n: number }>(
        `WITH revoked AS (
           UPDATE token_families SET revoked_at = $2, revoked_reason = $3
            WHERE user_id = $1 AND revoked_at IS NULL RETURNING 1),
         queued AS (INSERT INTO control_outbox (order_key, kind, event) VALUES ($4, 'revoked', $5))
         SELECT count(*)::int AS n FROM revoked`,
        [userId, now, reason, notice.user, JSON.stringify(notice)],
      )
      return rows[0]?.n ?? 0
    },
    async isLive(familyId, userId) {
      const { rowCount } = await pool.query(
        "SELECT 1 FROM token_families WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        [familyId, userId],
      )
      return rowCount === 1
    },
  }
}

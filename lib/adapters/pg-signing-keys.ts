import type pg from "pg"
import type { SealedSigningKey, SigningKeyStore } from "../ports"
import { advisoryXactLock, inTransaction } from "./pg-transaction"

type Row = {
  kid: string
  public_jwk: Record<string, string>
  private_key_sealed: Buffer
  kek_id: string
  created_at: Date
}

function toKey(row: Row): SealedSigningKey {
  return {
    kid: row.kid,
    publicJwk: row.public_jwk,
    privateKeySealed: row.private_key_sealed,
    kekId: row.kek_id,
    createdAt: row.created_at,
  }
}

const INSERT = `INSERT INTO signing_keys (kid, public_jwk, private_key_sealed, kek_id, created_at)
                VALUES ($1, $2, $3, $4, $5)`

function insertParams(key: SealedSigningKey): unknown[] {
  return [key.kid, JSON.stringify(key.publicJwk), key.privateKeySealed, key.kekId, key.createdAt]
}

export function pgSigningKeyStore(pool: pg.Pool): SigningKeyStore {
  return {
    async active() {
      const { rows } = await pool.query<Row>(
        `SELECT kid, public_jwk, private_key_sealed, kek_id, created_at
           FROM signing_keys WHERE retired_at IS NULL`,
      )
      return rows[0] === undefined ? undefined : toKey(rows[0])
    },
    async insertIfNoneActive(key) {
      // signing_keys_one_active turns the loser of a race between first starts into a no-op.
      await pool.query(`${INSERT} ON CONFLICT DO NOTHING`, insertParams(key))
    },
    rotate: (key, now, publishedUntil) =>
      inTransaction(pool, async (client) => {
        // Serialised, so that a second rotation retires the key the first one made.
        await advisoryXactLock(client, "cove.auth.rotate-key")
        await client.query(
          "UPDATE signing_keys SET retired_at = $1, published_until = $2 WHERE retired_at IS NULL",
          [now, publishedUntil],
        )
        await client.query(INSERT, insertParams(key))
      }),
    async published(now) {
      const { rows } = await pool.query<{ public_jwk: Record<string, string> }>(
        `SELECT public_jwk FROM signing_keys
          WHERE retired_at IS NULL OR published_until > $1
          ORDER BY retired_at DESC NULLS FIRST, created_at DESC`,
        [now],
      )
      return rows.map((r) => r.public_jwk)
    },
  }
}

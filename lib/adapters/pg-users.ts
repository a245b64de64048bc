import type pg from "pg"
import type { CreateUserResult, DirectoryEntry, NewUser, User, UserStore } from "../ports"
import { advisoryXactLock, inTransaction } from "./pg-transaction"

type Row = {
  id: string
  username: string
  password_hash: string
  is_admin: boolean
  disabled_at: Date | null
  created_at: Date
}

const COLUMNS = "id, username, password_hash, is_admin, disabled_at, created_at"

function toUser(row: Row): User {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    isAdmin: row.is_admin,
    disabledAt: row.disabled_at ?? undefined,
    createdAt: row.created_at,
  }
}

export function pgUserStore(pool: pg.Pool): UserStore {
  const one = async (sql: string, params: unknown[]): Promise<User | undefined> => {
    const { rows } = await pool.query<Row>(sql, params)
    return rows[0] === undefined ? undefined : toUser(rows[0])
  }
  return {
    create: (user: NewUser, options) =>
      inTransaction(pool, async (client): Promise<CreateUserResult> => {
        // Without the lock, two first registrations at once could both see an empty table.
        await advisoryXactLock(client, "cove.auth.first-user")
        if (options.onlyIfFirst) {
          const { rowCount } = await client.query("SELECT 1 FROM users LIMIT 1")
          if (rowCount !== 0) return { kind: "closed" }
        }
        const { rows } = await client.query<Row>(
          `INSERT INTO users (id, username, username_key, password_hash, is_admin, created_at)
           SELECT $1, $2, $3, $4, NOT EXISTS (SELECT 1 FROM users), $5
           ON CONFLICT (username_key) DO NOTHING
           RETURNING ${COLUMNS}`,
          [user.id, user.username, user.usernameKey, user.passwordHash, user.createdAt],
        )
        return rows[0] === undefined ? { kind: "taken" } : { kind: "created", user: toUser(rows[0]) }
      }),
    async anyExists() {
      const { rowCount } = await pool.query("SELECT 1 FROM users LIMIT 1")
      return rowCount !== 0
    },
    byKey: (usernameKey) => one(`SELECT ${COLUMNS} FROM users WHERE username_key = $1`, [usernameKey]),
    byId: (id) => one(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]),
    async setPasswordHash(id, passwordHash) {
      await pool.query("UPDATE users SET password_hash = $2 WHERE id = $1", [id, passwordHash])
    },
    setDisabled: (id, disabledAt) =>
      one(
        // Keeps the first disabled_at when disabling twice, so the operation is idempotent.
        `UPDATE users SET disabled_at = CASE WHEN $2::timestamptz IS NULL THEN NULL
                                            ELSE coalesce(disabled_at, $2::timestamptz) END
          WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, disabledAt ?? null],
      ),
    async findByPrefix(keyPrefix, limit) {
      // LIKE's own wildcards in the name are matched literally.
      const pattern = `${keyPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
      const { rows } = await pool.query<DirectoryEntry>(
        `SELECT id, username FROM users
          WHERE username_key LIKE $1 AND disabled_at IS NULL
          ORDER BY username_key LIMIT $2`,
        [pattern, limit],
      )
      return rows
    },
  }
}

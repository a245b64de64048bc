import type pg from "pg"
import type { LoginThrottle, ThrottleKey } from "../ports"
import { inTransaction } from "./pg-transaction"

type Row = {
  scope: ThrottleKey["scope"]
  key: string
  attempts: number
  last_attempt_at: Date
  blocked_until: Date | null
}

/** Login attempt counters in PostgreSQL, so that every instance of the function sees the same. */
export function pgLoginThrottle(pool: pg.Pool): LoginThrottle {
  return {
    attempt: (keys, now, rules) =>
      inTransaction(pool, async (client) => {
        const scopes = keys.map((k) => k.scope)
        const names = keys.map((k) => k.key)
        await client.query(
          `INSERT INTO login_throttle (scope, key, attempts, last_attempt_at)
           SELECT s, k, 0, $3 FROM unnest($1::text[], $2::text[]) AS x(s, k)
           ON CONFLICT (scope, key) DO NOTHING`,
          [scopes, names, now],
        )
        // Locked in key order, so that two logins sharing an address cannot deadlock.
        const { rows } = await client.query<Row>(
          `SELECT scope, key, attempts, last_attempt_at, blocked_until FROM login_throttle
            WHERE (scope, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
            ORDER BY scope, key FOR UPDATE`,
          [scopes, names],
        )
        const blocked = rows
          .map((r) => r.blocked_until)
          .filter((d): d is Date => d !== null && d > now)
          .sort((a, b) => b.getTime() - a.getTime())[0]
        if (blocked !== undefined) return { allowed: false, until: blocked }
        for (const row of rows) {
          const idle = now.getTime() - row.last_attempt_at.getTime() > rules.windowMs
          const attempts = idle ? 1 : row.attempts + 1
          const delayMs = rules.blockFor(row.scope, attempts)
          await client.query(
            `UPDATE login_throttle SET attempts = $3, last_attempt_at = $4, blocked_until = $5
              WHERE scope = $1 AND key = $2`,
            [row.scope, row.key, attempts, now, delayMs > 0 ? new Date(now.getTime() + delayMs) : null],
          )
        }
        // Keeps the table small: forget a few counters that are idle and unblocked.
        await client.query(
          `DELETE FROM login_throttle WHERE ctid IN (
             SELECT ctid FROM login_throttle
              WHERE last_attempt_at < $1 AND (blocked_until IS NULL OR blocked_until < $2)
              LIMIT 20 FOR UPDATE SKIP LOCKED)`,
          [new Date(now.getTime() - rules.windowMs), now],
        )
        return { allowed: true }
      }),
    async succeeded(account, address) {
      await pool.query("DELETE FROM login_throttle WHERE scope = $1 AND key = $2", [
        account.scope,
        account.key,
      ])
      if (address === undefined) return
      await pool.query(
        "UPDATE login_throttle SET attempts = greatest(attempts - 1, 0) WHERE scope = $1 AND key = $2",
        [address.scope, address.key],
      )
    },
  }
}

import type { JSONWebKeySet } from "jose"
import type pg from "pg"
import { type TokenAudience, verifyAccessToken } from "../auth/verify-access-token"
import { AppError } from "../errors"
import type { Authenticator } from "../ports"

/**
 * Verifies access tokens for the HTTP functions against the public keys the auth function keeps
 * in PostgreSQL, then checks that the login session and the user are still live: a disabled
 * user or an ended session loses access at once, not when the token expires.
 */
export function pgAuthenticator(
  pool: pg.Pool,
  audience: TokenAudience,
  now: () => Date = () => new Date(),
): Authenticator {
  let cached: { keys: JSONWebKeySet; at: number } | undefined
  const publishedKeys = async (refresh: boolean): Promise<JSONWebKeySet> => {
    // Keys change only on rotation: a short cache saves a query per request; an unknown kid refreshes it.
    if (!refresh && cached !== undefined && Date.now() - cached.at < 30_000) return cached.keys
    const { rows } = await pool.query<{ public_jwk: Record<string, string> }>(
      "SELECT public_jwk FROM signing_keys WHERE retired_at IS NULL OR published_until > $1",
      [now()],
    )
    cached = { keys: { keys: rows.map((r) => r.public_jwk) }, at: Date.now() }
    return cached.keys
  }
  return {
    async authenticate(token) {
      let claims: Awaited<ReturnType<typeof verifyAccessToken>>
      try {
        claims = await verifyAccessToken(token, await publishedKeys(false), now(), audience)
      } catch (err) {
        if (!(err instanceof AppError) || err.code !== "AUTH_TOKEN_INVALID") throw err
        // Maybe signed by a key rotated in since we cached: look once more.
        claims = await verifyAccessToken(token, await publishedKeys(true), now(), audience)
      }
      const { rows } = await pool.query<{ disabled: boolean; revoked: boolean }>(
        `SELECT u.disabled_at IS NOT NULL AS disabled, f.revoked_at IS NOT NULL AS revoked
           FROM token_families f JOIN users u ON u.id = f.user_id
          WHERE f.id = $1 AND f.user_id = $2`,
        [claims.sid, claims.sub],
      )
      const session = rows[0]
      if (session === undefined || session.revoked) throw new AppError("AUTH_SESSION_REVOKED")
      if (session.disabled) throw new AppError("AUTH_USER_DISABLED")
      return { userId: claims.sub, sessionId: claims.sid }
    },
  }
}

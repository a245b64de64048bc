/** What every auth route shares: signing keys, opening sessions, and checking a bearer token. */
import { createHash, randomBytes } from "node:crypto"
import { bearerToken, verifyAccessToken } from "../../lib/auth/verify-access-token"
import { AppError } from "../../lib/errors"
import type { NewRefreshToken, User } from "../../lib/ports"
import { type Signer, signAccessToken } from "./access-tokens"
import type { AuthPorts } from "./ports"
import { generateSigningKey, openSigningKey } from "./signing-keys"

/** The answer of register, login and refresh (OAuth 2 token response shape, plus the user). */
export type TokenResponse = {
  readonly access_token: string
  readonly refresh_token: string
  readonly token_type: "Bearer"
  readonly expires_in: number
  readonly refresh_expires_in: number
  readonly user: { readonly id: string; readonly username: string }
}

/** Refresh tokens are 256 random bits; only their SHA-256 is stored. */
export function hashRefreshToken(token: string): Buffer {
  return createHash("sha256").update(token).digest()
}

export function newRefreshToken(p: AuthPorts, now: Date): { token: string; stored: NewRefreshToken } {
  const token = randomBytes(32).toString("base64url")
  return {
    token,
    stored: {
      hash: hashRefreshToken(token),
      expiresAt: new Date(now.getTime() + p.settings.refreshTtlSeconds * 1000),
    },
  }
}

/** Makes the first signing key if there is none; safe when several instances start at once. */
export async function ensureSigningKey(p: AuthPorts): Promise<void> {
  if ((await p.keys.active()) !== undefined) return
  await p.keys.insertIfNoneActive(await generateSigningKey(p.settings.kek, p.now()))
}

async function currentSigner(p: AuthPorts): Promise<Signer> {
  let sealed = await p.keys.active()
  if (sealed === undefined) {
    await ensureSigningKey(p)
    sealed = await p.keys.active()
    if (sealed === undefined) throw new Error("no active signing key after creating one")
  }
  return { kid: sealed.kid, privateKey: openSigningKey(sealed, p.settings.kek) }
}

/** Signs an access token for the session and packs the token response. */
export async function tokenResponse(
  user: User,
  sessionId: string,
  refreshToken: string,
  now: Date,
  p: AuthPorts,
): Promise<TokenResponse> {
  const accessToken = await signAccessToken(
    await currentSigner(p),
    { userId: user.id, username: user.username, sessionId, tokenId: p.newId() },
    now,
    p.settings,
  )
  return {
    access_token: accessToken,
    refresh_token: refreshToken,
    token_type: "Bearer",
    expires_in: p.settings.accessTtlSeconds,
    refresh_expires_in: p.settings.refreshTtlSeconds,
    user: { id: user.id, username: user.username },
  }
}

/** A new login session (refresh-token family) for the user, with its first tokens. */
export async function openSession(user: User, p: AuthPorts): Promise<TokenResponse> {
  const now = p.now()
  const sessionId = p.newId()
  const refresh = newRefreshToken(p, now)
  await p.sessions.start({ familyId: sessionId, userId: user.id, token: refresh.stored, now })
  return tokenResponse(user, sessionId, refresh.token, now, p)
}

/**
 * The user behind an `Authorization: Bearer` header. Also checks what a token cannot say: that
 * its session was not ended and its user not disabled since it was issued.
 */
export async function authenticate(authorization: string | undefined, p: AuthPorts): Promise<User> {
  const token = bearerToken(authorization)
  const now = p.now()
  const claims = await verifyAccessToken(token, { keys: [...(await p.keys.published(now))] }, now, p.settings)
  const [user, live] = await Promise.all([
    p.users.byId(claims.sub),
    p.sessions.isLive(claims.sid, claims.sub),
  ])
  if (user === undefined) throw new AppError("AUTH_SESSION_REVOKED")
  // Disabling also revokes every session: say the more useful of the two.
  if (user.disabledAt !== undefined) throw new AppError("AUTH_USER_DISABLED")
  if (!live) throw new AppError("AUTH_SESSION_REVOKED")
  return user
}

export async function authenticateAdmin(authorization: string | undefined, p: AuthPorts): Promise<User> {
  const user = await authenticate(authorization, p)
  if (!user.isAdmin) throw new AppError("FORBIDDEN", "Only an administrator may do this.")
  return user
}

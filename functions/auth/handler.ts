/**
 * The auth function's account and session flows, pure over AuthPorts (docs/auth.md).
 * Order matters for security: the throttle counts a login before the password is checked, and
 * an unknown name costs the same hashing work as a wrong password.
 */
import { AppError } from "../../lib/errors"
import type { DirectoryEntry, User } from "../../lib/ports"
import type { UserRevokedEvent } from "../../lib/protocol/tokens"
import type { DirectoryQuery, LoginInput, LogoutInput, RefreshInput, RegisterInput } from "./input"
import type { AuthPorts } from "./ports"
import {
  authenticate,
  authenticateAdmin,
  hashRefreshToken,
  newRefreshToken,
  openSession,
  type TokenResponse,
  tokenResponse,
} from "./sessions"
import { throttleRules } from "./throttle"

/** Open registration, or (AUTH_REGISTRATION=admin) the first account, then admins only. */
export async function register(
  input: RegisterInput,
  authorization: string | undefined,
  p: AuthPorts,
): Promise<TokenResponse> {
  let onlyIfFirst = false
  if (p.settings.registration === "admin") {
    if (authorization !== undefined) await authenticateAdmin(authorization, p)
    else if (await p.users.anyExists()) throw new AppError("AUTH_REGISTRATION_CLOSED")
    else onlyIfFirst = true
  }
  const passwordHash = await p.passwords.hash(input.password)
  const created = await p.users.create(
    {
      id: p.newId(),
      username: input.username.display,
      usernameKey: input.username.key,
      passwordHash,
      createdAt: p.now(),
    },
    { onlyIfFirst },
  )
  if (created.kind === "closed") throw new AppError("AUTH_REGISTRATION_CLOSED")
  if (created.kind === "taken") throw new AppError("AUTH_USERNAME_TAKEN")
  return openSession(created.user, p)
}

export async function login(
  input: LoginInput,
  address: string | undefined,
  p: AuthPorts,
): Promise<TokenResponse> {
  const now = p.now()
  const account = { scope: "account", key: input.username } as const
  const client = address === undefined ? undefined : ({ scope: "address", key: address } as const)
  const decision = await p.throttle.attempt(
    client === undefined ? [account] : [account, client],
    now,
    throttleRules(p.settings.throttle),
  )
  if (!decision.allowed) {
    const retryAfter = Math.max(1, Math.ceil((decision.until.getTime() - now.getTime()) / 1000))
    throw new AppError("RATE_LIMITED", `Too many login attempts; retry in ${retryAfter} s.`, {
      details: { retry_after: retryAfter },
    })
  }
  const user = await p.users.byKey(input.username)
  const ok = await p.passwords.verify(input.password, user?.passwordHash)
  if (!ok || user === undefined) throw new AppError("AUTH_INVALID_CREDENTIALS")
  await p.throttle.succeeded(account, client)
  // Only someone who knows the password learns that the account is disabled.
  if (user.disabledAt !== undefined) throw new AppError("AUTH_USER_DISABLED")
  if (p.passwords.outdated(user.passwordHash)) {
    await p.users.setPasswordHash(user.id, await p.passwords.hash(input.password))
  }
  return openSession(user, p)
}

/**
 * Exchanges a refresh token for new tokens; the old one stops working. A token used twice means
 * it was copied: its whole session is revoked, for the thief and the owner alike.
 */
export async function refresh(input: RefreshInput, p: AuthPorts): Promise<TokenResponse> {
  const now = p.now()
  const hash = hashRefreshToken(input.refresh_token)
  const record = await p.sessions.find(hash)
  if (record === undefined || record.familyRevokedAt !== undefined) {
    throw new AppError("AUTH_TOKEN_INVALID", "This refresh token is not valid; log in again.")
  }
  const reused = () => endSessions(record.userId, "token_reuse", now, p, record.familyId)
  if (record.rotatedAt !== undefined) {
    await reused()
    throw new AppError("AUTH_TOKEN_INVALID", "This refresh token was already used; log in again.")
  }
  if (record.expiresAt <= now) throw new AppError("AUTH_TOKEN_EXPIRED", "The refresh token has expired.")
  const user = await p.users.byId(record.userId)
  if (user === undefined || user.disabledAt !== undefined) throw new AppError("AUTH_USER_DISABLED")
  const next = newRefreshToken(p, now)
  if (!(await p.sessions.rotate(hash, next.stored, now))) {
    // Another request exchanged it between find and rotate: the same token was used twice.
    await reused()
    throw new AppError("AUTH_TOKEN_INVALID", "This refresh token was already used; log in again.")
  }
  return tokenResponse(user, record.familyId, next.token, now, p)
}

/**
 * Ends the refresh token's session, or with `everywhere` every session of its user. Idempotent:
 * an unknown or already revoked token is fine. `everywhere` needs a token that is still live.
 */
export async function logout(input: LogoutInput, p: AuthPorts): Promise<void> {
  const now = p.now()
  const record = await p.sessions.find(hashRefreshToken(input.refresh_token))
  if (record === undefined) return
  if (!input.everywhere) {
    if (record.familyRevokedAt === undefined)
      await endSessions(record.userId, "logout", now, p, record.familyId)
    return
  }
  if (record.familyRevokedAt !== undefined || record.rotatedAt !== undefined || record.expiresAt <= now) {
    throw new AppError("AUTH_TOKEN_INVALID", "Logging out everywhere needs a current refresh token.")
  }
  await endSessions(record.userId, "logout_everywhere", now, p)
}

/**
 * Revokes one session (`sessionId`) or all of the user's, then tells the edges to close sockets.
 * The notice is queued with the revocation and published before this returns, or later by the
 * control outbox's relay if NATS cannot take it now: the revocation itself holds either way.
 */
export async function endSessions(
  userId: string,
  reason: UserRevokedEvent["reason"],
  now: Date,
  p: AuthPorts,
  sessionId?: string,
): Promise<void> {
  const notice: UserRevokedEvent = {
    type: "revoked",
    user: userId,
    reason,
    ...(sessionId === undefined ? {} : { sid: sessionId }),
  }
  if (sessionId === undefined) await p.sessions.revokeUser(userId, reason, now, notice)
  else await p.sessions.revokeFamily(sessionId, reason, now, notice)
  await p.control.flush(userId)
}

export type Me = { readonly user: { id: string; username: string; admin: boolean; created_at: string } }

export async function me(authorization: string | undefined, p: AuthPorts): Promise<Me> {
  return { user: describe(await authenticate(authorization, p)) }
}

export function describe(user: User): Me["user"] {
  return {
    id: user.id,
    username: user.username,
    admin: user.isAdmin,
    created_at: user.createdAt.toISOString(),
  }
}

export async function jwks(p: AuthPorts): Promise<{ keys: ReadonlyArray<Readonly<Record<string, string>>> }> {
  return { keys: await p.keys.published(p.now()) }
}

/**
 * The user directory: any signed-in user may find others by the start of their name, to start a
 * conversation. It answers ids and display names only, never whether an account is an admin.
 */
export async function directory(
  query: DirectoryQuery,
  authorization: string | undefined,
  p: AuthPorts,
): Promise<{ items: DirectoryEntry[] }> {
  await authenticate(authorization, p)
  return { items: await p.users.findByPrefix(query.q, query.limit) }
}

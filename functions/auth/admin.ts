/** Administrator operations: disabling accounts and rotating the token signing key. */
import { AppError } from "../../lib/errors"
import { CLOCK_TOLERANCE_SECONDS } from "../../lib/protocol/tokens"
import { describe, endSessions, type Me } from "./handler"
import type { AuthPorts } from "./ports"
import { authenticateAdmin } from "./sessions"
import { generateSigningKey } from "./signing-keys"

/**
 * Disables the account, revokes all its sessions and tells the edges to close its sockets.
 * Safe to repeat: the revocation event is sent again, which is harmless.
 */
export async function disableUser(
  authorization: string | undefined,
  userId: string,
  p: AuthPorts,
): Promise<Me> {
  const admin = await authenticateAdmin(authorization, p)
  // The last administrator could otherwise lock everyone out of administration.
  if (admin.id === userId) throw new AppError("FORBIDDEN", "You cannot disable your own account.")
  const now = p.now()
  const user = await p.users.setDisabled(userId, now)
  if (user === undefined) throw new AppError("NOT_FOUND", "No such user.")
  await endSessions(user.id, "disabled", now, p)
  return { user: describe(user) }
}

export async function enableUser(
  authorization: string | undefined,
  userId: string,
  p: AuthPorts,
): Promise<Me> {
  await authenticateAdmin(authorization, p)
  const user = await p.users.setDisabled(userId, undefined)
  if (user === undefined) throw new AppError("NOT_FOUND", "No such user.")
  return { user: describe(user) }
}

/**
 * Makes a new signing key active. The old one stays in the JWKS until every token it signed has
 * expired (access TTL plus verifiers' clock tolerance), so live tokens keep working.
 */
export async function rotateSigningKey(
  p: Pick<AuthPorts, "keys" | "now"> & { settings: Pick<AuthPorts["settings"], "kek" | "accessTtlSeconds"> },
): Promise<{ kid: string; previous_published_until: string }> {
  const now = p.now()
  const key = await generateSigningKey(p.settings.kek, now)
  const publishedUntil = new Date(
    now.getTime() + (p.settings.accessTtlSeconds + CLOCK_TOLERANCE_SECONDS + 60) * 1000,
  )
  await p.keys.rotate(key, now, publishedUntil)
  return { kid: key.kid, previous_published_until: publishedUntil.toISOString() }
}

export async function rotateSigningKeyAsAdmin(
  authorization: string | undefined,
  p: AuthPorts,
): Promise<{ kid: string; previous_published_until: string }> {
  await authenticateAdmin(authorization, p)
  return rotateSigningKey(p)
}

/**
 * Revocations this edge has heard of. Closing a revoked user's sockets is not enough: their
 * access token stays valid until it expires, so the edge also refuses tokens issued before the
 * revocation (or of the revoked session) for as long as such a token can live. Kept in memory;
 * an edge that starts reads that long back from the COVE_CONTROL stream (control-events.ts).
 */
import type { Identity } from "./auth"
import type { CloseReason } from "./session"

export type RevocationReason = Extract<CloseReason, "AUTH_SESSION_REVOKED" | "AUTH_USER_DISABLED">

type Entry = { readonly at: number; readonly reason: RevocationReason }

export class Revocations {
  /** Insertion order is time order, so pruning stops at the first fresh entry. */
  private readonly entries = new Map<string, Entry>()

  constructor(private readonly memoryMs: number) {}

  /** `sid` limits the revocation to one login session of the user. */
  record(userId: string, sid: string | undefined, reason: RevocationReason, now: number): void {
    const key = sid === undefined ? userId : `${userId}/${sid}`
    this.entries.delete(key)
    this.entries.set(key, { at: now, reason })
    for (const [k, e] of this.entries) {
      if (now - e.at < this.memoryMs) break
      this.entries.delete(k)
    }
  }

  /** The reason to refuse this token, if a revocation covers it. */
  refuses(id: Identity, now: number): RevocationReason | undefined {
    if (id.sid !== undefined) {
      const session = this.entries.get(`${id.userId}/${id.sid}`)
      if (session !== undefined && now - session.at < this.memoryMs) return session.reason
    }
    const user = this.entries.get(id.userId)
    if (user === undefined || now - user.at >= this.memoryMs) return undefined
    // `iat` has whole seconds. After "logout everywhere", a token from the revocation's own second
    // counts as newer (a re-login); a disabled user cannot log in again, so that second counts too.
    const second = Math.floor(user.at / 1000)
    const older = user.reason === "AUTH_USER_DISABLED" ? id.issuedAt <= second : id.issuedAt < second
    return older ? user.reason : undefined
  }
}

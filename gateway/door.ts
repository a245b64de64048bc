/**
 * Who may open a socket, decided before the upgrade so that a refused client never holds one:
 * Origin (cross-site WebSocket hijacking), then the access token, then revocations.
 */
import { AppError, type ErrorCode } from "../lib/errors"
import type { Identity, VerifyToken } from "./auth"
import type { Revocations } from "./revocations"
import type { UpgradeRequest } from "./socket"

export type Admission =
  /** `token` is kept (in memory only) to ask the functions for the user's conversations. */
  | { readonly ok: true; readonly identity: Identity; readonly token: string }
  | { readonly ok: false; readonly error: AppError }

export type DoorOptions = {
  /** Exact origins (`URL.origin` form). A request without Origin is a native client: allowed. */
  readonly allowedOrigins: ReadonlySet<string>
  readonly verify: VerifyToken
  readonly revocations: Revocations
  readonly now: () => number
}

const BEARER = /^bearer +(\S+)$/i

function tokenOf(req: UpgradeRequest): string | undefined {
  if (req.authorization !== "") return BEARER.exec(req.authorization.trim())?.[1]
  return req.accessTokenParam === "" ? undefined : req.accessTokenParam
}

function refuse(code: ErrorCode, detail?: string): Admission {
  return { ok: false, error: new AppError(code, detail) }
}

export function createDoor(o: DoorOptions): (req: UpgradeRequest) => Promise<Admission> {
  return async (req) => {
    if (req.origin !== "" && !o.allowedOrigins.has(req.origin.toLowerCase()))
      return refuse("ORIGIN_NOT_ALLOWED")
    const token = tokenOf(req)
    if (token === undefined) {
      return refuse("AUTH_REQUIRED", "Send the access token as `Authorization: Bearer` or `?access_token=`.")
    }
    let identity: Identity
    try {
      identity = await o.verify(token)
    } catch (err) {
      // verify() throws catalogue errors only (invalid, expired, unavailable); anything else is a bug.
      if (err instanceof AppError) return { ok: false, error: err }
      throw err
    }
    const revoked = o.revocations.refuses(identity, o.now())
    if (revoked !== undefined) return refuse(revoked)
    return { ok: true, identity, token }
  }
}

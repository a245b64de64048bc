/**
 * Access-token verification at the door: the auth function's JWK Set, cached by jose (refetched
 * when a token names an unknown key, at most once per cooldown), EdDSA only, and the claims of
 * lib/protocol/tokens.ts. Every failure becomes a catalogue error the upgrade answers with.
 */
import { createRemoteJWKSet, customFetch, errors, type FetchImplementation, jwtVerify } from "jose"
import { AppError } from "../lib/errors"
import { isSafeId } from "../lib/protocol/ids"
import { ACCESS_TOKEN_TYP, CLOCK_TOLERANCE_SECONDS, TOKEN_ALG } from "../lib/protocol/tokens"

/** Who a verified token speaks for. */
export type Identity = {
  readonly userId: string
  /** The login session (refresh-token family), when the token names one. */
  readonly sid: string | undefined
  /** `iat`, in seconds. */
  readonly issuedAt: number
}

export type VerifyToken = (token: string) => Promise<Identity>

export type VerifierOptions = {
  readonly jwksUrl: string
  readonly issuer: string
  readonly audience: string
  readonly cooldownMs: number
  readonly maxAgeMs: number
  readonly timeoutMs: number
}

/** jose errors that say "this token is bad" rather than "the key set could not be had". */
const INVALID_TOKEN_ERRORS = [
  errors.JWSInvalid,
  errors.JWTInvalid,
  errors.JWSSignatureVerificationFailed,
  errors.JWTClaimValidationFailed,
  errors.JOSEAlgNotAllowed,
  errors.JOSENotSupported,
  errors.JWKSNoMatchingKey,
  errors.JWKSMultipleMatchingKeys,
]

/**
 * jose refetches on every upgrade while fetches fail (its cooldown starts only at a success), so
 * an auth outage plus a reconnect storm would become a request storm on the auth function.
 * After a failure, upgrades that need the key set fail fast (503) for this long.
 */
const FAILED_FETCH_BACKOFF_MS = 1_000

function fetchWithBackoff(): FetchImplementation {
  let failedAt = Number.NEGATIVE_INFINITY
  return async (url, options) => {
    if (Date.now() - failedAt < FAILED_FETCH_BACKOFF_MS) {
      throw new Error(`the last JWK Set fetch failed less than ${FAILED_FETCH_BACKOFF_MS} ms ago`)
    }
    try {
      const response = await fetch(url, options)
      if (response.status !== 200) failedAt = Date.now()
      return response
    } catch (err) {
      failedAt = Date.now()
      throw err
    }
  }
}

export function createVerifier(o: VerifierOptions): VerifyToken {
  const keys = createRemoteJWKSet(new URL(o.jwksUrl), {
    cooldownDuration: o.cooldownMs,
    cacheMaxAge: o.maxAgeMs,
    timeoutDuration: o.timeoutMs,
    [customFetch]: fetchWithBackoff(),
  })
  return async (token) => {
    try {
      const { payload } = await jwtVerify(token, keys, {
        algorithms: [TOKEN_ALG],
        typ: ACCESS_TOKEN_TYP,
        issuer: o.issuer,
        audience: o.audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ["sub", "exp", "iat"],
      })
      const sub = payload.sub
      // The user id goes into NATS subjects and logs: only the safe alphabet (invariant 7).
      if (sub === undefined || !isSafeId(sub))
        throw new AppError("AUTH_TOKEN_INVALID", "The token's subject is not a user id.")
      const sid = payload.sid
      if (sid !== undefined && (typeof sid !== "string" || !isSafeId(sid))) {
        throw new AppError("AUTH_TOKEN_INVALID", "The token's session id is not valid.")
      }
      return { userId: sub, sid, issuedAt: payload.iat as number }
    } catch (err) {
      throw translate(err)
    }
  }
}

function translate(err: unknown): AppError {
  if (err instanceof AppError) return err
  if (err instanceof errors.JWTExpired) return new AppError("AUTH_TOKEN_EXPIRED", undefined, { cause: err })
  if (INVALID_TOKEN_ERRORS.some((kind) => err instanceof kind)) {
    return new AppError("AUTH_TOKEN_INVALID", undefined, { cause: err })
  }
  // JWKS timeout, fetch failure, a malformed key set: the token may be fine, the auth function is not.
  return new AppError("UNAVAILABLE", "Tokens cannot be checked right now; try again.", { cause: err })
}

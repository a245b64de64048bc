/** Checking access tokens, for every verifier that holds the JWK Set (the auth function, the HTTP functions). */
import { createLocalJWKSet, errors, type JSONWebKeySet, jwtVerify } from "jose"
import { AppError } from "../errors"
import { safeId } from "../protocol/ids"
import {
  ACCESS_TOKEN_TYP,
  type AccessTokenClaims,
  CLOCK_TOLERANCE_SECONDS,
  TOKEN_ALG,
} from "../protocol/tokens"

export type TokenAudience = { readonly issuer: string; readonly audience: string }

/** Checks signature, algorithm, typ, iss, aud and exp; answers AUTH_TOKEN_INVALID or _EXPIRED. */
export async function verifyAccessToken(
  token: string,
  jwks: JSONWebKeySet,
  now: Date,
  settings: TokenAudience,
): Promise<AccessTokenClaims> {
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), {
      algorithms: [TOKEN_ALG],
      typ: ACCESS_TOKEN_TYP,
      issuer: settings.issuer,
      audience: settings.audience,
      requiredClaims: ["exp", "iat", "sub", "jti", "sid"],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      currentDate: now,
    })
    if (!safeId.safeParse(payload.sub).success || !safeId.safeParse(payload.sid).success) {
      throw new AppError("AUTH_TOKEN_INVALID", "The token names no valid user or session.")
    }
    return payload as unknown as AccessTokenClaims
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw new AppError("AUTH_TOKEN_EXPIRED", undefined, { cause: err })
    // Every other jose failure (bad signature, unknown kid, wrong claims, malformed) means the same to a caller.
    if (err instanceof errors.JOSEError) throw new AppError("AUTH_TOKEN_INVALID", undefined, { cause: err })
    throw err
  }
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(authorization: string | undefined): string {
  if (authorization === undefined) throw new AppError("AUTH_REQUIRED")
  const token = /^Bearer +([A-Za-z0-9_.-]+)$/i.exec(authorization.trim())?.[1]
  if (token === undefined)
    throw new AppError("AUTH_REQUIRED", "Send the access token as `Authorization: Bearer <token>`.")
  return token
}

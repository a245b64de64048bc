/**
 * What the auth function puts in an access token and what every verifier (the edge, the HTTP
 * functions) must check, in one place so that issuer and verifiers cannot drift apart.
 * Format and rules: docs/auth.md.
 */
import { z } from "zod"
import { safeId } from "./ids"

/** The only signing algorithm; verifiers pin it (no `none`, no HS256 with a public key). */
export const TOKEN_ALG = "EdDSA"
/** The `typ` header of access tokens (RFC 9068), so other JWTs cannot pass as one. */
export const ACCESS_TOKEN_TYP = "at+jwt"
export const DEFAULT_ISSUER = "cove"
export const DEFAULT_AUDIENCE = "cove"
export const DEFAULT_ACCESS_TTL_SECONDS = 900
/** Clock skew a verifier accepts on exp, nbf and iat. */
export const CLOCK_TOLERANCE_SECONDS = 5

/** Claims of a Cove access token; `sid` names the refresh-token family (the login session). */
export type AccessTokenClaims = {
  readonly iss: string
  readonly aud: string
  readonly sub: string
  readonly sid: string
  readonly preferred_username: string
  readonly iat: number
  readonly exp: number
  readonly jti: string
}

/**
 * Published on `subjects.userRevoked(user)` (core NATS) when an account is disabled or its
 * sessions are ended: edges close the user's sockets, or only those of session `sid` if given.
 */
export const userRevokedEvent = z.object({
  type: z.literal("revoked"),
  user: safeId,
  reason: z.enum(["disabled", "logout", "logout_everywhere", "token_reuse"]),
  sid: safeId.optional(),
})
export type UserRevokedEvent = z.output<typeof userRevokedEvent>

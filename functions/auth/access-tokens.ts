/**
 * Signing access tokens: EdDSA JWTs with the claims of lib/protocol/tokens.ts. Verifiers, this
 * function included, check them with lib/auth/verify-access-token.ts.
 */
import type { KeyObject } from "node:crypto"
import { SignJWT } from "jose"
import { ACCESS_TOKEN_TYP, TOKEN_ALG } from "../../lib/protocol/tokens"

export type TokenSettings = {
  readonly issuer: string
  readonly audience: string
  readonly accessTtlSeconds: number
}

export type Signer = { readonly kid: string; readonly privateKey: KeyObject }

export function signAccessToken(
  signer: Signer,
  subject: { userId: string; username: string; sessionId: string; tokenId: string },
  now: Date,
  settings: TokenSettings,
): Promise<string> {
  const iat = Math.floor(now.getTime() / 1000)
  return new SignJWT({ sid: subject.sessionId, preferred_username: subject.username })
    .setProtectedHeader({ alg: TOKEN_ALG, typ: ACCESS_TOKEN_TYP, kid: signer.kid })
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setSubject(subject.userId)
    .setIssuedAt(iat)
    .setExpirationTime(iat + settings.accessTtlSeconds)
    .setJti(subject.tokenId)
    .sign(signer.privateKey)
}

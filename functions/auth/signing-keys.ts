/**
 * Ed25519 signing keys: made here, sealed with AES-256-GCM under the key-encryption key before
 * they reach PostgreSQL, and opened again to sign. The kid is the key's RFC 7638 thumbprint.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from "node:crypto"
import { calculateJwkThumbprint } from "jose"
import { ConfigError } from "../../lib/config"
import type { SealedSigningKey } from "../../lib/ports"
import { TOKEN_ALG } from "../../lib/protocol/tokens"

export type KeyEncryptionKey = { readonly key: Buffer; readonly id: string }

const IV_BYTES = 12
const TAG_BYTES = 16

/** Accepts 32 bytes written as 64 hex digits or as base64/base64url; refuses anything weaker. */
export function parseKeyEncryptionKey(text: string): KeyEncryptionKey {
  const trimmed = text.trim()
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, "hex")
    : /^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)
      ? Buffer.from(trimmed, "base64url")
      : undefined
  if (key === undefined || key.length !== 32) {
    throw new ConfigError([
      "AUTH_KEY_ENCRYPTION_KEY: must be 32 random bytes as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)",
    ])
  }
  // A public fingerprint: tells which key sealed a row without revealing the key.
  const id = createHash("sha256").update("cove-kek-id\0").update(key).digest("base64url").slice(0, 16)
  return { key, id }
}

export async function generateSigningKey(kek: KeyEncryptionKey, now: Date): Promise<SealedSigningKey> {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519")
  const jwk = publicKey.export({ format: "jwk" })
  const kid = await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x: jwk.x as string })
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv("aes-256-gcm", kek.key, iv)
  // The kid is authenticated data: a sealed key cannot be moved to another row unnoticed.
  cipher.setAAD(Buffer.from(kid))
  const plain = privateKey.export({ format: "der", type: "pkcs8" })
  const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()])
  return {
    kid,
    publicJwk: { kty: "OKP", crv: "Ed25519", x: jwk.x as string, kid, alg: TOKEN_ALG, use: "sig" },
    privateKeySealed: sealed,
    kekId: kek.id,
    createdAt: now,
  }
}

export function openSigningKey(sealed: SealedSigningKey, kek: KeyEncryptionKey): KeyObject {
  if (sealed.kekId !== kek.id) {
    throw new Error(
      `signing key ${sealed.kid} was sealed with key-encryption key ${sealed.kekId}, not the configured ${kek.id}`,
    )
  }
  const data = sealed.privateKeySealed
  const iv = data.subarray(0, IV_BYTES)
  const tag = data.subarray(data.length - TAG_BYTES)
  const decipher = createDecipheriv("aes-256-gcm", kek.key, iv)
  decipher.setAAD(Buffer.from(sealed.kid))
  decipher.setAuthTag(tag)
  const plain = Buffer.concat([
    decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
    decipher.final(),
  ])
  return createPrivateKey({ key: plain, format: "der", type: "pkcs8" })
}

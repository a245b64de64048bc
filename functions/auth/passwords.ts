/**
 * Password hashing with scrypt from node:crypto. A hash records its own parameters
 * (`scrypt$N$r$p$salt$hash`, base64url), so parameters can be raised later and old hashes still
 * verify (and are upgraded at the next login). Hashing is CPU- and memory-hard on purpose, so at
 * most `concurrency` run at once per instance and a bounded queue waits for them.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto"
import { AppError } from "../../lib/errors"

export type ScryptParams = { readonly N: number; readonly r: number; readonly p: number }

export type PasswordHasher = {
  hash(password: string): Promise<string>
  /**
   * Whether `password` matches `stored`. Without a stored hash (unknown user) the same work is done
   * against a dummy, so that both answers take the same time.
   */
  verify(password: string, stored: string | undefined): Promise<boolean>
  /** Whether `stored` was made with other parameters than the current ones. */
  outdated(stored: string): boolean
}

const SALT_BYTES = 16
const KEY_BYTES = 32
/** Bounds for parameters read back from the database, so a bad row cannot exhaust memory. */
const LIMITS = { N: 2 ** 20, r: 64, p: 16 }

type ParsedHash = ScryptParams & { readonly salt: Buffer; readonly hash: Buffer }

function parseHash(stored: string): ParsedHash | undefined {
  const parts = stored.split("$")
  if (parts.length !== 6 || parts[0] !== "scrypt") return undefined
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number]
  const valid = (n: number, max: number) => Number.isInteger(n) && n >= 1 && n <= max
  if (!valid(N, LIMITS.N) || !valid(r, LIMITS.r) || !valid(p, LIMITS.p)) return undefined
  const salt = Buffer.from(parts[4] as string, "base64url")
  const hash = Buffer.from(parts[5] as string, "base64url")
  if (salt.length < SALT_BYTES || hash.length !== KEY_BYTES) return undefined
  return { N, r, p, salt, hash }
}

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  // NFKC, so that the same password typed on another keyboard or IME gives the same bytes.
  const bytes = Buffer.from(password.normalize("NFKC"), "utf8")
  return new Promise((resolve, reject) => {
    scrypt(
      bytes,
      salt,
      KEY_BYTES,
      // maxmem: scrypt needs about 128·N·r bytes; Node's default (32 MiB) refuses N=2^15, r=8.
      { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 },
      (err, key) => (err === null ? resolve(key) : reject(err)),
    )
  })
}

/** At most `limit` tasks at once; at most `queueMax` waiting, after which callers get UNAVAILABLE. */
function bounded(limit: number, queueMax: number) {
  let running = 0
  const waiting: Array<() => void> = []
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= limit) {
      if (waiting.length >= queueMax) {
        throw new AppError("UNAVAILABLE", "Too many password checks at once; try again shortly.")
      }
      await new Promise<void>((resolve) => waiting.push(resolve))
    } else running++
    try {
      return await task()
    } finally {
      // Hand the slot straight to the next waiter, so that `running` never overshoots.
      const next = waiting.shift()
      if (next === undefined) running--
      else next()
    }
  }
}

export function createPasswordHasher(options: {
  params: ScryptParams
  concurrency: number
  queueMax: number
}): PasswordHasher {
  const { params } = options
  const run = bounded(options.concurrency, options.queueMax)
  const dummy: ParsedHash = {
    ...params,
    salt: randomBytes(SALT_BYTES),
    hash: randomBytes(KEY_BYTES),
  }
  return {
    async hash(password) {
      const salt = randomBytes(SALT_BYTES)
      const key = await run(() => derive(password, salt, params))
      return [
        "scrypt",
        params.N,
        params.r,
        params.p,
        salt.toString("base64url"),
        key.toString("base64url"),
      ].join("$")
    },
    async verify(password, stored) {
      const parsed = stored === undefined ? undefined : parseHash(stored)
      const target = parsed ?? dummy
      const key = await run(() => derive(password, target.salt, target))
      return timingSafeEqual(key, target.hash) && parsed !== undefined
    },
    outdated(stored) {
      const parsed = parseHash(stored)
      return parsed === undefined || parsed.N !== params.N || parsed.r !== params.r || parsed.p !== params.p
    },
  }
}

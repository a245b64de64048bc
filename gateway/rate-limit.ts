/**
 * Token buckets as values: `take` returns the next bucket instead of changing one, so the
 * session state machine stays pure and the clock is an argument.
 */

export type BucketSpec = { readonly ratePerSec: number; readonly burst: number }

export type Bucket = { readonly tokens: number; readonly at: number }

export function fullBucket(spec: BucketSpec, now: number): Bucket {
  return { tokens: spec.burst, at: now }
}

export type Take = { readonly bucket: Bucket; readonly ok: boolean; readonly retryAfterMs: number }

/** Refills for the time since the last take, then takes one token if there is one. */
export function take(spec: BucketSpec, bucket: Bucket, now: number): Take {
  const elapsed = Math.max(0, now - bucket.at)
  const tokens = Math.min(spec.burst, bucket.tokens + (elapsed * spec.ratePerSec) / 1000)
  if (tokens >= 1) return { bucket: { tokens: tokens - 1, at: now }, ok: true, retryAfterMs: 0 }
  return {
    bucket: { tokens, at: now },
    ok: false,
    retryAfterMs: Math.ceil(((1 - tokens) * 1000) / spec.ratePerSec),
  }
}

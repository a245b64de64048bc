/**
 * Key listings and purges on a NATS KV bucket through its stream (`KV_<bucket>`, one subject
 * `$KV.<bucket>.<key>` per key), for the presence buckets. A listing is one stream-info request:
 * nats.js `kv.keys()` reads through a consumer and waits, for ever, for a message it counted
 * that a TTL removed before delivery (seen on NATS 2.9 when presence keys expire mid-listing).
 */
import type { JetStreamManager } from "nats"

const stream = (bucket: string) => `KV_${bucket}`
const prefix = (bucket: string) => `$KV.${bucket}.`

/** Keys matching `filter` (a key pattern: `*`, `>`) that hold a message now: a value or a delete marker. */
export async function keysNow(jsm: JetStreamManager, bucket: string, filter = ">"): Promise<string[]> {
  const info = await jsm.streams.info(stream(bucket), { subjects_filter: `${prefix(bucket)}${filter}` })
  return Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix(bucket).length))
}

/**
 * Removes `key` leaving no delete marker, so that it drops out of `keysNow` at once; with
 * `throughRevision`, only up to that revision: a later write stays.
 */
export async function purgeKey(
  jsm: JetStreamManager,
  bucket: string,
  key: string,
  throughRevision?: number,
): Promise<void> {
  const filter = `${prefix(bucket)}${key}`
  await jsm.streams.purge(
    stream(bucket),
    throughRevision === undefined ? { filter } : { filter, seq: throughRevision + 1 },
  )
}

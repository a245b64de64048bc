import type { NatsConnection } from "nats"

/** JetStream's "stream not found" API error. */
function isStreamNotFound(err: unknown): boolean {
  return (err as { api_error?: { err_code?: number } }).api_error?.err_code === 10059
}

export type PartitionCount = {
  /** The stream's partition count (one subject per partition), or undefined if it does not exist. */
  get(): Promise<number | undefined>
  /** Forget the cached answer (after a failed publish: the stream may have changed). */
  reset(): void
}

/**
 * Publishers read the partition count from the stream itself, so they can never disagree with
 * the consumers that stack.yml configured. The answer is cached; "no such stream" for `absentMs`.
 */
export function streamPartitions(nc: NatsConnection, stream: string, absentMs = 30_000): PartitionCount {
  let cached: Promise<number | undefined> | undefined
  let absentSince = 0
  return {
    get() {
      if (cached !== undefined && absentSince > 0 && Date.now() - absentSince > absentMs) cached = undefined
      cached ??= nc
        .jetstreamManager()
        .then((jsm) => jsm.streams.info(stream))
        .then((info) => {
          absentSince = 0
          return info.config.subjects.length
        })
        .catch((err: unknown) => {
          if (isStreamNotFound(err)) {
            absentSince = Date.now()
            return undefined
          }
          cached = undefined
          throw err
        })
      return cached
    },
    reset() {
      cached = undefined
    },
  }
}

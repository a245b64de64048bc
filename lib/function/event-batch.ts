import type { z } from "zod"
import type { BatchResult, EventBatch } from "../protocol/events"
import { HEADERS, PROTOCOL_VERSION } from "../protocol/subjects"

export type ParsedEvents<T> = {
  /** Each valid event with its stream sequence, in batch order. */
  readonly valid: ReadonlyArray<{ readonly seq: number; readonly event: T }>
  /** Refused one by one; the connector dead-letters them. */
  readonly rejected: BatchResult["rejected"]
}

/**
 * Splits a batch the connector POSTed into the events `schema` accepts and the ones refused
 * (another protocol version, or invalid data), so one bad message never fails its batch.
 */
export function parseEvents<S extends z.ZodType>(batch: EventBatch, schema: S): ParsedEvents<z.output<S>> {
  const valid: { seq: number; event: z.output<S> }[] = []
  const rejected: { seq: number; code: string; message: string }[] = []
  for (const item of batch.messages) {
    const version = item.headers[HEADERS.version]
    if (version !== undefined && version !== String(PROTOCOL_VERSION)) {
      rejected.push({ seq: item.seq, code: "UNSUPPORTED_VERSION", message: `protocol version ${version}` })
      continue
    }
    const parsed = schema.safeParse(item.data)
    if (parsed.success) valid.push({ seq: item.seq, event: parsed.data })
    else {
      const message = parsed.error.issues
        .map((i) => `${i.path.join(".") || "(data)"}: ${i.message}`)
        .join("; ")
      rejected.push({ seq: item.seq, code: "INVALID_INPUT", message })
    }
  }
  return { valid, rejected }
}

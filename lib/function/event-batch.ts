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
  return parseMessages(batch, schema, false)
}

/**
 * Like `parseEvents`, for streams whose messages each carry a JSON array of events (COVE_STORED);
 * a single event object is read as an array of one. The valid events of a message are kept even
 * when others in it are refused; the message is then rejected too, so that the connector
 * dead-letters it and the refused events can be looked at.
 */
export function parseEventLists<S extends z.ZodType>(
  batch: EventBatch,
  schema: S,
): ParsedEvents<z.output<S>> {
  return parseMessages(batch, schema, true)
}

function parseMessages<S extends z.ZodType>(
  batch: EventBatch,
  schema: S,
  lists: boolean,
): ParsedEvents<z.output<S>> {
  const valid: { seq: number; event: z.output<S> }[] = []
  const rejected: { seq: number; code: string; message: string }[] = []
  for (const item of batch.messages) {
    const refusedVersion = versionRefusal(item)
    if (refusedVersion !== undefined) {
      rejected.push(refusedVersion)
      continue
    }
    const list: unknown[] = lists && Array.isArray(item.data) ? item.data : [item.data]
    const problems: string[] = []
    for (const [i, data] of list.entries()) {
      const parsed = schema.safeParse(data)
      if (parsed.success) valid.push({ seq: item.seq, event: parsed.data })
      else problems.push(lists ? `[${i}] ${issuesOf(parsed.error)}` : issuesOf(parsed.error))
    }
    if (problems.length > 0)
      rejected.push({ seq: item.seq, code: "INVALID_INPUT", message: problems.join("; ") })
  }
  return { valid, rejected }
}

function versionRefusal(item: EventBatch["messages"][number]): BatchResult["rejected"][number] | undefined {
  const version = item.headers[HEADERS.version]
  return version !== undefined && version !== String(PROTOCOL_VERSION)
    ? { seq: item.seq, code: "UNSUPPORTED_VERSION", message: `protocol version ${version}` }
    : undefined
}

function issuesOf(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "(data)"}: ${i.message}`).join("; ")
}

import type { BatchResult, EventBatch, InboundEvent } from "../../lib/protocol/events"
import { inboundEvent } from "../../lib/protocol/events"
import { HEADERS, PROTOCOL_VERSION } from "../../lib/protocol/subjects"

export type ParsedBatch = {
  /** Each valid event with its stream sequence, in batch order. */
  readonly valid: ReadonlyArray<{ readonly seq: number; readonly event: InboundEvent }>
  readonly rejected: BatchResult["rejected"]
}

/** Splits a batch into events the sequencer can apply and the ones it refuses (dead-lettered). */
export function parseBatch(batch: EventBatch): ParsedBatch {
  const valid: { seq: number; event: InboundEvent }[] = []
  const rejected: { seq: number; code: string; message: string }[] = []
  for (const item of batch.messages) {
    const version = item.headers[HEADERS.version]
    if (version !== undefined && version !== String(PROTOCOL_VERSION)) {
      rejected.push({ seq: item.seq, code: "UNSUPPORTED_VERSION", message: `protocol version ${version}` })
      continue
    }
    const parsed = inboundEvent.safeParse(item.data)
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

import type { BatchResult, EventBatch, NewMessage } from "../../lib/protocol/events"
import { newMessage } from "../../lib/protocol/events"
import { HEADERS, PROTOCOL_VERSION } from "../../lib/protocol/subjects"

export type ParsedBatch = {
  readonly valid: ReadonlyArray<NewMessage>
  readonly rejected: BatchResult["rejected"]
}

/** Splits a batch into messages the sequencer can store and the ones it refuses (dead-lettered). */
export function parseBatch(batch: EventBatch): ParsedBatch {
  const valid: NewMessage[] = []
  const rejected: { seq: number; code: string; message: string }[] = []
  for (const item of batch.messages) {
    const version = item.headers[HEADERS.version]
    if (version !== undefined && version !== String(PROTOCOL_VERSION)) {
      rejected.push({ seq: item.seq, code: "UNSUPPORTED_VERSION", message: `protocol version ${version}` })
      continue
    }
    const parsed = newMessage.safeParse(item.data)
    if (parsed.success) valid.push(parsed.data)
    else {
      const message = parsed.error.issues
        .map((i) => `${i.path.join(".") || "(data)"}: ${i.message}`)
        .join("; ")
      rejected.push({ seq: item.seq, code: "INVALID_INPUT", message })
    }
  }
  return { valid, rejected }
}

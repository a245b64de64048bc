/** POSTs one batch to an event function through the gateway, as OpenFaaS connectors do. */
import type { JsMsg } from "nats"
import type { BatchResult } from "../../lib/protocol/events"

export type BatchMessage = { readonly msg: JsMsg; readonly data: unknown }

export type InvokeOutcome =
  | { readonly ok: true; readonly result: BatchResult }
  | { readonly ok: false; readonly reason: string; readonly retryable: boolean }

export async function invokeBatch(options: {
  url: string
  functionName: string
  stream: string
  consumer: string
  batch: readonly BatchMessage[]
  timeoutMs: number
}): Promise<InvokeOutcome> {
  const body = JSON.stringify({
    function: options.functionName,
    stream: options.stream,
    consumer: options.consumer,
    messages: options.batch.map(({ msg, data }) => ({
      subject: msg.subject,
      seq: msg.seq,
      delivered: msg.info.redeliveryCount,
      headers: headerObject(msg),
      data,
    })),
  })
  let res: Response
  try {
    res = await fetch(options.url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-topic": options.batch[0]?.msg.subject ?? "" },
      body,
      signal: AbortSignal.timeout(options.timeoutMs),
    })
  } catch (err) {
    return { ok: false, reason: `request failed: ${(err as Error).message}`, retryable: true }
  }
  const text = await res.text()
  if (res.status < 200 || res.status > 299) {
    return {
      ok: false,
      reason: `HTTP ${res.status}: ${text.slice(0, 300)}`,
      retryable: res.status !== 400 && res.status !== 413,
    }
  }
  return { ok: true, result: parseResult(text, options.batch.length) }
}

function headerObject(msg: JsMsg): Record<string, string> {
  const out: Record<string, string> = {}
  if (msg.headers === undefined) return out
  for (const [k, v] of msg.headers) if (v[0] !== undefined) out[k] = v[0]
  return out
}

/** A 2xx means the batch was handled; a body listing rejected sequences is optional. */
function parseResult(text: string, size: number): BatchResult {
  try {
    const parsed = JSON.parse(text) as Partial<BatchResult>
    const rejected = Array.isArray(parsed.rejected)
      ? parsed.rejected
          .filter((r) => typeof r?.seq === "number")
          .map((r) => ({ seq: r.seq, code: String(r.code), message: String(r.message) }))
      : []
    return { processed: typeof parsed.processed === "number" ? parsed.processed : size, rejected }
  } catch {
    // Not JSON: the function answered 2xx without details, which still means "handled".
    return { processed: size, rejected: [] }
  }
}

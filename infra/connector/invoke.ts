/** POSTs one batch to an event function (through the gateway, as OpenFaaS connectors do, or straight to it). */
import { Agent, request } from "node:http"
import type { JsMsg } from "nats"
import type { BatchResult } from "../../lib/protocol/events"

/**
 * A message of the batch, its data already checked to be JSON text, and its entry of the
 * POSTed `messages` array as bytes: made once, however often the batch is retried.
 */
export type BatchMessage = { readonly msg: JsMsg; readonly delivered: number; readonly entry: Buffer }

/**
 * The message's entry of a batch: the same JSON as stringifying the parsed message, without
 * parsing and stringifying its data again (the data goes in as the bytes it arrived as, so a
 * batch never passes through one big string). Undefined when the data is not JSON.
 */
export function batchMessage(msg: JsMsg): BatchMessage | undefined {
  const data = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength)
  try {
    JSON.parse(data.toString("utf8"))
  } catch {
    return undefined
  }
  const delivered = msg.info.redeliveryCount
  const head = `{"subject":${JSON.stringify(msg.subject)},"seq":${msg.seq},"delivered":${delivered},"headers":${JSON.stringify(headerObject(msg))},"data":`
  return { msg, delivered, entry: Buffer.concat([Buffer.from(head), data, CLOSE]) }
}

const CLOSE = Buffer.from("}")
const COMMA = Buffer.from(",")

export type InvokeOutcome =
  | { readonly ok: true; readonly result: BatchResult }
  | { readonly ok: false; readonly reason: string; readonly retryable: boolean }

/**
 * Kept-alive connections, one per partition worker at a time. node:http rather than fetch: at
 * a few messages per batch, fetch's streams cost the connector more CPU than the batch itself.
 */
const agent = new Agent({ keepAlive: true, keepAliveMsecs: 10_000 })

export async function invokeBatch(options: {
  /** Undefined while the function is restarting: a retryable failure. */
  url: string | undefined
  functionName: string
  stream: string
  consumer: string
  batch: readonly BatchMessage[]
  timeoutMs: number
}): Promise<InvokeOutcome> {
  if (options.url === undefined)
    return { ok: false, reason: `${options.functionName} is restarting`, retryable: true }
  const head = JSON.stringify({
    function: options.functionName,
    stream: options.stream,
    consumer: options.consumer,
  }).slice(0, -1)
  const parts: Buffer[] = [Buffer.from(`${head},"messages":[`)]
  for (const [i, m] of options.batch.entries()) {
    if (i > 0) parts.push(COMMA)
    parts.push(m.entry)
  }
  parts.push(Buffer.from("]}"))
  const body = Buffer.concat(parts)
  let answer: { status: number; text: string }
  try {
    answer = await post(options.url, body, options.batch[0]?.msg.subject ?? "", options.timeoutMs)
  } catch (err) {
    return { ok: false, reason: `request failed: ${(err as Error).message}`, retryable: true }
  }
  const { status, text } = answer
  if (status < 200 || status > 299) {
    return {
      ok: false,
      reason: `HTTP ${status}: ${text.slice(0, 300)}`,
      retryable: status !== 400 && status !== 413,
    }
  }
  return { ok: true, result: parseResult(text, options.batch.length) }
}

function post(
  url: string,
  body: Buffer,
  topic: string,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: "POST",
      agent,
      headers: {
        "content-type": "application/json",
        "content-length": body.byteLength,
        "x-topic": topic,
      },
    })
    // The whole exchange, not only idle time: a function that trickles its answer is as late.
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    req.once("error", (err) => {
      clearTimeout(deadline)
      reject(err)
    })
    req.once("response", (res) => {
      const chunks: Buffer[] = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.once("end", () => {
        clearTimeout(deadline)
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") })
      })
      res.once("error", (err) => {
        clearTimeout(deadline)
        reject(err)
      })
    })
    req.end(body)
  })
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

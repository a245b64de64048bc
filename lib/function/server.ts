/**
 * Serves a template handler over HTTP the way the OpenFaaS node20 template does behind
 * of-watchdog: same event (body parsed by content type, headers, method, query, path) and
 * context. It is the upstream of of-watchdog in a plain container, and each function's process
 * under Cove's local runtime.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { AppError, toErrorBody } from "../errors"
import type { Logger } from "../log"
import type { FunctionContext, FunctionEvent, TemplateHandler } from "./contract"

export type FunctionServer = {
  readonly port: number
  readonly server: Server
  drain(deadlineMs: number): Promise<void>
}

export async function serveHandler(
  handler: TemplateHandler,
  options: { host: string; port: number; maxBodyBytes: number; log: Logger },
): Promise<FunctionServer> {
  let inFlight = 0
  let idle: (() => void) | undefined
  const server = createServer((req, res) => {
    inFlight++
    res.once("close", () => {
      inFlight--
      if (inFlight === 0) idle?.()
    })
    if (req.url === "/_/health") {
      // The pid lets a supervisor tell its own process from another that holds the same port.
      sendJson(res, 200, { status: "ok", pid: process.pid })
      return
    }
    readBody(req, options.maxBodyBytes)
      .then((raw) => invoke(handler, req, raw, res))
      .catch((err: unknown) => {
        const { status, body } = toErrorBody(err)
        if (status >= 500) options.log.error({ err }, "function server failed")
        if (!res.headersSent) sendJson(res, status, body)
        else res.destroy()
      })
  })
  server.keepAliveTimeout = 65_000
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port, options.host, resolve)
  })
  const port = (server.address() as AddressInfo).port
  return {
    port,
    server,
    async drain(deadlineMs) {
      server.close()
      server.closeIdleConnections()
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          idle = resolve
          setTimeout(resolve, deadlineMs).unref()
        })
      }
      server.closeAllConnections()
      await handler.close?.()
    },
  }
}

async function invoke(
  handler: TemplateHandler,
  req: IncomingMessage,
  raw: Buffer,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? "/", "http://function")
  const event: FunctionEvent = {
    body: parseBody(req.headers["content-type"], raw),
    headers: req.headers,
    method: req.method ?? "GET",
    query: queryObject(url.searchParams),
    path: url.pathname,
  }
  await new Promise<void>((resolve, reject) => {
    let status = 200
    let headers: Record<string, string> = {}
    let done = false
    const context = {
      status(code?: number) {
        if (code === undefined) return status
        status = code
        return context
      },
      headers(values?: Record<string, string>) {
        if (values === undefined) return headers
        headers = values
        return context
      },
      succeed(value: unknown) {
        if (done) return
        done = true
        writeResult(res, status, headers, value)
        resolve()
      },
      fail(value: unknown) {
        if (done) return
        done = true
        reject(value)
      },
    } as FunctionContext
    handler(event, context).then(() => context.succeed(undefined), reject)
  })
}

function writeResult(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  value: unknown,
): void {
  const body =
    value === undefined || value === null
      ? ""
      : typeof value === "string" || Buffer.isBuffer(value)
        ? value
        : JSON.stringify(value)
  res.writeHead(status, headers)
  res.end(body)
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" })
  res.end(JSON.stringify(body))
}

/** Reads the body, refusing it as soon as it passes the limit (before buffering it all). */
async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? "0")
  if (declared > maxBytes)
    throw new AppError("PAYLOAD_TOO_LARGE", `The body may be at most ${maxBytes} bytes.`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxBytes) throw new AppError("PAYLOAD_TOO_LARGE", `The body may be at most ${maxBytes} bytes.`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

/**
 * The template's parsers, except that JSON is handed over as text: the bundle's harness parses
 * it, so that a malformed body gets Cove's INVALID_JSON answer under either server.
 * An empty body is {}, as body-parser leaves it.
 */
function parseBody(contentType: string | undefined, raw: Buffer): unknown {
  if (raw.length === 0) return {}
  const type = (contentType ?? "text/plain").split(";")[0]?.trim().toLowerCase() ?? ""
  if (type === "application/json" || type.endsWith("+json")) return raw.toString("utf8")
  if (type.startsWith("text/")) return raw.toString("utf8")
  if (type === "application/x-www-form-urlencoded")
    return queryObject(new URLSearchParams(raw.toString("utf8")))
  return raw
}

function queryObject(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of params) {
    const prev = out[k]
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  return out
}

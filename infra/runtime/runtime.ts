/**
 * The local stand-in for the OpenFaaS gateway: serves every function of stack.yml at
 * /function/<name> (sub-paths and query passed through), enforcing each function's body limit
 * and exec_timeout, plus /_/health and /metrics (invocations, errors, durations per function).
 */
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { AppError, type ErrorCode, toErrorBody } from "../../lib/errors"
import type { Logger } from "../../lib/log"
import { PROMETHEUS_CONTENT_TYPE, type Registry } from "../../lib/metrics"
import type { FunctionProcess } from "./function-process"
import { serveWebApp, type WebAppOptions } from "./web"

export type Runtime = { readonly port: number; readonly server: Server; stop(): Promise<void> }

/** Hop-by-hop headers are not forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "te",
  "trailer",
])

export async function startRuntime(options: {
  host: string
  port: number
  functions: readonly FunctionProcess[]
  registry: Registry
  log: Logger
  /** Extra routes served by the stack (the connector's health). */
  health?: () => Record<string, unknown>
  /** The web app, served at `/` (infra/runtime/web.ts). */
  web?: WebAppOptions
}): Promise<Runtime> {
  const byName = new Map(options.functions.map((f) => [f.spec.name, f]))
  const invocations = options.registry.counter(
    "cove_function_invocations_total",
    "Requests per function, by status code",
  )
  const durations = options.registry.histogram(
    "cove_function_duration_seconds",
    "Time from request to response, per function",
  )
  const inFlight = options.registry.gauge("cove_function_in_flight", "Requests being served, per function")

  const server = createServer((req, res) => {
    const url = req.url ?? "/"
    if (url === "/_/health" || url === "/healthz") {
      const functions = Object.fromEntries(
        options.functions.map((f) => [f.spec.name, f.port() === undefined ? "restarting" : "ready"]),
      )
      const ok = Object.values(functions).every((s) => s === "ready")
      sendJson(res, ok ? 200 : 503, { status: ok ? "ok" : "degraded", functions, ...options.health?.() })
      return
    }
    if (url === "/metrics") {
      res.writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE }).end(options.registry.render())
      return
    }
    const m = /^\/function\/([^/?#]+)(\/[^?#]*)?(\?.*)?$/.exec(url)
    if (m === null) {
      const notFound = () => sendError(res, "NOT_FOUND", "Functions are served at /function/<name>")
      if (options.web === undefined) notFound()
      else
        serveWebApp(options.web, req, res).then(
          (served) => {
            if (!served) notFound()
          },
          (err: unknown) => {
            options.log.error({ err, url }, "serving the web app failed")
            if (!res.headersSent) sendError(res, "INTERNAL", "The file could not be read")
            else res.destroy()
          },
        )
      return
    }
    const name = m[1] as string
    const fn = byName.get(name)
    if (fn === undefined) {
      sendError(res, "FUNCTION_NOT_FOUND", `No function named ${JSON.stringify(name).slice(0, 80)}`)
      return
    }
    const started = performance.now()
    inFlight.add(1, { function: name })
    res.once("close", () => {
      inFlight.add(-1, { function: name })
      invocations.inc({ function: name, code: String(res.statusCode) })
      durations.observe((performance.now() - started) / 1000, { function: name })
    })
    forward(req, res, fn, `${m[2] ?? "/"}${m[3] ?? ""}`, options.log)
  })
  server.keepAliveTimeout = 65_000
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port, options.host, resolve)
  })
  return {
    port: (server.address() as AddressInfo).port,
    server,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
    },
  }
}

function forward(
  req: IncomingMessage,
  res: ServerResponse,
  fn: FunctionProcess,
  path: string,
  log: Logger,
): void {
  const port = fn.port()
  if (port === undefined) {
    sendError(res, "FUNCTION_UNAVAILABLE", `${fn.spec.name} is restarting`)
    return
  }
  const limit = fn.spec.maxBodyBytes
  if (Number(req.headers["content-length"] ?? "0") > limit) {
    sendError(res, "PAYLOAD_TOO_LARGE", `${fn.spec.name} accepts bodies of at most ${limit} bytes`)
    req.resume()
    return
  }
  const headers: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v
  // We are the first proxy: whatever a client claims about its address is replaced, since the
  // auth function's per-address login limits trust these headers.
  const address = req.socket.remoteAddress ?? ""
  headers["x-forwarded-for"] = address
  headers["x-real-ip"] = address
  const upstream = request({
    host: "127.0.0.1",
    port,
    method: req.method,
    path,
    headers,
    timeout: fn.spec.execTimeoutMs,
  })
  let failed = false
  const fail = (code: ErrorCode, detail: string) => {
    if (failed) return
    failed = true
    upstream.destroy()
    if (!res.headersSent) sendError(res, code, detail)
    else res.destroy()
  }
  const deadline = setTimeout(
    () => fail("FUNCTION_TIMEOUT", `${fn.spec.name} did not answer within ${fn.spec.execTimeoutMs} ms`),
    fn.spec.execTimeoutMs,
  )
  upstream.once("response", (up) => {
    const out: Record<string, string | string[]> = {}
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v
    res.writeHead(up.statusCode ?? 502, out)
    up.pipe(res)
    up.once("end", () => clearTimeout(deadline))
  })
  upstream.once("error", (err) => {
    clearTimeout(deadline)
    if (!failed) log.warn({ err, fn: fn.spec.name }, "function request failed")
    fail("FUNCTION_UNAVAILABLE", `${fn.spec.name} did not answer`)
  })
  // Count the body as it streams: a chunked body has no content-length to check up front.
  let received = 0
  req.on("data", (chunk: Buffer) => {
    received += chunk.length
    if (received > limit) {
      clearTimeout(deadline)
      // Stop forwarding, answer 413 and discard the rest, so the client reads the answer.
      req.unpipe(upstream)
      req.resume()
      res.shouldKeepAlive = false
      fail("PAYLOAD_TOO_LARGE", `${fn.spec.name} accepts bodies of at most ${limit} bytes`)
    }
  })
  res.once("close", () => clearTimeout(deadline))
  req.pipe(upstream)
}

function sendError(res: ServerResponse, code: ErrorCode, detail: string): void {
  const { status, body } = toErrorBody(new AppError(code, detail))
  sendJson(res, status, body)
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(body))
}

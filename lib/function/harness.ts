/**
 * Turns a function's routes into a template handler. The error mapping lives here, inside each
 * bundle, because the official template answers a thrown error with status 200: a bundle must
 * therefore never throw, and behaves the same under that template and under Cove's runtime.
 */
import { randomUUID } from "node:crypto"
import { AppError, toErrorBody } from "../errors"
import type { Logger } from "../log"
import type { FunctionContext, FunctionEvent, HeaderValue, TemplateHandler } from "./contract"
import { type Method, Router } from "./router"

export type FnRequest = {
  readonly method: string
  readonly path: string
  readonly params: Readonly<Record<string, string>>
  readonly query: Readonly<Record<string, string | undefined>>
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: unknown
  readonly requestId: string
  readonly log: Logger
}

export type FnResponse = {
  readonly status?: number
  /** Sent as JSON unless it is a string and a content-type header is given. */
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
}

export type RouteHandler<P> = (req: FnRequest, ports: P) => Promise<FnResponse>

export type FunctionDefinition<P> = {
  readonly name: string
  readonly log: Logger
  readonly routes: ReadonlyArray<readonly [Method, string, RouteHandler<P>]>
  /** Builds the ports on first use; kept while the process is warm. */
  readonly ports: () => Promise<P>
  /** Releases what `ports` opened (pools, connections). */
  readonly close?: (ports: P) => Promise<void>
}

const JSON_TYPE = "application/json; charset=utf-8"

export function defineFunction<P>(def: FunctionDefinition<P>): TemplateHandler {
  const router = new Router<RouteHandler<P>>()
  for (const [method, path, handler] of def.routes) router.add(method, path, handler)
  let ports: Promise<P> | undefined
  const getPorts = (): Promise<P> => {
    ports ??= def.ports().catch((err: unknown) => {
      // Forget a failed start so the next request tries again (the database may be back).
      ports = undefined
      throw new AppError("UNAVAILABLE", undefined, { cause: err })
    })
    return ports
  }

  const handler: TemplateHandler = async (event: FunctionEvent, context: FunctionContext) => {
    const started = performance.now()
    const requestId =
      firstHeader(event.headers["x-request-id"]) ?? firstHeader(event.headers["x-call-id"]) ?? randomUUID()
    const log = def.log.child({ req: requestId })
    const path = event.path === "" ? "/" : event.path
    let response: FnResponse
    try {
      const match = router.match(event.method, path)
      if (match.kind === "not-found") throw new AppError("NOT_FOUND", `No route ${event.method} ${path}`)
      if (match.kind === "method-not-allowed") {
        throw new AppError("METHOD_NOT_ALLOWED", `Use ${match.allowed.join(" or ")} for ${path}`)
      }
      const req: FnRequest = {
        method: event.method,
        path,
        params: match.params,
        query: flattenQuery(event.query),
        headers: flattenHeaders(event.headers),
        body: normaliseBody(event.body),
        requestId,
        log,
      }
      response = await match.value(req, await getPorts())
    } catch (err) {
      const mapped = toErrorBody(err, requestId)
      if (mapped.status >= 500) log.error({ err, code: mapped.body.error.code }, "request failed")
      else log.info({ code: mapped.body.error.code, status: mapped.status }, "request refused")
      response = { status: mapped.status, body: mapped.body }
    }
    const status = response.status ?? 200
    const headers: Record<string, string> = { "x-request-id": requestId, ...response.headers }
    const raw = typeof response.body === "string" && headers["content-type"] !== undefined
    if (!raw) headers["content-type"] = JSON_TYPE
    log.debug({ status, ms: Math.round(performance.now() - started) }, "request done")
    context
      .status(status)
      .headers(headers)
      .succeed(raw ? response.body : response.body === undefined ? "" : JSON.stringify(response.body))
  }
  handler.close = async () => {
    if (ports === undefined || def.close === undefined) return
    // Ports that never opened have nothing to close.
    const opened = await ports.catch(() => undefined)
    if (opened !== undefined) await def.close(opened)
  }
  return handler
}

function firstHeader(value: HeaderValue): string | undefined {
  const v = Array.isArray(value) ? value[0] : value
  // Request ids end up in logs and headers: keep them short and printable.
  return v !== undefined && /^[\w.:-]{1,128}$/.test(v) ? v : undefined
}

function flattenHeaders(headers: Readonly<Record<string, HeaderValue>>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v
  return out
}

/** Repeated query keys keep their first value; handlers never see arrays or nested objects. */
function flattenQuery(query: Readonly<Record<string, unknown>>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(query)) {
    const first = Array.isArray(v) ? v[0] : v
    out[k] = typeof first === "string" ? first : undefined
  }
  return out
}

/**
 * Integrators who forget the content-type still send JSON: a text body is parsed as JSON, and
 * a body that is not JSON is refused with INVALID_JSON.
 */
function normaliseBody(body: unknown): unknown {
  const text = typeof body === "string" ? body : Buffer.isBuffer(body) ? body.toString("utf8") : undefined
  if (text === undefined) return body
  if (text.trim() === "") return undefined
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new AppError("INVALID_JSON", undefined, { cause: err })
  }
}

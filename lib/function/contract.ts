/**
 * The OpenFaaS Node template contract (node20, of-watchdog HTTP mode): a bundle's handler.js
 * exports one function `(event, context) => Promise<unknown>`. Both the official template and
 * Cove's own function server (lib/function/server.ts) call it this way.
 */

export type HeaderValue = string | string[] | undefined

export type FunctionEvent = {
  /** Parsed by the server: JSON → value, text/* → string, urlencoded → object, nothing → {}. */
  readonly body: unknown
  readonly headers: Readonly<Record<string, HeaderValue>>
  readonly method: string
  readonly query: Readonly<Record<string, unknown>>
  /** The path after /function/<name>, starting with "/". */
  readonly path: string
}

export type FunctionContext = {
  status(code: number): FunctionContext
  status(): number
  headers(values: Record<string, string>): FunctionContext
  headers(): Record<string, string>
  succeed(value: unknown): void
  fail(value: unknown): void
}

export type TemplateHandler = ((event: FunctionEvent, context: FunctionContext) => Promise<void>) & {
  /** Closes pooled connections; called by Cove's function server when it drains. */
  close?: () => Promise<void>
}

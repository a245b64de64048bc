/** JSON over fetch to the functions (`<baseUrl>/function/<name>/...`), with errors as HttpError. */

/**
 * An error answer (`{"error": {"code", "message", "request_id", "details"}}`), or status 0 with
 * code NETWORK_ERROR when no answer came (the cause says why).
 */
export class HttpError extends Error {
  override readonly name = "HttpError"
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: {
      readonly requestId?: string
      readonly details?: unknown
      /** From a Retry-After header (RATE_LIMITED), in ms. */
      readonly retryAfterMs?: number
      readonly cause?: unknown
    } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause })
  }
  get requestId(): string | undefined {
    return this.extra.requestId
  }
  get details(): unknown {
    return this.extra.details
  }
  get retryAfterMs(): number | undefined {
    return this.extra.retryAfterMs
  }
}

export type Query = Readonly<Record<string, string | number | undefined>>

export type RequestOptions = {
  readonly query?: Query
  readonly body?: unknown
  /** Send the access token (default true). */
  readonly auth?: boolean
  readonly headers?: Readonly<Record<string, string>>
}

export type HttpAnswer<T> = { readonly status: number; readonly body: T }

export type HttpPorts = {
  readonly baseUrl: string
  readonly fetch: typeof fetch
  /** A fresh enough access token (refreshed first when it is about to expire). */
  readonly accessToken: () => Promise<string>
  /** The token was refused although fresh by our clock: refresh it now. */
  readonly refreshNow: () => Promise<void>
}

/** Codes after which one refresh and one retry may help (docs/auth.md). */
const REFRESHABLE = new Set(["AUTH_TOKEN_EXPIRED", "AUTH_TOKEN_INVALID"])

export class Http {
  constructor(private readonly ports: HttpPorts) {}

  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<HttpAnswer<T>> {
    try {
      return await this.once<T>(method, path, o)
    } catch (err) {
      if (o.auth === false || !(err instanceof HttpError) || err.status !== 401 || !REFRESHABLE.has(err.code))
        throw err
      // The token expired in flight, or the server's clock runs ahead of ours: refresh once.
      await this.ports.refreshNow()
      return this.once<T>(method, path, o)
    }
  }

  async json<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    return (await this.request<T>(method, path, o)).body
  }

  private async once<T>(method: string, path: string, o: RequestOptions): Promise<HttpAnswer<T>> {
    const url = new URL(`${this.ports.baseUrl.replace(/\/$/, "")}/function/${path}`)
    for (const [k, v] of Object.entries(o.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v))
    const headers: Record<string, string> = { accept: "application/json", ...o.headers }
    if (o.body !== undefined) headers["content-type"] = "application/json"
    if (o.auth !== false) headers.authorization = `Bearer ${await this.ports.accessToken()}`
    let res: Response
    try {
      res = await this.ports.fetch(url, {
        method,
        headers,
        ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
      })
    } catch (cause) {
      throw new HttpError(0, "NETWORK_ERROR", `${method} ${path} got no answer`, { cause })
    }
    if (res.ok) {
      const text = await res.text()
      return { status: res.status, body: (text === "" ? undefined : JSON.parse(text)) as T }
    }
    throw await errorFrom(res)
  }
}

export async function errorFrom(res: Response): Promise<HttpError> {
  const text = await res.text().catch(() => "")
  let error: { code?: unknown; message?: unknown; request_id?: unknown; details?: unknown } = {}
  try {
    const parsed = JSON.parse(text) as { error?: typeof error }
    if (typeof parsed.error === "object" && parsed.error !== null) error = parsed.error
  } catch {
    // Not our error body (a proxy's page, a store's XML): the status speaks for itself.
  }
  const retryAfter = Number(res.headers.get("retry-after"))
  return new HttpError(
    res.status,
    typeof error.code === "string" ? error.code : `HTTP_${res.status}`,
    typeof error.message === "string" ? error.message : `${res.status} ${res.statusText}`.trim(),
    {
      ...(typeof error.request_id === "string" ? { requestId: error.request_id } : {}),
      ...(error.details === undefined ? {} : { details: error.details }),
      ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
    },
  )
}

/**
 * The error catalogue: every error Cove can show a client, integrator or operator.
 * Add the entry first, then throw it with `new AppError(code, detail)`.
 * Anything thrown that is not an AppError counts as INTERNAL: callers see only the code and a
 * request id, while the cause goes to the log.
 */

export type ErrorSpec = {
  /** HTTP status used by the function harness and the runtime. */
  readonly status: number
  /** WebSocket close code for connection-level errors (4000-4999, 1008 policy, 1011 internal). */
  readonly closeCode?: number
  /** Whether the same request may succeed if retried unchanged. */
  readonly retryable: boolean
  /** Default human-readable message; `detail` replaces it when given. */
  readonly message: string
}

export const ERRORS = {
  // Input
  INVALID_INPUT: { status: 400, retryable: false, message: "The request is invalid." },
  INVALID_JSON: { status: 400, retryable: false, message: "The body is not valid JSON." },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, message: "The body must be application/json." },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    retryable: false,
    message: "The body is larger than this endpoint accepts.",
  },
  NOT_FOUND: { status: 404, retryable: false, message: "No such resource." },
  METHOD_NOT_ALLOWED: { status: 405, retryable: false, message: "This method is not allowed here." },
  CONFLICT: { status: 409, retryable: false, message: "The resource already exists." },
  // Identity
  AUTH_REQUIRED: { status: 401, closeCode: 4001, retryable: false, message: "Authentication is required." },
  AUTH_INVALID_CREDENTIALS: {
    status: 401,
    retryable: false,
    message: "The username or password is wrong.",
  },
  AUTH_TOKEN_INVALID: { status: 401, closeCode: 4001, retryable: false, message: "The token is not valid." },
  AUTH_TOKEN_EXPIRED: { status: 401, closeCode: 4002, retryable: false, message: "The token has expired." },
  FORBIDDEN: { status: 403, closeCode: 4003, retryable: false, message: "You may not do this." },
  AUTH_USER_DISABLED: {
    status: 403,
    closeCode: 4004,
    retryable: false,
    message: "This account is disabled.",
  },
  AUTH_USERNAME_TAKEN: { status: 409, retryable: false, message: "That username is taken." },
  AUTH_REGISTRATION_CLOSED: {
    status: 403,
    retryable: false,
    message: "Only an administrator may create accounts.",
  },
  RATE_LIMITED: { status: 429, closeCode: 4029, retryable: true, message: "Too many requests; slow down." },
  // The edge: upgrade refusals, error frames and close codes; docs/protocol.md lists them for clients.
  UPGRADE_REQUIRED: { status: 426, retryable: false, message: "This path only accepts WebSocket upgrades." },
  ORIGIN_NOT_ALLOWED: { status: 403, retryable: false, message: "This web origin may not connect." },
  AUTH_SESSION_REVOKED: {
    status: 401,
    closeCode: 4005,
    retryable: false,
    message: "This session was ended; log in again.",
  },
  FIRST_FRAME_TIMEOUT: { status: 408, closeCode: 4008, retryable: true, message: "No frame came in time." },
  CONNECTION_REPLACED: {
    status: 409,
    closeCode: 4009,
    retryable: false,
    message: "A newer connection of this user replaced this one.",
  },
  SLOW_CONSUMER: {
    status: 503,
    closeCode: 4010,
    retryable: true,
    message: "The client reads too slowly; reconnect and fill gaps from history.",
  },
  FRAME_TOO_LARGE: { status: 413, closeCode: 1009, retryable: false, message: "The frame is too large." },
  INVALID_FRAME: { status: 400, retryable: false, message: "The frame is not a valid Cove frame." },
  UNKNOWN_FRAME_TYPE: { status: 400, retryable: false, message: "This frame type is not known." },
  // Files (functions/files; docs/files.md)
  FILE_TOO_LARGE: { status: 413, retryable: false, message: "The file is larger than this server accepts." },
  FILE_TYPE_NOT_ALLOWED: { status: 415, retryable: false, message: "Files of this type are not accepted." },
  FILE_NOT_UPLOADED: {
    status: 409,
    retryable: true,
    message: "The store holds no upload for this file yet; upload it, then complete.",
  },
  FILE_MISMATCH: {
    status: 422,
    retryable: false,
    message: "The stored upload differs from what was declared; it was deleted, upload the file again.",
  },
  FILE_NOT_READY: { status: 409, retryable: true, message: "The file's upload is not complete yet." },
  // Search (functions/search; docs/search.md)
  SEARCH_QUERY_EMPTY: {
    status: 400,
    retryable: false,
    message: "The search query has no words to look for (only spaces, punctuation or emoji).",
  },
  SEARCH_QUERY_TOO_LONG: { status: 400, retryable: false, message: "The search query is too long." },
  SEARCH_CURSOR_INVALID: {
    status: 400,
    retryable: false,
    message: "The cursor is not valid for this search; start again without it.",
  },
  // Platform
  FUNCTION_NOT_FOUND: { status: 404, retryable: false, message: "No function of that name is deployed." },
  FUNCTION_UNAVAILABLE: { status: 502, retryable: true, message: "The function is not answering." },
  FUNCTION_TIMEOUT: { status: 504, retryable: true, message: "The function did not answer in time." },
  UNAVAILABLE: { status: 503, closeCode: 1013, retryable: true, message: "A dependency is unavailable." },
  SHUTTING_DOWN: { status: 503, closeCode: 1012, retryable: true, message: "The server is restarting." },
  RESYNC_REQUIRED: {
    status: 503,
    closeCode: 1012,
    retryable: true,
    message: "This edge missed membership changes; reconnect to load your conversations again.",
  },
  INTERNAL: { status: 500, closeCode: 1011, retryable: true, message: "Internal error." },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

export class AppError extends Error {
  readonly code: ErrorCode
  readonly spec: ErrorSpec
  /** Structured, client-safe facts about the failure (e.g. which fields were invalid). */
  readonly details: Readonly<Record<string, unknown>> | undefined

  constructor(
    code: ErrorCode,
    detail?: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    const spec: ErrorSpec = ERRORS[code]
    super(detail ?? spec.message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = "AppError"
    this.code = code
    this.spec = spec
    this.details = options?.details
  }
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError
}

/** The JSON body every HTTP edge answers with on failure. */
export type ErrorBody = {
  error: { code: ErrorCode; message: string; request_id?: string; details?: Record<string, unknown> }
}

/** Maps anything thrown to what a caller may see. Unknown errors become INTERNAL with no detail. */
export function toErrorBody(err: unknown, requestId?: string): { status: number; body: ErrorBody } {
  const app = isAppError(err) ? err : new AppError("INTERNAL")
  const body: ErrorBody = { error: { code: app.code, message: app.message } }
  if (requestId !== undefined) body.error.request_id = requestId
  if (app.details !== undefined) body.error.details = { ...app.details }
  return { status: app.spec.status, body }
}

/** HTTP routes of the auth function (paths after /function/auth); docs/auth.md lists them. */
import { isAppError, toErrorBody } from "../../lib/errors"
import type { FnRequest, FnResponse, RouteHandler } from "../../lib/function/harness"
import { parseInput } from "../../lib/function/input"
import type { Method } from "../../lib/function/router"
import { disableUser, enableUser, rotateSigningKeyAsAdmin } from "./admin"
import { directory, jwks, login, logout, me, refresh, register } from "./handler"
import { directoryQuery, loginInput, logoutInput, refreshInput, registerInput, userIdParam } from "./input"
import type { AuthPorts } from "./ports"
import { clientAddress } from "./throttle"

/** Token answers must not be kept by any cache (RFC 6749 §5.1). */
const NO_STORE = { "cache-control": "no-store" }

const tokens = (body: unknown, status = 200): FnResponse => ({ status, body, headers: NO_STORE })

/** RATE_LIMITED also tells the client when to come back, in a Retry-After header. */
async function withRetryAfter(req: FnRequest, run: () => Promise<FnResponse>): Promise<FnResponse> {
  try {
    return await run()
  } catch (err) {
    const retryAfter = isAppError(err) && err.code === "RATE_LIMITED" ? err.details?.retry_after : undefined
    if (typeof retryAfter !== "number") throw err
    // Answered here rather than by the harness, only to add the header; logged as the harness would.
    const { status, body } = toErrorBody(err, req.requestId)
    req.log.info({ code: body.error.code, status, retryAfter }, "request refused")
    return { status, body, headers: { "retry-after": String(retryAfter) } }
  }
}

export const authRoutes: ReadonlyArray<readonly [Method, string, RouteHandler<AuthPorts>]> = [
  [
    "POST",
    "/register",
    async (req, p) =>
      tokens(await register(parseInput(registerInput, req.body), req.headers.authorization, p), 201),
  ],
  [
    "POST",
    "/login",
    (req, p) =>
      withRetryAfter(req, async () =>
        tokens(await login(parseInput(loginInput, req.body), clientAddress(req.headers), p)),
      ),
  ],
  ["POST", "/refresh", async (req, p) => tokens(await refresh(parseInput(refreshInput, req.body), p))],
  [
    "POST",
    "/logout",
    async (req, p) => {
      await logout(parseInput(logoutInput, req.body), p)
      return { status: 204 }
    },
  ],
  [
    "GET",
    "/jwks",
    async (_req, p) => ({ body: await jwks(p), headers: { "cache-control": "public, max-age=60" } }),
  ],
  ["GET", "/me", async (req, p) => ({ body: await me(req.headers.authorization, p), headers: NO_STORE })],
  [
    "GET",
    "/users",
    async (req, p) => ({
      body: await directory(parseInput(directoryQuery, req.query), req.headers.authorization, p),
      headers: { "cache-control": "private, no-cache" },
    }),
  ],
  [
    "POST",
    "/users/:id/disable",
    async (req, p) => ({
      body: await disableUser(req.headers.authorization, parseInput(userIdParam, req.params).id, p),
    }),
  ],
  [
    "POST",
    "/users/:id/enable",
    async (req, p) => ({
      body: await enableUser(req.headers.authorization, parseInput(userIdParam, req.params).id, p),
    }),
  ],
  [
    "POST",
    "/keys/rotate",
    async (req, p) => ({ body: await rotateSigningKeyAsAdmin(req.headers.authorization, p) }),
  ],
]

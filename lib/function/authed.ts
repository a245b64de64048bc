import { bearerToken } from "../auth/verify-access-token"
import type { Authenticator, Caller } from "../ports"
import type { FnRequest, FnResponse, RouteHandler } from "./harness"

/**
 * A route that knows its caller before it reads its input: without a valid bearer token the
 * answer is an AUTH_* error, never INVALID_INPUT (which would tell a stranger about the
 * request's shape).
 */
export function authed<P extends { readonly auth: Authenticator }>(
  handle: (req: FnRequest, p: P, who: Caller) => Promise<FnResponse>,
): RouteHandler<P> {
  return async (req, p) => handle(req, p, await p.auth.authenticate(bearerToken(req.headers.authorization)))
}

import { bearerToken } from "../../lib/auth/verify-access-token"
import type { RouteHandler } from "../../lib/function/harness"
import { parseInput } from "../../lib/function/input"
import type { Authenticator } from "../../lib/ports"
import { type SearchPorts, search } from "./handler"
import { searchQuery } from "./input"

export type Ports = SearchPorts & { readonly auth: Authenticator }

export const routes: ReadonlyArray<readonly ["GET", string, RouteHandler<Ports>]> = [
  [
    "GET",
    "/",
    async (req, p) => {
      const caller = await p.auth.authenticate(bearerToken(req.headers.authorization))
      return { body: await search(parseInput(searchQuery, req.query), caller, p) }
    },
  ],
]

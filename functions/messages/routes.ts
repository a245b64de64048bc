import { bearerToken } from "../../lib/auth/verify-access-token"
import type { FnRequest, RouteHandler } from "../../lib/function/harness"
import { parseInput } from "../../lib/function/input"
import type { Authenticator, Caller } from "../../lib/ports"
import { history, type MessagesPorts, send, submit } from "./handler"
import { editInput, historyQuery, reactionInput, readInput, recallInput, sendInput } from "./input"

export type Ports = MessagesPorts & { readonly auth: Authenticator }

const caller = (req: FnRequest, p: Ports): Promise<Caller> =>
  p.auth.authenticate(bearerToken(req.headers.authorization))

export const routes: ReadonlyArray<readonly ["GET" | "POST", string, RouteHandler<Ports>]> = [
  [
    "GET",
    "/",
    async (req, p) => ({ body: await history(parseInput(historyQuery, req.query), await caller(req, p), p) }),
  ],
  [
    "POST",
    "/",
    async (req, p) => ({
      status: 202,
      body: await send(parseInput(sendInput, req.body), await caller(req, p), req.requestId, p),
    }),
  ],
  ...(
    [
      ["/edits", (b: unknown) => ({ type: "edit" as const, ...parseInput(editInput, b) })],
      ["/recalls", (b: unknown) => ({ type: "recall" as const, ...parseInput(recallInput, b) })],
      ["/reactions", (b: unknown) => ({ type: "reaction" as const, ...parseInput(reactionInput, b) })],
      ["/reads", (b: unknown) => ({ type: "read" as const, ...parseInput(readInput, b) })],
    ] as const
  ).map(
    ([path, parse]) =>
      [
        "POST",
        path,
        async (req: FnRequest, p: Ports) => ({
          status: 202,
          body: await submit(parse(req.body), await caller(req, p), req.requestId, p),
        }),
      ] as const,
  ),
]

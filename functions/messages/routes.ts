import { authed } from "../../lib/function/authed"
import type { RouteHandler } from "../../lib/function/harness"
import { parseInput } from "../../lib/function/input"
import type { Authenticator } from "../../lib/ports"
import { history, type MessagesPorts, send, submit } from "./handler"
import { editInput, historyQuery, reactionInput, readInput, recallInput, sendInput } from "./input"

export type Ports = MessagesPorts & { readonly auth: Authenticator }

export const routes: ReadonlyArray<readonly ["GET" | "POST", string, RouteHandler<Ports>]> = [
  [
    "GET",
    "/",
    authed<Ports>(async (req, p, who) => ({
      body: await history(parseInput(historyQuery, req.query), who, p),
    })),
  ],
  [
    "POST",
    "/",
    authed<Ports>(async (req, p, who) => ({
      status: 202,
      body: await send(parseInput(sendInput, req.body), who, req.requestId, p),
    })),
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
        authed<Ports>(async (req, p, who) => ({
          status: 202,
          body: await submit(parse(req.body), who, req.requestId, p),
        })),
      ] as const,
  ),
]

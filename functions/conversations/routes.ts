import { authed } from "../../lib/function/authed"
import type { FnRequest, RouteHandler } from "../../lib/function/harness"
import { parseInput } from "../../lib/function/input"
import type { Authenticator } from "../../lib/ports"
import {
  addMembers,
  type ConversationPorts,
  create,
  get,
  ids,
  leave,
  list,
  members,
  removeMember,
  rename,
  setRole,
} from "./handler"
import {
  addMembersInput,
  conversationParam,
  createInput,
  listQuery,
  membersQuery,
  renameInput,
  setRoleInput,
  userParam,
} from "./input"

export type Ports = ConversationPorts & { readonly auth: Authenticator }

const conv = (req: FnRequest) => parseInput(conversationParam, req.params.id)

export const routes: ReadonlyArray<
  readonly ["GET" | "POST" | "PATCH" | "DELETE", string, RouteHandler<Ports>]
> = [
  [
    "POST",
    "/",
    authed(async (req, p, who) => {
      const { status, body } = await create(parseInput(createInput(p.maxMembers), req.body), who, p)
      return { status, body }
    }),
  ],
  [
    "GET",
    "/",
    authed(async (req, p, who) => {
      const q = parseInput(listQuery, req.query)
      return {
        body: q.view === "ids" ? await ids(who, p) : await list(who, { limit: q.limit, after: q.cursor }, p),
      }
    }),
  ],
  ["GET", "/:id", authed(async (req, p, who) => ({ body: await get(conv(req), who, p) }))],
  [
    "PATCH",
    "/:id",
    authed(async (req, p, who) => ({
      body: await rename(conv(req), parseInput(renameInput, req.body).title, who, p),
    })),
  ],
  [
    "GET",
    "/:id/members",
    authed(async (req, p, who) => {
      const q = parseInput(membersQuery, req.query)
      return { body: await members(conv(req), q.after, q.limit, who, p) }
    }),
  ],
  [
    "POST",
    "/:id/members",
    authed(async (req, p, who) => ({
      body: await addMembers(conv(req), parseInput(addMembersInput, req.body).members, who, p),
    })),
  ],
  [
    "DELETE",
    "/:id/members/:user",
    authed(async (req, p, who) => ({
      body: await removeMember(conv(req), parseInput(userParam, req.params.user), who, p),
    })),
  ],
  [
    "PATCH",
    "/:id/members/:user",
    authed(async (req, p, who) => ({
      body: await setRole(
        conv(req),
        parseInput(userParam, req.params.user),
        parseInput(setRoleInput, req.body).role,
        who,
        p,
      ),
    })),
  ],
  ["POST", "/:id/leave", authed(async (req, p, who) => ({ body: await leave(conv(req), who, p) }))],
]

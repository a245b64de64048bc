import { bearerToken } from "../../lib/auth/verify-access-token"
import type { FnRequest, RouteHandler } from "../../lib/function/harness"
import { parseInput } from "../../lib/function/input"
import type { Authenticator, Caller } from "../../lib/ports"
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

const caller = (req: FnRequest, p: Ports): Promise<Caller> =>
  p.auth.authenticate(bearerToken(req.headers.authorization))
const conv = (req: FnRequest) => parseInput(conversationParam, req.params.id)

export const routes: ReadonlyArray<
  readonly ["GET" | "POST" | "PATCH" | "DELETE", string, RouteHandler<Ports>]
> = [
  [
    "POST",
    "/",
    async (req, p) => {
      const who = await caller(req, p)
      const { status, body } = await create(parseInput(createInput(p.maxMembers), req.body), who, p)
      return { status, body }
    },
  ],
  [
    "GET",
    "/",
    async (req, p) => {
      const q = parseInput(listQuery, req.query)
      const who = await caller(req, p)
      return { body: q.view === "ids" ? await ids(who, p) : await list(who, q.limit, p) }
    },
  ],
  ["GET", "/:id", async (req, p) => ({ body: await get(conv(req), await caller(req, p), p) })],
  [
    "PATCH",
    "/:id",
    async (req, p) => ({
      body: await rename(conv(req), parseInput(renameInput, req.body).title, await caller(req, p), p),
    }),
  ],
  [
    "GET",
    "/:id/members",
    async (req, p) => {
      const q = parseInput(membersQuery, req.query)
      return { body: await members(conv(req), q.after, q.limit, await caller(req, p), p) }
    },
  ],
  [
    "POST",
    "/:id/members",
    async (req, p) => ({
      body: await addMembers(
        conv(req),
        parseInput(addMembersInput, req.body).members,
        await caller(req, p),
        p,
      ),
    }),
  ],
  [
    "DELETE",
    "/:id/members/:user",
    async (req, p) => ({
      body: await removeMember(conv(req), parseInput(userParam, req.params.user), await caller(req, p), p),
    }),
  ],
  [
    "PATCH",
    "/:id/members/:user",
    async (req, p) => ({
      body: await setRole(
        conv(req),
        parseInput(userParam, req.params.user),
        parseInput(setRoleInput, req.body).role,
        await caller(req, p),
        p,
      ),
    }),
  ],
  ["POST", "/:id/leave", async (req, p) => ({ body: await leave(conv(req), await caller(req, p), p) })],
]

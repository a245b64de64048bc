/**
 * Conversations: direct (one per pair) and groups with roles, membership changes as events.
 * Non-members get NOT_FOUND, never FORBIDDEN, so that ids reveal nothing.
 */
import { AppError } from "../../lib/errors"
import type {
  Caller,
  ControlOutbox,
  Conversation,
  ConversationPosition,
  ConversationStore,
  ConversationSummary,
  ConversationUpdates,
  Member,
  Role,
} from "../../lib/ports"
import { encodeCursor } from "./cursor"
import type { CreateInput } from "./input"

export type ConversationPorts = {
  /** Changes of members queue their events for the edges; `control` publishes them. */
  readonly conversations: ConversationStore
  readonly control: ControlOutbox
  readonly updates: ConversationUpdates
  readonly now: () => Date
  readonly newId: () => string
  /** Most members a group may have, its owner included. */
  readonly maxMembers: number
}

export type ConversationView = {
  id: string
  kind: "direct" | "group"
  title: string | null
  created_by: string
  created_at: string
}

function view(c: Conversation): ConversationView {
  return {
    id: c.id,
    kind: c.kind,
    title: c.title,
    created_by: c.createdBy,
    created_at: c.createdAt.toISOString(),
  }
}

function memberView(m: Member) {
  return {
    id: m.userId,
    username: m.username,
    role: m.role,
    joined_at: m.joinedAt.toISOString(),
    read_seq: m.readSeq,
  }
}

function summaryView(s: ConversationSummary) {
  return {
    ...view(s),
    role: s.role,
    unread: s.unread,
    last_read_seq: s.lastReadSeq,
    last_message: s.lastMessage,
  }
}

async function requireRole(
  p: ConversationPorts,
  conv: string,
  caller: Caller,
  allowed?: readonly Role[],
): Promise<Role> {
  const role = await p.conversations.roleOf(conv, caller.userId)
  if (role === undefined) throw new AppError("NOT_FOUND", "No such conversation.")
  if (allowed !== undefined) requireAllowed(role, allowed)
  return role
}

function requireAllowed(role: Role, allowed: readonly Role[]): void {
  if (!allowed.includes(role)) throw new AppError("FORBIDDEN", `Only ${allowed.join(" or ")}s may do this.`)
}

/**
 * A change to a group's members or title by someone with one of `allowed` roles. Membership is
 * checked first (non-members learn nothing, not even the kind), then the kind (a direct
 * conversation has no roles to fail on), then the role.
 */
async function requireGroupRole(
  p: ConversationPorts,
  conv: string,
  caller: Caller,
  allowed: readonly Role[],
): Promise<Role> {
  const role = await requireRole(p, conv, caller)
  await requireGroup(p, conv)
  requireAllowed(role, allowed)
  return role
}

async function requireGroup(p: ConversationPorts, conv: string): Promise<Conversation> {
  const c = await p.conversations.get(conv)
  if (c === undefined) throw new AppError("NOT_FOUND", "No such conversation.")
  if (c.kind !== "group") throw new AppError("INVALID_INPUT", "Direct conversations have fixed members.")
  return c
}

async function requireActive(p: ConversationPorts, ids: readonly string[]): Promise<void> {
  const active = await p.conversations.activeUsers(ids)
  const unknown = ids.filter((id) => !active.has(id))
  if (unknown.length > 0) {
    throw new AppError("INVALID_INPUT", "Some members are not active users.", {
      details: { unknown_users: unknown },
    })
  }
}

export async function create(
  input: CreateInput,
  caller: Caller,
  p: ConversationPorts,
): Promise<{ status: 200 | 201; body: ConversationView }> {
  const now = p.now()
  if (input.kind === "direct") {
    const other = input.members[0] as string
    if (other === caller.userId)
      throw new AppError("INVALID_INPUT", "A direct conversation needs another member.")
    await requireActive(p, [other])
    const { conversation, created } = await p.conversations.openDirect(p.newId(), caller.userId, other, now)
    if (created) await p.control.flush(conversation.id)
    return { status: created ? 201 : 200, body: view(conversation) }
  }
  const members = [...new Set(input.members)].filter((m) => m !== caller.userId)
  await requireActive(p, members)
  const conversation = await p.conversations.createGroup(p.newId(), input.title, caller.userId, members, now)
  await p.control.flush(conversation.id)
  return { status: 201, body: view(conversation) }
}

/**
 * A page of the caller's conversations, the most recently active first. Paging is by position,
 * not offset: a conversation that becomes active moves to the front without shifting the others,
 * so none is skipped or repeated because of it (docs/conversations.md, "Listing").
 */
export async function list(
  caller: Caller,
  page: { limit: number; after: ConversationPosition | undefined },
  p: ConversationPorts,
) {
  const { items, next } = await p.conversations.listFor(caller.userId, page)
  return { items: items.map(summaryView), next_cursor: next === undefined ? null : encodeCursor(next) }
}

/** Every conversation of the caller, for edges: ids, and member counts aligned with them. */
export async function ids(caller: Caller, p: ConversationPorts) {
  const rows = await p.conversations.idsWithSizesFor(caller.userId)
  return { ids: rows.map((r) => r.id), member_counts: rows.map((r) => r.members) }
}

export async function get(conv: string, caller: Caller, p: ConversationPorts) {
  const role = await requireRole(p, conv, caller)
  const c = await p.conversations.get(conv)
  if (c === undefined) throw new AppError("NOT_FOUND", "No such conversation.")
  return { ...view(c), role }
}

export async function members(
  conv: string,
  after: string | undefined,
  limit: number,
  caller: Caller,
  p: ConversationPorts,
) {
  await requireRole(p, conv, caller)
  const page = await p.conversations.members(conv, after, limit)
  return {
    items: page.map(memberView),
    next_after: page.length === limit ? (page.at(-1)?.userId ?? null) : null,
  }
}

export async function addMembers(conv: string, ids: readonly string[], caller: Caller, p: ConversationPorts) {
  await requireGroupRole(p, conv, caller, ["owner", "admin"])
  await requireActive(p, ids)
  const added = await p.conversations.addMembers(conv, ids, p.now(), p.maxMembers, caller.userId)
  if (added === "full") {
    throw new AppError("INVALID_INPUT", `A group has at most ${p.maxMembers} members.`, {
      details: { max_members: p.maxMembers },
    })
  }
  if (added.length > 0) await p.control.flush(conv)
  return { added }
}

export async function removeMember(conv: string, userId: string, caller: Caller, p: ConversationPorts) {
  const callerRole = await requireGroupRole(p, conv, caller, ["owner", "admin"])
  const targetRole = await p.conversations.roleOf(conv, userId)
  if (targetRole === undefined) throw new AppError("NOT_FOUND", "That user is not a member.")
  if (targetRole === "owner" || (targetRole === "admin" && callerRole !== "owner")) {
    throw new AppError("FORBIDDEN", "Only the owner may remove an admin, and nobody the owner.")
  }
  if (await p.conversations.removeMember(conv, userId, caller.userId)) await p.control.flush(conv)
  return { removed: [userId] }
}

export async function leave(conv: string, caller: Caller, p: ConversationPorts) {
  await requireRole(p, conv, caller)
  await requireGroup(p, conv)
  if (await p.conversations.removeMember(conv, caller.userId, caller.userId)) await p.control.flush(conv)
  return { left: conv }
}

export async function rename(conv: string, title: string, caller: Caller, p: ConversationPorts) {
  await requireGroupRole(p, conv, caller, ["owner", "admin"])
  await p.conversations.rename(conv, title)
  await p.updates.updated({ conv, title, by: caller.userId })
  return get(conv, caller, p)
}

export async function setRole(
  conv: string,
  userId: string,
  role: "admin" | "member",
  caller: Caller,
  p: ConversationPorts,
) {
  await requireGroupRole(p, conv, caller, ["owner"])
  if ((await p.conversations.roleOf(conv, userId)) === "owner")
    throw new AppError("FORBIDDEN", "The owner's role cannot be changed.")
  if (!(await p.conversations.setRole(conv, userId, role)))
    throw new AppError("NOT_FOUND", "That user is not a member.")
  await p.updates.updated({ conv, role: { user: userId, role }, by: caller.userId })
  return { id: userId, role }
}

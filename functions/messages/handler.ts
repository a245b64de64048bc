/**
 * History and integrator sends. Every request is checked against membership; non-members get
 * NOT_FOUND so that conversation ids reveal nothing.
 */
import { AppError } from "../../lib/errors"
import type { Caller, ConversationStore, HistoryStore, InboundLog } from "../../lib/ports"
import type { InboundEvent, NewMessage, StoredEvent } from "../../lib/protocol/events"
import type { HistoryQueryInput, SendInput } from "./input"

export type MessagesPorts = {
  readonly history: HistoryStore
  readonly conversations: Pick<ConversationStore, "roleOf">
  readonly inbound: InboundLog
  readonly now: () => Date
}

async function requireMember(p: MessagesPorts, conv: string, caller: Caller): Promise<void> {
  if ((await p.conversations.roleOf(conv, caller.userId)) === undefined) {
    throw new AppError("NOT_FOUND", "No such conversation.")
  }
}

export type HistoryPage = {
  items: StoredEvent[]
  /** Forward: pass as `after` for the next page (null when caught up). */
  next_after: number | null
  /** Backward: pass as `before` for the previous page (null at the beginning). */
  prev_before: number | null
}

export async function history(q: HistoryQueryInput, caller: Caller, p: MessagesPorts): Promise<HistoryPage> {
  await requireMember(p, q.conv, caller)
  if (q.after !== undefined) {
    const forward = { direction: "forward", after: q.after, limit: q.limit } as const
    const { items, more } = await p.history.history(q.conv, forward, caller.userId)
    return { items, next_after: more ? (items.at(-1)?.seq ?? null) : null, prev_before: null }
  }
  const backward = { direction: "backward", before: q.before, limit: q.limit } as const
  const { items, more } = await p.history.history(q.conv, backward, caller.userId)
  return { items, next_after: null, prev_before: more ? (items[0]?.seq ?? null) : null }
}

/**
 * Accepted means durable: the answer comes after JetStream stored the message. Retrying with
 * the same id is safe and answers `duplicate: true` within the dedup window.
 */
export async function send(input: SendInput, caller: Caller, requestId: string, p: MessagesPorts) {
  await requireMember(p, input.conv, caller)
  const message: NewMessage = {
    v: 1,
    type: "message",
    id: input.id,
    conv: input.conv,
    from: caller.userId,
    body: input.body,
    ...(input.reply_to === undefined ? {} : { reply_to: input.reply_to }),
    ts: p.now().toISOString(),
  }
  const { duplicate } = await p.inbound.append(message, requestId)
  return { id: message.id, conv: message.conv, status: "accepted" as const, duplicate }
}

type Submitted = {
  [K in InboundEvent["type"]]: Omit<Extract<InboundEvent, { type: K }>, "v" | "from" | "ts">
}[InboundEvent["type"]]

/**
 * Edits, recalls, reactions and read receipts, as the socket sends them. Accepted means stored
 * in the log; whether the sender may do it (own message, admin, target exists) is decided by the
 * sequencer, which refuses what is not allowed.
 */
export async function submit(event: Submitted, caller: Caller, requestId: string, p: MessagesPorts) {
  await requireMember(p, event.conv, caller)
  const full = { ...event, v: 1, from: caller.userId, ts: p.now().toISOString() } as InboundEvent
  const { duplicate } = await p.inbound.append(full, requestId)
  return {
    ...("id" in full ? { id: full.id } : {}),
    conv: full.conv,
    type: full.type,
    status: "accepted" as const,
    duplicate,
  }
}

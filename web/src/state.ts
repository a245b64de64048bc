/**
 * What the page shows, kept apart from how it is drawn: conversations with their messages,
 * members, unread counts, read positions, typing and presence. Views read it and re-render on
 * `changed`; the app (app.ts) feeds it from the SDK's events and HTTP answers.
 */
import type {
  MessageBody,
  OutboxEntry,
  StoredEdit,
  StoredEvent,
  StoredMessage,
  StoredReaction,
  StoredRecall,
} from "../../sdk/src/types"

export type ConversationSummary = {
  readonly id: string
  readonly kind: "direct" | "group"
  readonly title: string | null
  readonly unread: number
  readonly last_read_seq: number
  readonly last_message: StoredMessage | null
}

export type ChatMessage = {
  readonly id: string
  readonly conv: string
  /** undefined while only in the outbox (not stored yet). */
  seq: number | undefined
  readonly from: string
  ts: string
  body: MessageBody | null
  readonly replyTo: string | undefined
  edited: boolean
  recalled: boolean
  reactions: Map<string, number>
  /** Reactions of this user seen in this session (history only has counts). */
  mine: Set<string>
  /** The outbox state while it is not stored yet. */
  outbox: "pending" | "acked" | "failed" | undefined
  /** Bumped on every change, so views redraw only what changed. */
  version: number
}

export type Conversation = {
  summary: ConversationSummary
  unread: number
  lastMessage: ChatMessage | undefined
  members: Map<string, string> | undefined
  messages: Map<string, ChatMessage>
  /** Seq of the latest event applied (messages, edits, recalls, reactions). */
  lastSeq: number
  historyLoaded: boolean
  /** How far each other member has read. */
  readBy: Map<string, number>
  /** Users typing now, with when their typing indicator expires (ms). */
  typing: Map<string, number>
}

export type Change = { readonly list?: true; readonly conv?: string }

export class AppState {
  readonly conversations = new Map<string, Conversation>()
  readonly presence = new Map<string, boolean>()
  current: string | undefined
  private readonly listeners = new Set<(change: Change) => void>()

  constructor(readonly me: string) {}

  onChange(listener: (change: Change) => void): void {
    this.listeners.add(listener)
  }

  changed(change: Change): void {
    for (const l of this.listeners) l(change)
  }

  /** The list as the functions answer it; keeps what is already loaded of known conversations. */
  setSummaries(items: readonly ConversationSummary[]): void {
    for (const summary of items) {
      const known = this.conversations.get(summary.id)
      // The summary counts what was stored when it was read: live events up to its last message
      // are in it already (the SDK emits a conversation's first events whenever it meets them).
      const counted = summary.last_message?.seq ?? 0
      if (known !== undefined) {
        known.summary = summary
        if (!known.historyLoaded) {
          known.unread = summary.unread
          known.lastSeq = Math.max(known.lastSeq, counted)
        }
        continue
      }
      this.conversations.set(summary.id, {
        summary,
        unread: summary.unread,
        lastMessage: summary.last_message === null ? undefined : toChatMessage(summary.last_message),
        members: undefined,
        messages: new Map(),
        lastSeq: counted,
        historyLoaded: false,
        readBy: new Map(),
        typing: new Map(),
      })
    }
    this.changed({ list: true })
  }

  /** Conversations, the latest activity first. */
  ordered(): Conversation[] {
    const when = (c: Conversation) => c.lastMessage?.ts ?? ""
    return [...this.conversations.values()].sort((a, b) => when(b).localeCompare(when(a)))
  }

  /** A page of history (oldest first). Edits, recalls and reactions are already folded into messages. */
  applyHistory(conv: string, items: readonly StoredEvent[]): void {
    const c = this.conversations.get(conv)
    if (c === undefined) return
    for (const item of items) {
      if (item.type === "message") {
        const m = toChatMessage(item)
        const existing = c.messages.get(m.id)
        if (existing !== undefined) m.mine = existing.mine
        c.messages.set(m.id, m)
        if (c.lastMessage === undefined || (c.lastMessage.seq ?? 0) <= item.seq) c.lastMessage = m
      }
      c.lastSeq = Math.max(c.lastSeq, item.seq)
    }
    c.historyLoaded = true
    this.changed({ conv, list: true })
  }

  /** A live event from the SDK: each seq once, in order. */
  applyEvent(event: StoredEvent): void {
    const c = this.conversations.get(event.conv)
    if (c === undefined || event.seq <= c.lastSeq) return
    c.lastSeq = event.seq
    switch (event.type) {
      case "message":
        this.addMessage(c, event)
        break
      case "edit":
        this.editMessage(c, event)
        break
      case "recall":
        this.recallMessage(c, event)
        break
      case "reaction":
        this.react(c, event)
        break
    }
    this.changed({ conv: event.conv, list: true })
  }

  private addMessage(c: Conversation, event: StoredMessage): void {
    const m = toChatMessage(event)
    const pending = c.messages.get(m.id)
    if (pending !== undefined) m.version = pending.version + 1
    c.messages.set(m.id, m)
    c.lastMessage = m
    if (event.from !== this.me && this.current !== event.conv) c.unread++
  }

  private editMessage(c: Conversation, event: StoredEdit): void {
    const m = c.messages.get(event.target)
    if (m === undefined) return
    m.body = event.body
    m.edited = true
    m.version++
  }

  private recallMessage(c: Conversation, event: StoredRecall): void {
    const m = c.messages.get(event.target)
    if (m === undefined) return
    m.body = null
    m.recalled = true
    m.reactions = new Map()
    m.version++
  }

  private react(c: Conversation, event: StoredReaction): void {
    const m = c.messages.get(event.target)
    if (m === undefined) return
    const n = (m.reactions.get(event.emoji) ?? 0) + (event.op === "add" ? 1 : -1)
    if (n > 0) m.reactions.set(event.emoji, n)
    else m.reactions.delete(event.emoji)
    if (event.from === this.me) {
      if (event.op === "add") m.mine.add(event.emoji)
      else m.mine.delete(event.emoji)
    }
    m.version++
  }

  /** An outbox change: a send shows at once as pending, and disappears into the stored message. */
  applyOutbox(entry: OutboxEntry): void {
    if (entry.frame.type !== "send") return
    const c = this.conversations.get(entry.conv)
    if (c === undefined) return
    const existing = c.messages.get(entry.frame.id)
    if (existing !== undefined && existing.seq !== undefined) return
    if (entry.state === "stored") return
    if (existing !== undefined) {
      existing.outbox = entry.state
      existing.version++
    } else {
      c.messages.set(entry.frame.id, {
        id: entry.frame.id,
        conv: entry.conv,
        seq: undefined,
        from: this.me,
        ts: new Date(entry.created_at).toISOString(),
        body: entry.frame.body,
        replyTo: entry.frame.reply_to,
        edited: false,
        recalled: false,
        reactions: new Map(),
        mine: new Set(),
        outbox: entry.state,
        version: 0,
      })
    }
    this.changed({ conv: entry.conv })
  }

  /** Drops a pending message the user discarded. */
  discard(conv: string, id: string): void {
    const c = this.conversations.get(conv)
    const m = c?.messages.get(id)
    if (c === undefined || m === undefined || m.seq !== undefined) return
    c.messages.delete(id)
    this.changed({ conv })
  }

  read(conv: string, user: string, seq: number): void {
    const c = this.conversations.get(conv)
    if (c === undefined || user === this.me) return
    if ((c.readBy.get(user) ?? 0) >= seq) return
    c.readBy.set(user, seq)
    this.changed({ conv })
  }

  /** Messages in order: stored ones by seq, then those still in the outbox by creation. */
  messagesOf(conv: string): ChatMessage[] {
    const c = this.conversations.get(conv)
    if (c === undefined) return []
    const all = [...c.messages.values()]
    const stored = all.filter((m) => m.seq !== undefined).sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))
    const pending = all.filter((m) => m.seq === undefined).sort((a, b) => a.ts.localeCompare(b.ts))
    return [...stored, ...pending]
  }

  /** Someone's name as the conversation's members know it. */
  nameOf(conv: string, user: string): string {
    return this.conversations.get(conv)?.members?.get(user) ?? user
  }

  /** A direct conversation is named after the other member; a group by its title. */
  titleOf(c: Conversation): string {
    if (c.summary.kind === "group") return c.summary.title ?? "Group"
    for (const [id, name] of c.members ?? []) if (id !== this.me) return name
    return "Direct chat"
  }

  /** The other member of a direct conversation. */
  peerOf(c: Conversation): string | undefined {
    if (c.summary.kind !== "direct") return undefined
    for (const id of c.members?.keys() ?? []) if (id !== this.me) return id
    return undefined
  }
}

function toChatMessage(m: StoredMessage): ChatMessage {
  return {
    id: m.id,
    conv: m.conv,
    seq: m.seq,
    from: m.from,
    ts: m.ts,
    body: m.body,
    replyTo: m.reply_to,
    edited: m.edited_at !== undefined,
    recalled: m.recalled === true || m.body === null,
    reactions: new Map(Object.entries(m.reactions ?? {})),
    mine: new Set(),
    outbox: undefined,
    version: 0,
  }
}

/** One line for a conversation list or a reply quote. */
export function preview(m: ChatMessage | undefined): string {
  if (m === undefined) return ""
  if (m.recalled || m.body === null) return "Message recalled"
  if (m.body.kind === "text") return m.body.text
  return m.body.caption === undefined ? "📎 File" : `📎 ${m.body.caption}`
}

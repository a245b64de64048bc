/**
 * The SDK's public types. Protocol shapes come from lib/protocol as type-only imports, so the
 * bundles carry none of its runtime (zod).
 */
import type {
  ConversationUpdate,
  MembershipEvent,
  MessageBody,
  ReadReceipt,
  StoredEvent,
} from "../../lib/protocol/events"
import type { ConnectionLimits } from "../../lib/protocol/frames"

export type {
  ConversationUpdate,
  MembershipEvent,
  MessageBody,
  ReadReceipt,
  StoredEdit,
  StoredEvent,
  StoredMessage,
  StoredReaction,
  StoredRecall,
} from "../../lib/protocol/events"
export type { ConnectionLimits, FrameErrorCode } from "../../lib/protocol/frames"

/** What the auth function answers to register, login and refresh, with `expires_at` in ms since the epoch. */
export type Tokens = {
  readonly access_token: string
  readonly refresh_token: string
  readonly expires_at: number
}

export type User = { readonly id: string; readonly username: string }

/** A synchronous key-value store (localStorage has this shape); values are JSON text. */
export type Storage = {
  get(key: string): string | undefined
  set(key: string, value: string): void
  remove(key: string): void
}

/** What the SDK reads from WebSocket events: `data` (message), `code` and `reason` (close), `message` (error). */
export type SocketEvent = {
  readonly data?: unknown
  readonly code?: number
  readonly reason?: string
  readonly message?: unknown
}

/** The part of a WebSocket (the browser's, or the `ws` package's) that the SDK uses. */
export type WebSocketLike = {
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: "message" | "close" | "error", listener: (ev: SocketEvent) => void): void
}

/** `new WebSocket(url)` in browsers; `new WebSocket(url, { headers })` with the `ws` package. */
export type WebSocketConstructor = new (
  url: string,
  options?: { headers: Record<string, string> },
) => WebSocketLike

export type ConnectionState = "connecting" | "open" | "closed"

/** Why the connection is in its state: the last close code and reason, and when the next attempt is. */
export type ConnectionInfo = {
  readonly code?: number
  readonly reason?: string
  /** Set while a reconnect is scheduled. */
  readonly retry_in_ms?: number
  /** The edge's hello on "open". */
  readonly session?: string
  readonly limits?: ConnectionLimits
}

export type OutboxKind = "send" | "edit" | "recall" | "react"
export type OutboxState = "pending" | "acked" | "stored" | "failed"

/** A frame that changes a conversation, as the SDK sends it (docs/protocol.md). */
export type OutboxFrame =
  | { type: "send"; id: string; conv: string; body: MessageBody; reply_to?: string }
  | { type: "edit"; id: string; conv: string; target: string; body: MessageBody }
  | { type: "recall"; id: string; conv: string; target: string }
  | { type: "react"; id: string; conv: string; target: string; emoji: string; op: "add" | "remove" }

export type OutboxEntry = {
  readonly id: string
  readonly conv: string
  readonly kind: OutboxKind
  readonly frame: OutboxFrame
  readonly state: OutboxState
  /** Why it failed (state "failed"), or the last transient error while pending. */
  readonly error?: { readonly code: string; readonly message: string }
  /** ms since the epoch. */
  readonly created_at: number
  /** Attempts so far (frames written to a socket). */
  readonly attempts: number
}

export type TypingEvent = { readonly conv: string; readonly user: string }
export type PresenceEvent = { readonly user: string; readonly online: boolean }

/** Every event the client emits, with its handler's arguments. */
export type ClientEvents = {
  message: [Extract<StoredEvent, { type: "message" }>]
  edit: [Extract<StoredEvent, { type: "edit" }>]
  recall: [Extract<StoredEvent, { type: "recall" }>]
  reaction: [Extract<StoredEvent, { type: "reaction" }>]
  read: [ReadReceipt]
  typing: [TypingEvent]
  presence: [PresenceEvent]
  membership: [MembershipEvent]
  /** A group renamed (`title`) or a member's role changed (`role`). */
  conversation: [ConversationUpdate]
  outbox: [OutboxEntry]
  connection: [ConnectionState, ConnectionInfo?]
  tokens: [Tokens]
  error: [Error]
}

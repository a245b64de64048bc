/**
 * Conversation frames on a socket: membership is checked at the door of every frame, then the
 * event is appended to JetStream and acknowledged only once stored (ARCHITECTURE invariant 1),
 * or, for typing, relayed to the members and forgotten. Also keeps each socket subscribed to
 * the deliveries of the user's conversations.
 */
import { randomUUID } from "node:crypto"
import type { Logger } from "../lib/log"
import type { InboundLog } from "../lib/ports"
import type { InboundEvent, MembershipEvent } from "../lib/protocol/events"
import type { ConversationFrame, ErrorFrame, ServerFrame, WhoFrame } from "../lib/protocol/frames"
import type { Conn } from "./connections"
import type { Fanout } from "./fanout"
import type { Memberships } from "./memberships"
import type { EdgeMetrics } from "./metrics"
import type { Presence } from "./presence"
import type { Socket } from "./socket"

export type MessagingOptions = {
  readonly memberships: Memberships
  readonly fanout: Fanout
  readonly presence: Presence
  /**
   * Presence changes are announced only in conversations of at most this many members: in an
   * all-company group every login would otherwise reach everyone (N logins × N members).
   * Clients ask `who` there instead.
   */
  readonly presenceMaxMembers: number
  readonly inbound: InboundLog
  /** Publishes an ephemeral frame (typing) to a conversation's members on every edge. */
  readonly relay: (conv: string, frame: object) => void
  readonly metrics: EdgeMetrics
  readonly now: () => Date
  readonly log: Logger
}

type Reply = (socket: Socket<Conn>, frame: ServerFrame) => void

function failure(code: ErrorFrame["code"], message: string, frame: ConversationFrame): ErrorFrame {
  return {
    type: "error",
    code,
    message,
    ...("id" in frame ? { id: frame.id } : {}),
    ...(frame.ref === undefined ? {} : { ref: frame.ref }),
  }
}

function toEvent(
  frame: Exclude<ConversationFrame, { type: "typing" }>,
  from: string,
  ts: string,
): InboundEvent {
  const base = { v: 1 as const, conv: frame.conv, from, ts }
  switch (frame.type) {
    case "send":
      return {
        ...base,
        type: "message",
        id: frame.id,
        body: frame.body,
        ...(frame.reply_to === undefined ? {} : { reply_to: frame.reply_to }),
      }
    case "edit":
      return { ...base, type: "edit", id: frame.id, target: frame.target, body: frame.body }
    case "recall":
      return { ...base, type: "recall", id: frame.id, target: frame.target }
    case "react":
      return {
        ...base,
        type: "reaction",
        id: frame.id,
        target: frame.target,
        emoji: frame.emoji,
        op: frame.op,
      }
    case "read":
      return { ...base, type: "read", seq: frame.seq }
  }
}

export class Messaging {
  constructor(private readonly o: MessagingOptions) {}

  /**
   * Subscribes a new socket to the deliveries of every conversation of its user, calls
   * `subscribed` once NATS has the subscriptions, then announces the user's presence.
   */
  async opened(socket: Socket<Conn>, subscribed: () => void): Promise<void> {
    const userId = socket.data.identity.userId
    const conversations = await this.o.memberships.of(userId, socket.data.token)
    if (socket.data.gone) return
    for (const conv of conversations) this.o.fanout.join(socket, conv)
    this.o.metrics.conversations.set(this.o.fanout.size)
    await this.o.fanout.subscribed()
    if (socket.data.gone) return
    subscribed()
    // Presence is best effort: a socket that works is not closed because the bucket is not.
    const announceIn = this.o.memberships.withAtMost(userId, conversations, this.o.presenceMaxMembers)
    await this.o.presence.arrived(userId, announceIn).catch((err: unknown) => {
      this.o.log.warn({ err, user: userId }, "presence not updated")
    })
  }

  closed(socket: Socket<Conn>, lastOfUser: boolean): void {
    this.o.fanout.closed(socket)
    const userId = socket.data.identity.userId
    if (lastOfUser) {
      const known = this.o.memberships.known(userId)
      this.o.presence.left(userId, this.o.memberships.withAtMost(userId, known, this.o.presenceMaxMembers))
      this.o.memberships.forget(userId)
    }
    this.o.metrics.conversations.set(this.o.fanout.size)
  }

  async who(socket: Socket<Conn>, frame: WhoFrame, reply: Reply): Promise<void> {
    try {
      const users = await this.o.presence.online(frame.users)
      reply(socket, { type: "who", users, ...(frame.ref === undefined ? {} : { ref: frame.ref }) })
    } catch (err) {
      this.o.log.warn({ err }, "presence query failed")
      reply(socket, {
        type: "error",
        code: "UNAVAILABLE",
        message: "Presence is not available now.",
        ...(frame.ref === undefined ? {} : { ref: frame.ref }),
      })
    }
  }

  /**
   * A membership event for `userId`: their sockets here start or stop receiving the
   * conversation, and are told themselves. The conversation's own copy of the event cannot
   * reach an added user (not subscribed yet when it is published) and may miss a removed one.
   */
  async membershipChanged(
    userId: string,
    event: MembershipEvent,
    joined: boolean,
    sockets: readonly Socket<Conn>[],
  ): Promise<void> {
    if (!(await this.o.memberships.changed(userId, event.conv, joined, event.members))) return
    const frame = JSON.stringify(event)
    for (const socket of sockets) {
      if (joined) {
        this.o.fanout.join(socket, event.conv)
        socket.send(frame)
      } else {
        socket.send(frame)
        this.o.fanout.leave(socket, event.conv)
      }
    }
    this.o.metrics.conversations.set(this.o.fanout.size)
    // A user online here who joins: the conversation's members hear it as they would have had
    // the user connected after joining. Best effort, like every presence change.
    if (
      joined &&
      sockets.length > 0 &&
      this.o.memberships.withAtMost(userId, new Set([event.conv]), this.o.presenceMaxMembers).size > 0
    )
      void this.o.presence.joined(userId, event.conv).catch((err: unknown) => {
        this.o.log.warn({ err, user: userId, conv: event.conv }, "presence not told to the conversation")
      })
    // A user who left is no longer told about: taken off the conversations their presence reaches.
    if (!joined && sockets.length > 0)
      void this.o.presence.departed(userId, event.conv).catch((err: unknown) => {
        this.o.log.warn({ err, user: userId, conv: event.conv }, "presence not updated for a departure")
      })
  }

  async frame(socket: Socket<Conn>, frame: ConversationFrame, reply: Reply): Promise<void> {
    const userId = socket.data.identity.userId
    let conversations: ReadonlySet<string>
    try {
      conversations = await this.o.memberships.of(userId, socket.data.token)
    } catch (err) {
      this.o.log.warn({ err, user: userId }, "memberships could not be loaded")
      reply(
        socket,
        failure("UNAVAILABLE", "Conversations could not be checked; retry with the same id.", frame),
      )
      return
    }
    // Not a member looks the same as no such conversation, as in the HTTP functions.
    if (!conversations.has(frame.conv)) {
      reply(socket, failure("NOT_FOUND", "No such conversation.", frame))
      return
    }
    if (frame.type === "typing") {
      this.o.relay(frame.conv, { type: "typing", conv: frame.conv, user: userId })
      return
    }
    const event = toEvent(frame, userId, this.o.now().toISOString())
    const started = performance.now()
    try {
      const { duplicate } = await this.o.inbound.append(event, "id" in frame ? frame.id : randomUUID())
      this.o.metrics.publishSeconds.observe((performance.now() - started) / 1000, { type: frame.type })
      reply(socket, {
        type: "ack",
        ...("id" in frame ? { id: frame.id } : {}),
        conv: frame.conv,
        ...(frame.ref === undefined ? {} : { ref: frame.ref }),
        duplicate,
      })
    } catch (err) {
      this.o.log.warn({ err, user: userId, conv: frame.conv }, "publish failed")
      reply(socket, failure("UNAVAILABLE", "The message was not stored; retry with the same id.", frame))
    }
  }
}

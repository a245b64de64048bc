/**
 * The open connections of this edge: which sockets belong to which user, the per-user rate
 * bucket and socket cap, and the one place where session effects are carried out.
 */
import type { Logger } from "../lib/log"
import { type ConnectionLimits, decodeClientFrame, encodeServerFrame } from "../lib/protocol/frames"
import type { Identity } from "./auth"
import type { Messaging } from "./messaging"
import type { EdgeMetrics } from "./metrics"
import { type Bucket, type BucketSpec, fullBucket, take } from "./rate-limit"
import {
  type CloseReason,
  type Effect,
  openSession,
  type SessionInput,
  type SessionPolicy,
  type SessionState,
  step,
} from "./session"
import type { Socket } from "./socket"

/** The edge's data for one connection (uWS user data, via the Socket port). */
export class Conn {
  state: SessionState | undefined = undefined
  firstFrameTimer: NodeJS.Timeout | undefined = undefined
  /** The conversations whose deliveries this socket receives (uWS topics it is subscribed to). */
  readonly conversations = new Set<string>()
  /** Set when the socket's close event has run: late async work must leave it alone. */
  gone = false
  constructor(
    readonly identity: Identity,
    readonly sessionId: string,
    /** The access token it connected with: never logged, never sent anywhere but the functions. */
    readonly token: string,
  ) {}
}

type UserEntry = { readonly sockets: Socket<Conn>[]; bucket: Bucket }

export type ConnectionsOptions = {
  readonly limits: ConnectionLimits
  readonly policy: SessionPolicy
  readonly userRate: BucketSpec
  readonly maxBackpressureBytes: number
  readonly now: () => number
  readonly metrics: EdgeMetrics
  readonly messaging: Messaging
  readonly log: Logger
}

export class Connections {
  private readonly users = new Map<string, UserEntry>()
  private readonly all = new Set<Socket<Conn>>()
  private emptied: Array<() => void> = []

  constructor(private readonly o: ConnectionsOptions) {}

  get size(): number {
    return this.all.size
  }

  opened(socket: Socket<Conn>): void {
    const conn = socket.data
    const userId = conn.identity.userId
    let user = this.users.get(userId)
    if (user === undefined) {
      user = { sockets: [], bucket: fullBucket(this.o.userRate, this.o.now()) }
      this.users.set(userId, user)
    }
    user.sockets.push(socket)
    this.all.add(socket)
    // The newest connection wins: the oldest is most likely a dead phone or a forgotten tab.
    // The new socket is listed first, so closing the old ones never empties (and drops) the entry.
    while (user.sockets.length > this.o.limits.max_sockets_per_user) {
      const oldest = user.sockets.shift()
      if (oldest !== undefined) this.dispatch(oldest, { kind: "terminate", reason: "CONNECTION_REPLACED" })
    }
    this.o.metrics.connections.set(this.all.size)
    const opened = openSession({
      userId,
      sessionId: conn.sessionId,
      now: this.o.now(),
      limits: this.o.limits,
      policy: this.o.policy,
    })
    conn.state = opened.state
    // Hello once the socket receives its conversations: a client catches up on what it missed
    // when hello comes (docs/protocol.md), so nothing published after its catch-up read can
    // pass it by before the edge listens.
    const hello = () => {
      this.run(socket, opened.effects)
      if (conn.state?.phase !== "awaiting_first_frame") return
      conn.firstFrameTimer = setTimeout(
        () => this.dispatch(socket, { kind: "first_frame_deadline" }),
        this.o.limits.first_frame_timeout_ms,
      )
    }
    this.o.messaging.opened(socket, hello).then(
      () => {
        // Closed while its conversations were loading: undo what was subscribed for it.
        if (conn.gone) this.o.messaging.closed(socket, !this.users.has(userId))
      },
      (err: unknown) => {
        this.o.log.warn({ err, conn: conn.sessionId, user: userId }, "conversations could not be loaded")
        this.dispatch(socket, { kind: "terminate", reason: "UNAVAILABLE" })
      },
    )
    this.o.log.debug({ conn: conn.sessionId, user: userId }, "socket open")
  }

  received(socket: Socket<Conn>, text: string | null, bytes: number): void {
    this.o.metrics.framesIn.inc()
    if (bytes > this.o.limits.max_frame_bytes) {
      this.dispatch(socket, { kind: "terminate", reason: "FRAME_TOO_LARGE" })
      return
    }
    const now = this.o.now()
    const user = this.users.get(socket.data.identity.userId)
    let verdict = { ok: true, retryAfterMs: 0 }
    if (user !== undefined) {
      const taken = take(this.o.userRate, user.bucket, now)
      user.bucket = taken.bucket
      verdict = taken
    }
    this.dispatch(socket, {
      kind: "frame",
      body: text === null ? "binary" : decodeClientFrame(text),
      user: verdict,
      now,
    })
  }

  closed(socket: Socket<Conn>, code: number): void {
    const conn = socket.data
    conn.gone = true
    clearTimeout(conn.firstFrameTimer)
    this.o.metrics.closes.inc({ code: String(code) })
    if (!this.all.delete(socket)) return
    const user = this.users.get(conn.identity.userId)
    if (user !== undefined) {
      const at = user.sockets.indexOf(socket)
      if (at >= 0) user.sockets.splice(at, 1)
      if (user.sockets.length === 0) this.users.delete(conn.identity.userId)
    }
    this.o.messaging.closed(socket, !this.users.has(conn.identity.userId))
    this.o.metrics.connections.set(this.all.size)
    this.o.log.debug({ conn: conn.sessionId, code }, "socket closed")
    if (this.all.size === 0) for (const resolve of this.emptied.splice(0)) resolve()
  }

  /** The user's open sockets on this edge. */
  socketsOf(userId: string): readonly Socket<Conn>[] {
    return this.users.get(userId)?.sockets ?? []
  }

  /** Closes the user's sockets, or only those of login session `sid`. Returns how many. */
  terminateUser(userId: string, sid: string | undefined, reason: CloseReason): number {
    const sockets = this.users.get(userId)?.sockets ?? []
    const hit = sockets.filter((s) => sid === undefined || s.data.identity.sid === sid)
    for (const socket of hit) this.dispatch(socket, { kind: "terminate", reason })
    return hit.length
  }

  terminateAll(reason: CloseReason): void {
    for (const socket of [...this.all]) this.dispatch(socket, { kind: "terminate", reason })
  }

  /** Resolves once no connection is open. */
  whenEmpty(): Promise<void> {
    if (this.all.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.emptied.push(resolve))
  }

  private dispatch(socket: Socket<Conn>, input: SessionInput): void {
    const conn = socket.data
    if (conn.state === undefined) return
    const next = step(conn.state, input, this.o.policy)
    conn.state = next.state
    if (conn.firstFrameTimer !== undefined && next.state.phase !== "awaiting_first_frame") {
      clearTimeout(conn.firstFrameTimer)
      conn.firstFrameTimer = undefined
    }
    this.run(socket, next.effects)
  }

  private run(socket: Socket<Conn>, effects: readonly Effect[]): void {
    for (const effect of effects) {
      if (effect.kind === "close") {
        const conn = socket.data
        this.o.log.info(
          { conn: conn.sessionId, user: conn.identity.userId, code: effect.code, reason: effect.reason },
          "closing socket",
        )
        socket.close(effect.code, effect.reason)
        continue
      }
      if (effect.kind === "who") {
        this.o.messaging
          .who(socket, effect.frame, (s, frame) => this.run(s, [{ kind: "send", frame }]))
          .catch((err: unknown) => this.o.log.error({ err }, "who frame failed"))
        continue
      }
      if (effect.kind === "conversation") {
        this.o.messaging
          .frame(socket, effect.frame, (s, frame) => this.run(s, [{ kind: "send", frame }]))
          .catch((err: unknown) => this.o.log.error({ err }, "conversation frame failed"))
        continue
      }
      const frame = effect.frame
      const buffered = socket.send(encodeServerFrame(frame))
      this.o.metrics.framesOut.inc()
      if (frame.type === "error") this.o.metrics.errorFrames.inc({ code: frame.code })
      if (buffered > this.o.maxBackpressureBytes) {
        this.dispatch(socket, { kind: "terminate", reason: "SLOW_CONSUMER" })
        return
      }
    }
  }
}

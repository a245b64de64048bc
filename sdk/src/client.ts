/**
 * CoveClient: the composition of the connection, the ordering of deliveries, the outbox, the
 * resume from history and the HTTP helpers. sdk/README.md documents what the app sees.
 */
import type { HelloFrame } from "../../lib/protocol/frames"
import { authApi, conversationsApi, filesApi, messagesApi, searchApi, usersApi } from "./api"
import { Connection, DEFAULT_RECONNECT, type IncomingFrame, type ReconnectPolicy } from "./connection"
import { Emitter, toError } from "./events"
import { Http } from "./http"
import { Outbox } from "./outbox"
import { Resumer } from "./resume"
import { Sequencer } from "./sequencer"
import { memoryStorage, readJson } from "./storage"
import { TokenKeeper, tokensOf, userOfToken } from "./tokens"
import type {
  ClientEvents,
  ConnectionState,
  MessageBody,
  OutboxEntry,
  OutboxFrame,
  Storage,
  StoredEvent,
  Tokens,
  User,
  WebSocketConstructor,
} from "./types"
import { defaultTransfer } from "./uploads"

export type ClientOptions = {
  /** Where the functions are: `${baseUrl}/function/<name>`. */
  readonly baseUrl: string
  /** The edge's WebSocket URL, e.g. wss://chat.example.com/v1/ws. */
  readonly edgeUrl: string
  /** Without them, the tokens kept in `storage` (a reload); with neither, the constructor throws. */
  readonly tokens?: Tokens
  /** Who the tokens are for (default: read from the access token). */
  readonly user?: User
  /** Keeps the outbox and the tokens (default memoryStorage()). */
  readonly storage?: Storage
  /** Default globalThis.WebSocket; on Node.js 20 pass `WebSocket` from the `ws` package. */
  readonly WebSocket?: WebSocketConstructor
  /** Default: "header" when `WebSocket` is given and is not the global one, else "query". */
  readonly tokenIn?: "header" | "query"
  readonly onTokens?: (tokens: Tokens) => void
  readonly fetch?: typeof fetch
  readonly reconnect?: Partial<ReconnectPolicy>
  /** History page size when filling gaps (1 to 500, default 200). */
  readonly historyPageSize?: number
  readonly random?: () => number
  readonly now?: () => number
  readonly newId?: () => string
}

export type LoginOptions = Omit<ClientOptions, "tokens" | "user"> & {
  readonly username: string
  readonly password: string
}
/** `adminToken`: an admin's access token, needed once registration is admin-only (docs/auth.md). */
export type RegisterOptions = LoginOptions & { readonly adminToken?: string }

const TOKENS_KEY = "tokens"

type WhoWaiter = { resolve: (users: Record<string, boolean>) => void; reject: (err: Error) => void }

/** An error frame that answered one of our frames (who), or a connection-level problem. */
export class FrameError extends Error {
  override readonly name = "FrameError"
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export class CoveClient {
  readonly user: User
  readonly conversations: ReturnType<typeof conversationsApi>
  readonly messages: ReturnType<typeof messagesApi>
  readonly files: ReturnType<typeof filesApi>
  readonly search: ReturnType<typeof searchApi>
  readonly users: ReturnType<typeof usersApi>
  readonly auth: {
    me: () => ReturnType<ReturnType<typeof authApi>["me"]>
    logout: (o?: { everywhere?: boolean }) => Promise<void>
  }

  private readonly emitter = new Emitter<ClientEvents>()
  private readonly keeper: TokenKeeper
  private readonly connectionLink: Connection
  private readonly sequencer: Sequencer
  private readonly box: Outbox
  private readonly resumer: Resumer
  private readonly newId: () => string
  private readonly now: () => number
  private readonly whos = new Map<string, WhoWaiter>()
  private readonly reads = new Map<string, number>()
  private readonly presence = new Map<string, boolean>()
  /** Membership changes already emitted: the affected user's sockets may receive one twice. */
  private readonly membershipsSeen = new RecentIds(256)
  private refs = 0
  private helloCount = 0
  private lastHeard: number | undefined
  private skewMs = 0

  static async login(o: LoginOptions): Promise<CoveClient> {
    const now = o.now ?? Date.now
    const answer = await anonymous(o).login(o.username, o.password)
    return new CoveClient({ ...o, tokens: tokensOf(answer, now()), user: answer.user })
  }

  static async register(o: RegisterOptions): Promise<CoveClient> {
    const now = o.now ?? Date.now
    const answer = await anonymous(o).register(o.username, o.password, o.adminToken)
    return new CoveClient({ ...o, tokens: tokensOf(answer, now()), user: answer.user })
  }

  constructor(o: ClientOptions) {
    const storage = o.storage ?? memoryStorage()
    const tokens = o.tokens ?? readJson<Tokens>(storage, TOKENS_KEY)
    if (tokens === undefined) throw new Error("CoveClient needs tokens (log in first)")
    this.user = o.user ?? userOfToken(tokens.access_token)
    this.now = o.now ?? Date.now
    this.newId = o.newId ?? (() => crypto.randomUUID())
    const fetchFn = o.fetch ?? ((input, init) => globalThis.fetch(input, init))
    const auth = anonymous({ ...o, fetch: fetchFn })
    storage.set(TOKENS_KEY, JSON.stringify(tokens))
    this.keeper = new TokenKeeper(tokens, {
      refresh: (rt) => auth.refresh(rt),
      changed: (t) => {
        storage.set(TOKENS_KEY, JSON.stringify(t))
        o.onTokens?.(t)
        this.emitter.emit("tokens", t)
      },
      now: this.now,
      marginMs: 30_000,
    })
    const http = new Http({
      baseUrl: o.baseUrl,
      fetch: fetchFn,
      accessToken: () => this.keeper.accessToken(),
      refreshNow: async () => {
        await this.keeper.refresh()
      },
    })
    this.conversations = conversationsApi(http, (c) => this.watch(c.id, 0))
    this.messages = messagesApi(http, this.newId)
    this.files = filesApi(http, defaultTransfer(fetchFn))
    this.search = searchApi(http)
    this.users = usersApi(http)
    const authed = authApi(http)
    this.auth = {
      me: () => authed.me(),
      logout: async (lo = {}) => {
        await authed.logout(this.keeper.tokens.refresh_token, lo.everywhere === true)
        storage.remove(TOKENS_KEY)
        await this.close()
      },
    }
    this.sequencer = new Sequencer({
      emit: (e) => this.emitStored(e),
      gap: (conv) => void this.resumer.fill(conv),
    })
    this.resumer = new Resumer({
      sequencer: this.sequencer,
      after: (conv, after, limit) => this.messages.history(conv, { after, limit }),
      latest: (conv, limit) => this.messages.history(conv, { limit }),
      conversations: (cursor) => this.conversations.list({ limit: 200, cursor }),
      deliver: (e) => this.deliver(e),
      onError: (err) => this.emitter.emit("error", err),
      pageSize: o.historyPageSize ?? 200,
    })
    this.box = new Outbox({
      storage,
      key: `outbox:${this.user.id}`,
      write: (frame) => this.connectionLink.send(frame),
      changed: (entry) => this.emitter.emit("outbox", entry),
      now: this.now,
    })
    const WebSocketCtor =
      o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? missingWebSocket()
    const globalWs = (globalThis as { WebSocket?: unknown }).WebSocket
    this.connectionLink = new Connection({
      url: o.edgeUrl,
      WebSocket: WebSocketCtor,
      tokenIn: o.tokenIn ?? (o.WebSocket !== undefined && o.WebSocket !== globalWs ? "header" : "query"),
      tokens: this.keeper,
      policy: { ...DEFAULT_RECONNECT, ...o.reconnect },
      random: o.random ?? Math.random,
      now: this.now,
      onHello: (hello) => this.hello(hello),
      onFrame: (frame) => this.frame(frame),
      onState: (state, info) => {
        if (state !== "open") this.lostSocket()
        this.emitter.emit("connection", state, info)
      },
      onLoginEnded: (code) => {
        if (code === "AUTH_SESSION_REVOKED" || code === "AUTH_TOKEN_INVALID" || code === "AUTH_TOKEN_EXPIRED")
          storage.remove(TOKENS_KEY)
        this.emitter.emit("error", new FrameError(code, "The login has ended: log in again."))
      },
      onError: (err) => this.emitter.emit("error", err),
    })
  }

  get tokens(): Tokens {
    return this.keeper.tokens
  }

  get connection(): ConnectionState {
    return this.connectionLink.state
  }

  on<K extends keyof ClientEvents>(name: K, handler: (...args: ClientEvents[K]) => void): () => void {
    return this.emitter.on(name, handler)
  }

  /** Resolves on the first hello; rejects if the connection ends before (login over, close()). */
  connect(): Promise<void> {
    if (this.connectionLink.state === "open") return Promise.resolve()
    const opened = new Promise<void>((resolve, reject) => {
      const off = this.on("connection", (state, info) => {
        if (state === "open") {
          off()
          resolve()
        } else if (state === "closed") {
          off()
          reject(
            new FrameError(info?.reason || "CLOSED", `the connection closed (${info?.code ?? "no code"})`),
          )
        }
      })
    })
    this.keeper.schedule((err) => this.emitter.emit("error", toError(err)))
    this.connectionLink.start()
    return opened
  }

  /** Closes the socket; no reconnect after this. Pending outbox entries stay in storage. */
  async close(): Promise<void> {
    this.keeper.stopSchedule()
    this.resumer.stop()
    this.box.stop()
    this.connectionLink.stop()
  }

  /** Drops the socket and connects again now (e.g. when the device's network changed). */
  reconnect(): void {
    this.connectionLink.reconnect()
  }

  /** Refreshes the tokens now (they are also refreshed on their own before they expire). */
  refreshTokens(): Promise<Tokens> {
    return this.keeper.refresh()
  }

  send(conv: string, body: MessageBody, o: { replyTo?: string; id?: string } = {}): OutboxEntry {
    const frame: OutboxFrame = { type: "send", id: o.id ?? this.newId(), conv, body }
    if (o.replyTo !== undefined) frame.reply_to = o.replyTo
    return this.box.add(frame)
  }
  edit(conv: string, target: string, body: MessageBody): OutboxEntry {
    return this.box.add({ type: "edit", id: this.newId(), conv, target, body })
  }
  recall(conv: string, target: string): OutboxEntry {
    return this.box.add({ type: "recall", id: this.newId(), conv, target })
  }
  react(conv: string, target: string, emoji: string, op: "add" | "remove"): OutboxEntry {
    return this.box.add({ type: "react", id: this.newId(), conv, target, emoji, op })
  }

  /** Moves this user's read position; sent now if connected, else after the next hello (the highest only). */
  markRead(conv: string, seq: number): void {
    this.reads.set(conv, Math.max(seq, this.reads.get(conv) ?? 0))
    if (this.connectionLink.send({ type: "read", conv, seq })) this.reads.delete(conv)
  }

  /** Ephemeral: dropped when not connected. */
  typing(conv: string): void {
    this.connectionLink.send({ type: "typing", conv })
  }

  /** Who of these users is online now (1 to 200 ids). Rejects if not connected or the socket closes first. */
  who(users: readonly string[]): Promise<Record<string, boolean>> {
    const ref = `w${++this.refs}`
    return new Promise((resolve, reject) => {
      if (!this.connectionLink.send({ type: "who", users, ref }))
        return reject(new FrameError("NOT_CONNECTED", "who needs an open connection"))
      this.whos.set(ref, { resolve, reject })
    })
  }

  outbox(): OutboxEntry[] {
    return this.box.list()
  }
  retry(id: string): void {
    this.box.retry(id)
  }
  discard(id: string): void {
    this.box.discard(id)
  }

  /** Tracks `conv` from `lastSeq` (e.g. after loading its history): later events are emitted once each, in order. */
  watch(conv: string, lastSeq: number): void {
    this.sequencer.watch(conv, lastSeq)
    if (this.connectionLink.state === "open") void this.resumer.fill(conv)
  }

  lastSeq(conv: string): number | undefined {
    return this.sequencer.lastSeq(conv)
  }

  private hello(hello: HelloFrame): void {
    this.skewMs = Date.parse(hello.server_time) - this.now()
    const lostAt = this.helloCount++ > 0 && this.lastHeard !== undefined ? this.lastHeard : undefined
    this.lastHeard = this.now() + this.skewMs
    for (const [conv, seq] of this.reads) this.connectionLink.send({ type: "read", conv, seq })
    this.reads.clear()
    this.box.opened(hello.limits)
    void this.resumer.resume(lostAt)
  }

  private lostSocket(): void {
    this.box.closed()
    for (const w of this.whos.values()) w.reject(new FrameError("NOT_CONNECTED", "the connection closed"))
    this.whos.clear()
  }

  private frame(f: IncomingFrame): void {
    this.lastHeard = this.now() + this.skewMs
    const id = typeof f.id === "string" ? f.id : undefined
    switch (f.type) {
      case "ack":
        if (id !== undefined) this.box.acked(id)
        return
      case "error": {
        const code = String(f.code)
        const message = String(f.message)
        const waiter = typeof f.ref === "string" ? this.whos.get(f.ref) : undefined
        if (id !== undefined) {
          const retryAfter = typeof f.retry_after_ms === "number" ? f.retry_after_ms : undefined
          this.box.refused(id, code, message, retryAfter)
        } else if (waiter !== undefined) {
          this.whos.delete(f.ref as string)
          waiter.reject(new FrameError(code, message))
        } else this.emitter.emit("error", new FrameError(code, message))
        return
      }
      case "conversation":
        this.emitter.emit("conversation", f as unknown as ClientEvents["conversation"][0])
        return
      case "refused":
        // The edge acked it, then the sequencer refused it (not a member any more, someone else's message...).
        if (id !== undefined) this.box.refusedLater(id, String(f.code), String(f.message))
        return
      case "who": {
        const waiter = typeof f.ref === "string" ? this.whos.get(f.ref) : undefined
        if (waiter === undefined) return
        this.whos.delete(f.ref as string)
        const users = f.users as Record<string, boolean>
        for (const [user, online] of Object.entries(users)) this.presence.set(user, online)
        waiter.resolve(users)
        return
      }
      case "message":
      case "edit":
      case "recall":
      case "reaction":
        if (typeof f.seq === "number") this.deliver(f as unknown as StoredEvent)
        return
      case "read":
        this.emitter.emit("read", f as unknown as ClientEvents["read"][0])
        return
      case "typing":
        this.emitter.emit("typing", { conv: String(f.conv), user: String(f.user) })
        return
      case "presence": {
        // One change arrives once per shared conversation: the app hears it once.
        const user = String(f.user)
        const online = f.online === true
        if (this.presence.get(user) === online) return
        this.presence.set(user, online)
        this.emitter.emit("presence", { user, online })
        return
      }
      case "membership": {
        const m = f as unknown as ClientEvents["membership"][0]
        if (typeof m.id === "string" && !this.membershipsSeen.add(m.id)) return
        if (m.removed.includes(this.user.id)) this.sequencer.forget(m.conv)
        this.emitter.emit("membership", m)
        return
      }
      default:
        // pong, and frames a newer edge may add (docs/protocol.md: unknown fields and frames are ignored).
        return
    }
  }

  private deliver(e: StoredEvent): void {
    // A duplicate of what was emitted still settles its outbox entry (e.g. sent before a reload).
    if (!this.sequencer.accept(e)) this.box.stored(e.id)
  }

  private emitStored(e: StoredEvent): void {
    switch (e.type) {
      case "message":
        this.emitter.emit("message", e)
        break
      case "edit":
        this.emitter.emit("edit", e)
        break
      case "recall":
        this.emitter.emit("recall", e)
        break
      case "reaction":
        this.emitter.emit("reaction", e)
        break
    }
    this.box.stored(e.id)
  }
}

/** The last `capacity` ids seen; add() is false for one already among them. */
class RecentIds {
  private readonly ids = new Set<string>()
  constructor(private readonly capacity: number) {}
  add(id: string): boolean {
    if (this.ids.has(id)) return false
    this.ids.add(id)
    // A Set iterates in insertion order: the first is the oldest.
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string)
    return true
  }
}

function anonymous(o: { baseUrl: string; fetch?: typeof fetch }) {
  return authApi(
    new Http({
      baseUrl: o.baseUrl,
      fetch: o.fetch ?? ((input, init) => globalThis.fetch(input, init)),
      accessToken: () => Promise.reject(new Error("not logged in")),
      refreshNow: () => Promise.reject(new Error("not logged in")),
    }),
  )
}

function missingWebSocket(): never {
  throw new Error("no WebSocket: pass `WebSocket` (on Node.js 20, from the `ws` package)")
}

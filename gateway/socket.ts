/**
 * The Socket port and its uWebSockets.js adapter: the only file that touches uWS. The rest of
 * the edge sees plain requests, replies and sockets. uWS rules kept here: copy everything from
 * `req` before going async, register `onAborted` first, write inside `cork`, and never touch a
 * socket after its close event (uWS throws).
 */

import type * as Uws from "uWebSockets.js"
import { STATUS_CODES } from "node:http"
import { createRequire } from "node:module"

/** What the edge may do with one open connection. `D` is the edge's own per-connection data. */
export type Socket<D> = {
  readonly data: D
  /** Queues a text frame; returns the bytes now waiting to be sent (Infinity if uWS dropped it). */
  send(text: string): number
  /** Sends a close frame with `code` and a short `reason`; a no-op once closed. */
  close(code: number, reason: string): void
  /** Receives what is published to `topic` from now on (uWS topics: fan-out without a loop). */
  subscribe(topic: string): void
  unsubscribe(topic: string): void
}

/** The parts of an upgrade request the edge decides on, copied before any await. */
export type UpgradeRequest = {
  readonly authorization: string
  readonly origin: string
  /** The `access_token` query parameter (browsers cannot set headers on a WebSocket). */
  readonly accessTokenParam: string
  readonly remoteAddress: string
}

export type HttpReply = {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

export type UpgradeVerdict<D> =
  | { readonly accept: true; readonly data: D }
  | { readonly accept: false; readonly reply: HttpReply }

export type TransportHandlers<D> = {
  upgrade(req: UpgradeRequest): Promise<UpgradeVerdict<D>>
  open(socket: Socket<D>): void
  /** `text` is null for a binary frame. */
  message(socket: Socket<D>, text: string | null, bytes: number): void
  close(socket: Socket<D>, code: number): void
  /** Plain GET routes by exact path. */
  routes: Readonly<Record<string, () => HttpReply>>
  /** The answer to a GET of the WebSocket path that is not an upgrade, and to unknown paths. */
  notUpgrade: () => HttpReply
  notFound: () => HttpReply
  /** An upgrade handler that threw (a bug: expected failures are verdicts): log it, answer 500. */
  fault: (err: unknown) => HttpReply
}

export type TransportLimits = {
  /** uWS drops the connection (no close frame) above this; the edge closes politely below it. */
  readonly hardMaxPayloadBytes: number
  readonly idleTimeoutS: number
  /** uWS drops sends above this; the edge closes slow readers before it is reached. */
  readonly hardMaxBackpressureBytes: number
  /** The close sent when uWS dropped a frame all the same. */
  readonly droppedClose: { readonly code: number; readonly reason: string }
}

export type Transport = {
  /** Resolves with the bound port. */
  listen(host: string, port: number): Promise<number>
  /** Closes the listening socket: no new connections; open ones are untouched. */
  stopListening(): void
  /** Closes the listening socket and every connection at once. */
  close(): void
  /** Sends a text frame to every socket subscribed to `topic`; the bytes are UTF-8 JSON. */
  publish(topic: string, text: Uint8Array | string): void
}

export type UwsModule = typeof Uws

/**
 * The npm alias of uWebSockets.js quietly falls back to a `ws`-based implementation when the
 * native binary does not load (wrong Node ABI or platform), which holds about six times the
 * memory per socket and has different limits. Only the native module exports `getParts`.
 */
export function assertNativeUws(mod: unknown): asserts mod is UwsModule {
  const m = mod as Partial<Record<string, unknown>> | null
  if (
    m === null ||
    typeof m !== "object" ||
    typeof m.getParts !== "function" ||
    typeof m.App !== "function"
  ) {
    throw new Error(
      `uWebSockets.js is not running natively: it loaded its ws-based fallback (no binary for ${process.platform}-${process.arch} with Node ABI ${process.versions.modules}, or UWS_USE_FALLBACK is set); refusing to start on it`,
    )
  }
}

export function loadNativeUws(): UwsModule {
  const mod: unknown = createRequire(import.meta.url)("uWebSockets.js")
  assertNativeUws(mod)
  return mod
}

const WS_PATH = "/v1/ws"
const decoder = new TextDecoder()

/**
 * The uWS user data. This uWS build copies the user data's own properties onto its WebSocket
 * object and `getUserData()` returns that WebSocket, so the data is one property whose name
 * cannot clash with a WebSocket method, holding our own object.
 */
type UserData<D> = { readonly cove: UwsSocket<D> }

/**
 * Sockets with frames waiting, written together once per event-loop turn. Outside its own
 * callbacks uWS writes each corked send with its own system call; the edge's acks come from NATS
 * callbacks, a few per socket per turn, so one write per socket per turn saves most of them.
 */
class SendQueue<D> {
  private readonly waiting = new Set<UwsSocket<D>>()

  constructor(private readonly dropped: { readonly code: number; readonly reason: string }) {}

  add(socket: UwsSocket<D>): void {
    if (this.waiting.size === 0) setImmediate(this.flush)
    this.waiting.add(socket)
  }

  private readonly flush = (): void => {
    const sockets = [...this.waiting]
    this.waiting.clear()
    for (const socket of sockets) {
      // uWS dropped a frame (its hard backpressure limit): the client must reconnect and fill
      // the gap from history, so it is told to, like a reader the edge finds too slow.
      if (!socket.writeQueued()) socket.close(this.dropped.code, this.dropped.reason)
    }
  }
}

/** The port of one connection, created at upgrade; `ws` is set on open and cleared on close. */
class UwsSocket<D> implements Socket<D> {
  ws: Uws.WebSocket<UserData<D>> | null = null
  closed = false
  private queued: string[] = []
  private queuedBytes = 0

  constructor(
    readonly data: D,
    private readonly queue: SendQueue<D>,
  ) {}

  send(text: string): number {
    const ws = this.ws
    if (ws === null || this.closed) return 0
    if (this.queued.length === 0) this.queue.add(this)
    this.queued.push(text)
    // An estimate (UTF-16 units, not bytes): the limit is a policy, not a precise budget.
    this.queuedBytes += text.length
    return ws.getBufferedAmount() + this.queuedBytes
  }

  /** Writes the queued frames in one cork; false if uWS dropped one (backpressure limit). */
  writeQueued(): boolean {
    const ws = this.ws
    const frames = this.queued
    this.queued = []
    this.queuedBytes = 0
    if (ws === null || this.closed || frames.length === 0) return true
    let ok = true
    ws.cork(() => {
      for (const text of frames) {
        // 2: dropped because the backpressure limit was reached.
        if (ws.send(text, false, false) === 2) {
          ok = false
          break
        }
      }
    })
    return ok
  }

  close(code: number, reason: string): void {
    const ws = this.ws
    if (ws === null || this.closed) return
    // What was queued before the close (an error frame saying why, say) goes first.
    this.writeQueued()
    ws.cork(() => ws.end(code, reason))
  }

  subscribe(topic: string): void {
    if (this.ws !== null && !this.closed) this.ws.subscribe(topic)
  }

  unsubscribe(topic: string): void {
    if (this.ws !== null && !this.closed) this.ws.unsubscribe(topic)
  }
}

function replyHttp(res: Uws.HttpResponse, reply: HttpReply): void {
  res
    .writeStatus(`${reply.status} ${STATUS_CODES[reply.status] ?? ""}`)
    .writeHeader("content-type", reply.contentType)
    .writeHeader("cache-control", "no-store")
    .end(reply.body)
}

export function createUwsTransport<D>(
  uws: UwsModule,
  limits: TransportLimits,
  h: TransportHandlers<D>,
): Transport {
  let listenSocket: Uws.us_listen_socket | null = null
  const app = uws.App()
  const sendQueue = new SendQueue<D>(limits.droppedClose)

  app.ws<UserData<D>>(WS_PATH, {
    maxPayloadLength: limits.hardMaxPayloadBytes,
    idleTimeout: limits.idleTimeoutS,
    sendPingsAutomatically: true,
    maxBackpressure: limits.hardMaxBackpressureBytes,
    compression: uws.DISABLED,
    upgrade: (res, req, context) => {
      const request: UpgradeRequest = {
        authorization: req.getHeader("authorization"),
        origin: req.getHeader("origin"),
        accessTokenParam: req.getQuery("access_token") ?? "",
        remoteAddress: decoder.decode(res.getRemoteAddressAsText()),
      }
      const key = req.getHeader("sec-websocket-key")
      const protocol = req.getHeader("sec-websocket-protocol")
      const extensions = req.getHeader("sec-websocket-extensions")
      let aborted = false
      res.onAborted(() => {
        aborted = true
      })
      h.upgrade(request).then(
        (verdict) => {
          if (aborted) return
          res.cork(() => {
            if (verdict.accept) {
              const data: UserData<D> = { cove: new UwsSocket(verdict.data, sendQueue) }
              res.upgrade(data, key, protocol, extensions, context)
            } else replyHttp(res, verdict.reply)
          })
        },
        (err: unknown) => {
          const reply = h.fault(err)
          if (!aborted) res.cork(() => replyHttp(res, reply))
        },
      )
    },
    open: (ws) => {
      const socket = ws.getUserData().cove
      socket.ws = ws
      h.open(socket)
    },
    message: (ws, message, isBinary) => {
      const socket = ws.getUserData().cove
      h.message(socket, isBinary ? null : decoder.decode(message), message.byteLength)
    },
    close: (ws, code) => {
      const socket = ws.getUserData().cove
      socket.closed = true
      socket.ws = null
      h.close(socket, code)
    },
  })

  app.get(WS_PATH, (res) => replyHttp(res, h.notUpgrade()))
  for (const [path, route] of Object.entries(h.routes)) app.get(path, (res) => replyHttp(res, route()))
  app.any("/*", (res) => replyHttp(res, h.notFound()))

  return {
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        app.listen(host, port, (socket) => {
          if (socket === false) {
            reject(
              new Error(`the edge could not listen on ${host}:${port} (address in use or not available)`),
            )
            return
          }
          listenSocket = socket
          resolve(uws.us_socket_local_port(socket as unknown as Uws.us_socket))
        })
      }),
    stopListening: () => {
      if (listenSocket !== null) uws.us_listen_socket_close(listenSocket)
      listenSocket = null
    },
    publish: (topic, text) => {
      app.publish(topic, text, false, false)
    },
    close: () => {
      if (listenSocket !== null) uws.us_listen_socket_close(listenSocket)
      listenSocket = null
      ;(app as Uws.TemplatedApp & { close(): void }).close()
    },
  }
}

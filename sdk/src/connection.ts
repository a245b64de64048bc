/**
 * One WebSocket to the edge at a time: connect with the access token, reconnect with backoff
 * and jitter as the close code says (docs/protocol.md "Closes"), refresh the token before
 * connecting when it is about to expire and after two failed handshakes in a row, and keep the
 * socket alive with pings.
 */
import type { ConnectionLimits, HelloFrame } from "../../lib/protocol/frames"
import { HttpError } from "./http"
import { LOGIN_ENDED, type TokenKeeper } from "./tokens"
import type { ConnectionInfo, ConnectionState, WebSocketConstructor, WebSocketLike } from "./types"

/** The answer to a frame, or a delivery: anything the edge sends after hello. */
export type IncomingFrame = { readonly type: string } & Readonly<Record<string, unknown>>

export type ReconnectPolicy = {
  /** First backoff delay; it doubles per failed attempt up to maxMs, with jitter (half to all of it). */
  readonly baseMs: number
  readonly maxMs: number
  /** After 1012 (SHUTTING_DOWN): a random delay from 0 to this. */
  readonly shutdownMaxMs: number
}

export const DEFAULT_RECONNECT: ReconnectPolicy = { baseMs: 500, maxMs: 30_000, shutdownMaxMs: 5_000 }

/** Close codes after which reconnecting on our own is wrong (disabled, revoked, replaced). */
const TERMINAL = new Set([4004, 4005, 4009])

export type ConnectionPorts = {
  readonly url: string
  readonly WebSocket: WebSocketConstructor
  /** "header": Authorization (the `ws` package); "query": ?access_token= (browsers cannot set headers). */
  readonly tokenIn: "header" | "query"
  readonly tokens: TokenKeeper
  readonly policy: ReconnectPolicy
  readonly random: () => number
  readonly now: () => number
  readonly onHello: (hello: HelloFrame) => void
  readonly onFrame: (frame: IncomingFrame) => void
  readonly onState: (state: ConnectionState, info?: ConnectionInfo) => void
  /** The login is over (revoked, disabled, refresh refused): the app must log in again. */
  readonly onLoginEnded: (code: string) => void
  readonly onError: (err: Error) => void
}

export class Connection {
  private socket: WebSocketLike | undefined
  private running = false
  private open = false
  private failures = 0
  private failedHandshakes = 0
  private refreshFirst = false
  private limits: ConnectionLimits | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private keepAlive: ReturnType<typeof setInterval> | undefined
  private lastReceived = 0
  private current: ConnectionState = "closed"

  constructor(private readonly ports: ConnectionPorts) {}

  get state(): ConnectionState {
    return this.current
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.run()
  }

  /** Closes the socket (1000) and stays closed. */
  stop(info: ConnectionInfo = { code: 1000 }): void {
    this.running = false
    this.clearTimers()
    this.detach()?.close(1000)
    this.setState("closed", info)
  }

  /** Drops the current socket and connects again at once (e.g. after the network changed). */
  reconnect(): void {
    if (!this.running) return
    this.clearTimers()
    this.detach()?.close(1000)
    this.run()
  }

  /** Writes a frame if the socket is open (hello received); false otherwise. */
  send(frame: object): boolean {
    if (!this.open || this.socket === undefined) return false
    this.socket.send(JSON.stringify(frame))
    return true
  }

  private setState(state: ConnectionState, info?: ConnectionInfo): void {
    this.current = state
    this.ports.onState(state, info)
  }

  /** One attempt; a throw (a bad URL, a WebSocket constructor refusing) counts as a failed attempt. */
  private run(): void {
    this.attempt().catch((err: unknown) => {
      this.detach()
      this.ports.onError(err instanceof Error ? err : new Error(String(err)))
      this.retry(this.backoff())
    })
  }

  private async attempt(): Promise<void> {
    this.retryTimer = undefined
    if (!this.running) return
    this.setState("connecting")
    const { tokens } = this.ports
    // docs/protocol.md: refresh when the token expires within 30 s, and after two failed handshakes.
    if (this.refreshFirst || this.failedHandshakes >= 2 || tokens.expiresWithin(30_000)) {
      try {
        await tokens.refresh()
        this.refreshFirst = false
        this.failedHandshakes = 0
      } catch (err) {
        if (err instanceof HttpError && LOGIN_ENDED.has(err.code))
          return this.end(err.code, { reason: err.code })
        // The auth function is unreachable: the token may still do; try later.
        this.ports.onError(err instanceof Error ? err : new Error(String(err)))
        return this.retry(this.backoff())
      }
      if (!this.running) return
    }
    const token = tokens.tokens.access_token
    const socket =
      this.ports.tokenIn === "header"
        ? new this.ports.WebSocket(this.ports.url, { headers: { authorization: `Bearer ${token}` } })
        : new this.ports.WebSocket(withToken(this.ports.url, token))
    this.socket = socket
    let refusedStatus: number | undefined
    socket.addEventListener("error", (ev) => {
      // The `ws` package names the HTTP status of a refused handshake; browsers hide it (1006).
      const status = /Unexpected server response: (\d+)/.exec(String(ev.message))
      if (status?.[1] !== undefined) refusedStatus = Number(status[1])
    })
    socket.addEventListener("message", (ev) => {
      if (this.socket !== socket) return
      this.lastReceived = this.ports.now()
      let frame: IncomingFrame
      try {
        frame = JSON.parse(String(ev.data)) as IncomingFrame
      } catch (err) {
        this.ports.onError(new Error("the edge sent a frame that is not JSON", { cause: err }))
        return
      }
      if (frame.type === "hello") this.hello(frame as unknown as HelloFrame)
      else this.ports.onFrame(frame)
    })
    socket.addEventListener("close", (ev) => {
      if (this.socket !== socket) return
      this.closed(ev.code ?? 1006, ev.reason ?? "", refusedStatus)
    })
  }

  private hello(hello: HelloFrame): void {
    this.open = true
    this.failures = 0
    this.failedHandshakes = 0
    this.limits = hello.limits
    // A frame right after hello, so the first-frame timeout (4008) never fires.
    this.send({ type: "ping" })
    this.startKeepAlive(hello.limits.idle_timeout_ms)
    this.setState("open", { session: hello.session, limits: hello.limits })
    this.ports.onHello(hello)
  }

  private closed(code: number, reason: string, refusedStatus: number | undefined): void {
    const wasOpen = this.open
    this.detach()
    this.clearTimers()
    if (!this.running) return
    if (!wasOpen) this.failedHandshakes++
    if (TERMINAL.has(code)) {
      const ended =
        code === 4009 ? undefined : reason || (code === 4004 ? "AUTH_USER_DISABLED" : "AUTH_SESSION_REVOKED")
      this.end(ended, { code, reason })
      return
    }
    if (refusedStatus === 401) this.refreshFirst = true
    if (refusedStatus === 403) {
      this.end("AUTH_USER_DISABLED", { code: 403, reason: "refused (403)" })
      return
    }
    let delay = this.backoff()
    if (code === 1012) delay = this.ports.random() * this.ports.policy.shutdownMaxMs
    if (code === 4029) {
      const l = this.limits
      delay = Math.max(delay, l === undefined ? 2_000 : (l.rate_burst / l.rate_per_sec) * 1000)
    }
    this.retry(delay, { code, reason })
  }

  private backoff(): number {
    const { baseMs, maxMs } = this.ports.policy
    const cap = Math.min(maxMs, baseMs * 2 ** Math.min(this.failures, 20))
    this.failures++
    return cap / 2 + (this.ports.random() * cap) / 2
  }

  private retry(delayMs: number, info: ConnectionInfo = {}): void {
    if (!this.running) return
    this.setState("connecting", { ...info, retry_in_ms: Math.round(delayMs) })
    this.retryTimer = setTimeout(() => this.run(), delayMs)
  }

  private end(loginEnded: string | undefined, info: ConnectionInfo): void {
    this.stop(info)
    if (loginEnded !== undefined) this.ports.onLoginEnded(loginEnded)
  }

  /**
   * The edge pings idle sockets itself; our pings find a dead network sooner. Nothing received
   * for the whole idle timeout means the socket is gone even if the OS has not noticed.
   */
  private startKeepAlive(idleTimeoutMs: number): void {
    this.lastReceived = this.ports.now()
    this.keepAlive = setInterval(
      () => {
        if (this.ports.now() - this.lastReceived > idleTimeoutMs) {
          this.reconnect()
          return
        }
        this.send({ type: "ping" })
      },
      Math.min(idleTimeoutMs / 3, 30_000),
    )
  }

  private detach(): WebSocketLike | undefined {
    const socket = this.socket
    this.socket = undefined
    this.open = false
    return socket
  }

  private clearTimers(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive)
    this.retryTimer = undefined
    this.keepAlive = undefined
  }
}

function withToken(url: string, token: string): string {
  const u = new URL(url)
  u.searchParams.set("access_token", token)
  return u.toString()
}

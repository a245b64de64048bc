/**
 * The access and refresh tokens (docs/auth.md): refreshed before they expire, one refresh at a
 * time (a refresh token is spent on use, and two parallel uses revoke the whole login).
 */
import { HttpError } from "./http"
import type { Tokens, User } from "./types"

/** What register, login and refresh answer. */
export type TokenAnswer = {
  access_token: string
  refresh_token: string
  expires_in: number
  user: User
}

export function tokensOf(answer: TokenAnswer, now: number): Tokens {
  return {
    access_token: answer.access_token,
    refresh_token: answer.refresh_token,
    expires_at: now + answer.expires_in * 1000,
  }
}

/** The user an access token speaks for, read from its payload (not verified: the servers do that). */
export function userOfToken(accessToken: string): User {
  const payload = accessToken.split(".")[1]
  if (payload === undefined) throw new Error("not a JWT access token")
  const json = JSON.parse(
    new TextDecoder().decode(
      Uint8Array.from(atob(payload.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)),
    ),
  ) as { sub?: unknown; preferred_username?: unknown }
  if (typeof json.sub !== "string") throw new Error("the access token has no sub")
  return {
    id: json.sub,
    username: typeof json.preferred_username === "string" ? json.preferred_username : "",
  }
}

/** Codes that mean the login is over: only a new login helps. */
export const LOGIN_ENDED = new Set([
  "AUTH_TOKEN_INVALID",
  "AUTH_TOKEN_EXPIRED",
  "AUTH_SESSION_REVOKED",
  "AUTH_USER_DISABLED",
])

export type TokenPorts = {
  readonly refresh: (refreshToken: string) => Promise<TokenAnswer>
  readonly changed: (tokens: Tokens) => void
  readonly now: () => number
  /** Refresh when the access token expires within this long (docs/protocol.md: 30 s). */
  readonly marginMs: number
}

export class TokenKeeper {
  private inFlight: Promise<Tokens> | undefined
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(
    private current: Tokens,
    private readonly ports: TokenPorts,
  ) {}

  get tokens(): Tokens {
    return this.current
  }

  expiresWithin(ms: number): boolean {
    return this.current.expires_at - this.ports.now() < ms
  }

  /** The access token, refreshed first if it expires within the margin. */
  async accessToken(): Promise<string> {
    if (this.expiresWithin(this.ports.marginMs)) await this.refresh()
    return this.current.access_token
  }

  /** One refresh at a time: concurrent callers share it. */
  refresh(): Promise<Tokens> {
    this.inFlight ??= this.ports
      .refresh(this.current.refresh_token)
      .then((answer) => {
        this.current = tokensOf(answer, this.ports.now())
        this.ports.changed(this.current)
        return this.current
      })
      .finally(() => {
        this.inFlight = undefined
      })
    return this.inFlight
  }

  /**
   * Keeps the access token fresh while the client runs: refreshes a margin before expiry, and
   * retries a failed refresh a few seconds later unless the login is over.
   */
  schedule(onError: (err: unknown) => void): void {
    this.stopSchedule()
    const due = Math.max(0, this.current.expires_at - this.ports.now() - 2 * this.ports.marginMs)
    this.timer = setTimeout(() => {
      this.refresh().then(
        () => this.schedule(onError),
        (err: unknown) => {
          onError(err)
          if (err instanceof HttpError && LOGIN_ENDED.has(err.code)) return
          this.timer = setTimeout(() => this.schedule(onError), 5_000)
        },
      )
    }, due)
  }

  stopSchedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}

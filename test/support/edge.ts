/**
 * For edge tests: a JWK Set served over real HTTP (standing in for the auth function), real
 * EdDSA tokens, an in-process edge on a free port, and `ws` clients that wait with deadlines.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose"
import type { Test } from "tap"
import WebSocket from "ws"
import { type Edge, type EdgeOptions, startEdge } from "../../gateway/edge"
import { loadConfig } from "../../lib/config"
import { ACCESS_TOKEN_TYP, DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../../lib/protocol/tokens"
import { gatewayFields } from "../../lib/settings"
import { testLog } from "./servers"

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"]

export type SigningKey = { readonly kid: string; readonly privateKey: PrivateKey; readonly jwk: JWK }

export async function newSigningKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { extractable: true })
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "EdDSA", use: "sig" } }
}

export type Jwks = { readonly url: string; readonly keys: JWK[]; fetches: number; failing: boolean }

/**
 * A JWK Set over HTTP; push to `keys` to publish a new key, read `fetches` to see refetches,
 * set `failing` to make it answer 503.
 */
export async function withJwks(t: Test, initial: readonly SigningKey[]): Promise<Jwks> {
  const jwks: Jwks & { url: string } = {
    url: "",
    keys: initial.map((k) => k.jwk),
    fetches: 0,
    failing: false,
  }
  const server = createServer((_req, res) => {
    jwks.fetches++
    if (jwks.failing) res.writeHead(503).end()
    else res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: jwks.keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  jwks.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/function/auth/jwks`
  return jwks
}

export type TokenClaims = {
  sub?: string
  sid?: string
  iss?: string
  aud?: string
  /** Seconds relative to now. */
  expIn?: number
  nbfIn?: number
  iatIn?: number
}

export async function signToken(key: SigningKey, claims: TokenClaims = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const jwt = new SignJWT({ ...(claims.sid === undefined ? {} : { sid: claims.sid }) })
    .setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: ACCESS_TOKEN_TYP })
    .setSubject(claims.sub ?? "alice")
    .setIssuer(claims.iss ?? DEFAULT_ISSUER)
    .setAudience(claims.aud ?? DEFAULT_AUDIENCE)
    .setIssuedAt(now + (claims.iatIn ?? 0))
    .setExpirationTime(now + (claims.expIn ?? 900))
  if (claims.nbfIn !== undefined) jwt.setNotBefore(now + claims.nbfIn)
  return jwt.sign(key.privateKey)
}

export type TestEdge = Edge & { readonly url: string; readonly http: string }

/** An edge on a free port with the given settings (env names as in lib/settings.ts). */
export async function withEdge(
  t: Test,
  env: Record<string, string>,
  options: EdgeOptions = {},
): Promise<TestEdge> {
  const config = loadConfig(gatewayFields, {
    env: { COVE_EDGE_PORT: "0", ...env },
    secretsDir: "/nonexistent",
  })
  // These edges run without the functions: their users are in no conversation unless a test
  // says otherwise. test/e2e/messaging.test.ts runs edges against the real conversations function.
  const edge = await startEdge(config, testLog, { loadMemberships: async () => ({ ids: [] }), ...options })
  t.teardown(() => edge.drain(1_000))
  return Object.assign(edge, {
    url: `ws://127.0.0.1:${edge.port}/v1/ws`,
    http: `http://127.0.0.1:${edge.port}`,
  })
}

export type Closed = { readonly code: number; readonly reason: string; readonly at: number }

/** A connected client: frames arrive in order; `next` (one caller at a time) waits with a deadline. */
export class Client {
  private readonly queue: unknown[] = []
  private waiter: (() => void) | undefined
  readonly closed: Promise<Closed>

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      this.queue.push(isBinary ? data : JSON.parse(String(data)))
      this.waiter?.()
    })
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        resolve({ code, reason: String(reason), at: Date.now() })
        this.waiter?.()
      })
    })
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame))
  }

  async next(deadlineMs = 5_000): Promise<Record<string, unknown>> {
    const started = Date.now()
    while (this.queue.length === 0) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error("socket closed while waiting for a frame")
      const left = deadlineMs - (Date.now() - started)
      if (left <= 0) throw new Error(`no frame within ${deadlineMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiter = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    return this.queue.shift() as Record<string, unknown>
  }

  async closedWithin(deadlineMs = 5_000): Promise<Closed> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`socket not closed within ${deadlineMs} ms`)), deadlineMs)
    })
    try {
      return await Promise.race([this.closed, timeout])
    } finally {
      clearTimeout(timer)
    }
  }
}

export type Attempt =
  | { readonly kind: "open"; readonly client: Client }
  | {
      readonly kind: "refused"
      readonly status: number
      readonly body: { error: { code: string; message: string } }
    }

export type ConnectOptions = {
  token?: string
  /** Put the token in `?access_token=` instead of the Authorization header. */
  inQuery?: boolean
  origin?: string
  headers?: Record<string, string>
  /** false: do not answer the edge's pings (a dead peer). */
  autoPong?: boolean
}

export function tryConnect(url: string, o: ConnectOptions = {}): Promise<Attempt> {
  const headers: Record<string, string> = { ...o.headers }
  let target = url
  if (o.token !== undefined && o.inQuery === true)
    target = `${url}?access_token=${encodeURIComponent(o.token)}`
  else if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`
  const ws = new WebSocket(target, {
    headers,
    autoPong: o.autoPong ?? true,
    ...(o.origin === undefined ? {} : { origin: o.origin }),
  })
  const client = new Client(ws)
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ kind: "open", client }))
    ws.once("unexpected-response", (_req, res) => {
      let text = ""
      res.on("data", (chunk: Buffer) => {
        text += chunk.toString()
      })
      res.on("end", () => {
        resolve({ kind: "refused", status: res.statusCode ?? 0, body: JSON.parse(text) })
        ws.terminate()
      })
    })
    ws.on("error", reject)
  })
}

/** Connects and reads the hello frame, failing the test if the edge refuses. */
export async function connect(
  url: string,
  o: ConnectOptions = {},
): Promise<{ client: Client; hello: Record<string, unknown> }> {
  const attempt = await tryConnect(url, o)
  if (attempt.kind !== "open") throw new Error(`refused: ${attempt.status} ${JSON.stringify(attempt.body)}`)
  return { client: attempt.client, hello: await attempt.client.next() }
}

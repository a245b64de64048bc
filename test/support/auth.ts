/** For auth tests: the auth ports over a fresh schema, with a fake clock and fast scrypt. */
import { randomBytes } from "node:crypto"
import type { NatsConnection } from "nats"
import type pg from "pg"
import type { Test } from "tap"
import { composeAuthPorts } from "../../functions/auth/compose"
import { register } from "../../functions/auth/handler"
import { registerInput } from "../../functions/auth/input"
import { createPasswordHasher, type PasswordHasher } from "../../functions/auth/passwords"
import type { AuthPorts, AuthSettings } from "../../functions/auth/ports"
import { parseKeyEncryptionKey } from "../../functions/auth/signing-keys"
import type { LocalPostgres } from "../../infra/local/postgres-server"
import { natsControlPublisher } from "../../lib/adapters/nats-control"
import { type ControlOutboxRelay, pgControlOutbox } from "../../lib/adapters/pg-control-outbox"
import type { TemplateHandler } from "../../lib/function/contract"
import { serveHandler } from "../../lib/function/server"
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../../lib/protocol/tokens"
import { testLog, withSchema } from "./servers"

export type FakeClock = { now: () => Date; advance: (ms: number) => void }

export function fakeClock(start = Date.parse("2026-11-27T10:00:00Z")): FakeClock {
  let now = start
  return {
    now: () => new Date(now),
    advance: (ms) => {
      now += ms
    },
  }
}

/** Low scrypt cost: the tests check behaviour, bench/auth-hash.ts measures the real cost. */
export const testHashParams = { N: 1024, r: 8, p: 1 }

export function testSettings(overrides: Partial<AuthSettings> = {}): AuthSettings {
  return {
    issuer: DEFAULT_ISSUER,
    audience: DEFAULT_AUDIENCE,
    accessTtlSeconds: 900,
    refreshTtlSeconds: 30 * 86_400,
    registration: "open",
    kek: parseKeyEncryptionKey(randomBytes(32).toString("hex")),
    throttle: {
      accountFree: 5,
      addressFree: 50,
      baseDelayMs: 1000,
      maxDelayMs: 900_000,
      windowMs: 3_600_000,
    },
    ...overrides,
  }
}

/** `control` is the control outbox the auth ports flush (its relay runs only when a test starts it). */
export type AuthFixture = { ports: AuthPorts; clock: FakeClock; pool: pg.Pool; control: ControlOutboxRelay }

export async function withAuth(
  t: Test,
  server: LocalPostgres,
  nc: NatsConnection,
  options: { settings?: Partial<AuthSettings>; passwords?: PasswordHasher } = {},
): Promise<AuthFixture> {
  const { pool } = await withSchema(t, server)
  const clock = fakeClock()
  const control = pgControlOutbox(pool, natsControlPublisher(nc), testLog)
  t.teardown(() => control.stop())
  const ports = composeAuthPorts({
    pool,
    control,
    settings: testSettings(options.settings),
    passwords:
      options.passwords ?? createPasswordHasher({ params: testHashParams, concurrency: 2, queueMax: 100 }),
    now: clock.now,
  })
  return { ports, clock, pool, control }
}

/** Every JSON message on `subject` from now on, in arrival order; subscribed when this resolves. */
export async function collect(t: Test, nc: NatsConnection, subject: string): Promise<unknown[]> {
  const seen: unknown[] = []
  const sub = nc.subscribe(subject, { callback: (_err, msg) => seen.push(msg.json()) })
  t.teardown(() => sub.unsubscribe())
  await nc.flush()
  return seen
}

/** Registers a user through the auth function's own logic; returns their id and access token. */
export async function registerUser(
  auth: AuthFixture,
  username: string,
): Promise<{ id: string; token: string }> {
  const r = await register(
    registerInput.parse({ username, password: "correct horse battery" }),
    undefined,
    auth.ports,
  )
  return { id: r.user.id, token: r.access_token }
}

/** Serves a function's routes on a free port for HTTP tests; stopped in teardown. */
export async function serveForTest(
  t: Test,
  handler: TemplateHandler,
  maxBodyBytes = 200_000,
): Promise<string> {
  const server = await serveHandler(handler, { host: "127.0.0.1", port: 0, maxBodyBytes, log: testLog })
  t.teardown(() => server.drain(100))
  return `http://127.0.0.1:${server.port}`
}

import { randomUUID } from "node:crypto"
import type pg from "pg"
import { pgLoginThrottle } from "../../lib/adapters/pg-login-throttle"
import { pgSessionStore } from "../../lib/adapters/pg-sessions"
import { pgSigningKeyStore } from "../../lib/adapters/pg-signing-keys"
import { pgUserStore } from "../../lib/adapters/pg-users"
import type { ControlOutbox } from "../../lib/ports"
import type { PasswordHasher } from "./passwords"
import type { AuthPorts, AuthSettings } from "./ports"

/** The auth ports over PostgreSQL and NATS; tests pass their own clock and id generator. */
export function composeAuthPorts(deps: {
  pool: pg.Pool
  control: ControlOutbox
  settings: AuthSettings
  passwords: PasswordHasher
  now?: () => Date
  newId?: () => string
}): AuthPorts {
  return {
    users: pgUserStore(deps.pool),
    sessions: pgSessionStore(deps.pool),
    keys: pgSigningKeyStore(deps.pool),
    throttle: pgLoginThrottle(deps.pool),
    control: deps.control,
    passwords: deps.passwords,
    settings: deps.settings,
    now: deps.now ?? (() => new Date()),
    newId: deps.newId ?? randomUUID,
  }
}

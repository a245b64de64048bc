import type { ControlOutbox, LoginThrottle, SessionStore, SigningKeyStore, UserStore } from "../../lib/ports"
import type { TokenSettings } from "./access-tokens"
import type { PasswordHasher } from "./passwords"
import type { KeyEncryptionKey } from "./signing-keys"
import type { ThrottleSettings } from "./throttle"

export type AuthSettings = TokenSettings & {
  readonly refreshTtlSeconds: number
  /** `admin`: once an account exists, only an admin may create more. */
  readonly registration: "open" | "admin"
  readonly kek: KeyEncryptionKey
  readonly throttle: ThrottleSettings
}

/** Everything the auth handlers use; tests pass real adapters with a fake clock and ids. */
export type AuthPorts = {
  readonly users: UserStore
  readonly sessions: SessionStore
  readonly keys: SigningKeyStore
  readonly throttle: LoginThrottle
  /** Publishes the revocation notices that sessions queued (edges close the sockets). */
  readonly control: ControlOutbox
  readonly passwords: PasswordHasher
  readonly settings: AuthSettings
  readonly now: () => Date
  /** A new UUID (users, sessions, token ids). */
  readonly newId: () => string
}

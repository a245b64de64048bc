-- Accounts, login sessions and token signing keys (functions/auth; docs/auth.md).

CREATE TABLE users (
  id uuid PRIMARY KEY,
  -- As the user typed it, NFKC-normalised: what others see.
  username text NOT NULL,
  -- NFKC + case fold of username: two names that differ only in case or form collide here.
  username_key text NOT NULL,
  -- scrypt$N$r$p$salt$hash (base64url), so parameters can change without a migration.
  password_hash text NOT NULL,
  is_admin boolean NOT NULL DEFAULT false,
  disabled_at timestamptz,
  created_at timestamptz NOT NULL,
  CONSTRAINT users_username_key UNIQUE (username_key)
);

-- One row per login: every refresh token of a login belongs to its family, and revoking the
-- family (logout, reuse of a rotated token, disabling the user) ends the login.
CREATE TABLE token_families (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_reason text
);
CREATE INDEX token_families_live_by_user ON token_families (user_id) WHERE revoked_at IS NULL;

-- Only the SHA-256 of a refresh token is stored; a token is exchanged once (rotated_at).
CREATE TABLE refresh_tokens (
  token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
  family_id uuid NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
  issued_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  rotated_at timestamptz
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

-- Ed25519 signing keys. The private key is AES-256-GCM encrypted with the key-encryption key
-- (secret auth-key-encryption-key); kek_id tells which one, so a wrong secret is reported clearly.
CREATE TABLE signing_keys (
  kid text PRIMARY KEY,
  public_jwk jsonb NOT NULL,
  private_key_sealed bytea NOT NULL,
  kek_id text NOT NULL,
  created_at timestamptz NOT NULL,
  -- Set when a newer key takes over: from then on the key only verifies.
  retired_at timestamptz,
  -- The key stays in the JWKS until every token it signed has expired.
  published_until timestamptz
);
-- At most one key signs: concurrent first starts cannot both create one.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;

-- Login attempts per username and per client address, shared by every instance.
CREATE TABLE login_throttle (
  scope text NOT NULL CHECK (scope IN ('account', 'address')),
  key text NOT NULL,
  attempts integer NOT NULL,
  last_attempt_at timestamptz NOT NULL,
  blocked_until timestamptz,
  PRIMARY KEY (scope, key)
);
CREATE INDEX login_throttle_by_age ON login_throttle (last_attempt_at);

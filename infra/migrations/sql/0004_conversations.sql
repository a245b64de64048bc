-- Conversations and their members (functions/conversations). Ids are server-generated from a
-- safe alphabet, since they become NATS subject tokens.
CREATE TABLE conversations (
  id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
  kind text NOT NULL CHECK (kind IN ('direct', 'group')),
  title text CHECK (title IS NULL OR length(title) BETWEEN 1 AND 200),
  -- "<lower user id>:<higher user id>": one direct conversation per pair, created idempotently.
  direct_key text UNIQUE,
  created_by uuid NOT NULL REFERENCES users (id),
  created_at timestamptz NOT NULL,
  CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
);

CREATE TABLE conversation_members (
  conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id),
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  joined_at timestamptz NOT NULL,
  -- The member's read receipt: monotonic, unread counts are derived from it.
  last_read_seq bigint NOT NULL DEFAULT 0 CHECK (last_read_seq >= 0),
  PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_by_user ON conversation_members (user_id);

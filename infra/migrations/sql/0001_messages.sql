-- Messages as stored by the sequencer (functions/persist). Each conversation has its own
-- contiguous seq 1, 2, 3, ...; conversation_heads holds the last one handed out.
CREATE TABLE conversation_heads (
  conversation_id text PRIMARY KEY,
  last_seq bigint NOT NULL CHECK (last_seq >= 0)
);

CREATE TABLE messages (
  conversation_id text NOT NULL,
  seq bigint NOT NULL CHECK (seq > 0),
  id uuid NOT NULL,
  sender_id text NOT NULL,
  body jsonb NOT NULL,
  reply_to uuid,
  sent_at timestamptz NOT NULL,
  stored_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (conversation_id, seq),
  -- Idempotency beyond the JetStream dedup window: a client id is stored once per sender.
  CONSTRAINT messages_sender_client_id UNIQUE (sender_id, id)
);

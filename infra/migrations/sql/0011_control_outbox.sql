-- Membership changes and revocations that the edges must hear of are written here in the
-- transaction (or statement) that makes the change, and deleted once NATS has stored them. A
-- crash or a NATS outage between the commit and the publish then delays the event instead of
-- losing it: a removed member would otherwise keep receiving the conversation on the sockets
-- they have open, a disabled user would keep theirs (docs/conversations.md, "Membership events").
-- Rows of one order_key (a conversation, or a user for revocations) are published in id order
-- under an advisory lock on the key; a conversation's changes take its row lock before they
-- insert here, so their ids follow their commit order.
CREATE TABLE control_outbox (
  id bigserial PRIMARY KEY,
  order_key text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('membership', 'revoked')),
  event jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX control_outbox_by_key ON control_outbox (order_key, id);

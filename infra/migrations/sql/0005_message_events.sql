-- Edits, recalls and reactions are events with their own seq in the conversation (so clients
-- syncing by seq see them), and their effect is applied to the message they target (so history
-- shows the current state). Read receipts live on the member row (last_read_seq).
ALTER TABLE messages
  ADD COLUMN kind text NOT NULL DEFAULT 'message' CHECK (kind IN ('message', 'edit', 'recall', 'reaction')),
  ADD COLUMN target_id uuid,
  -- On a message: when it was last edited, by whom; when it was recalled (its body is then gone).
  ADD COLUMN edited_at timestamptz,
  ADD COLUMN edited_by text,
  ADD COLUMN recalled_at timestamptz,
  -- Reaction events: which emoji, added or removed.
  ADD COLUMN emoji text,
  ADD COLUMN reaction_op text CHECK (reaction_op IN ('add', 'remove')),
  ALTER COLUMN body DROP NOT NULL,
  ADD CONSTRAINT messages_event_target CHECK ((kind = 'message') = (target_id IS NULL)),
  ADD CONSTRAINT messages_body_present CHECK (body IS NOT NULL OR kind IN ('recall', 'reaction') OR recalled_at IS NOT NULL);

-- Events name their target by id within the conversation.
CREATE INDEX messages_by_conversation_and_id ON messages (conversation_id, id);

CREATE TABLE reactions (
  conversation_id text NOT NULL,
  message_id uuid NOT NULL,
  user_id text NOT NULL,
  emoji text NOT NULL CHECK (length(emoji) BETWEEN 1 AND 64),
  created_at timestamptz NOT NULL,
  PRIMARY KEY (conversation_id, message_id, emoji, user_id)
);

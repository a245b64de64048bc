-- The conversation list (GET /function/conversations) sorts by last activity (the later of this
-- and the conversation's created_at) and pages with a cursor on it: the sequencer keeps the latest
-- `ts` among a conversation's messages here, in the statement that inserts them, so the order
-- comes from one row per conversation instead of a look at every conversation's messages. Edits,
-- recalls and reactions do not move it, and it never goes back (GREATEST), so a conversation only
-- ever moves toward the front of the list.
ALTER TABLE conversation_heads ADD COLUMN last_message_at timestamptz;

-- Existing conversations: the ts of their last message, found from the end of the primary key.
UPDATE conversation_heads h
   SET last_message_at = (SELECT m.sent_at FROM messages m
                           WHERE m.conversation_id = h.conversation_id AND m.kind = 'message'
                           ORDER BY m.seq DESC LIMIT 1);

-- An event's id names it within its conversation (edits, recalls and reactions find their
-- target by it), so it must be unique there, whoever sent it; the sequencer refuses a reused
-- one (ID_TAKEN) before this index would. Replaces the plain index of 0005.
CREATE UNIQUE INDEX messages_conversation_id_unique ON messages (conversation_id, id);
DROP INDEX messages_by_conversation_and_id;

-- A recall empties the bodies of the message's edits too: found by their target.
CREATE INDEX messages_edits_by_target ON messages (conversation_id, target_id) WHERE kind = 'edit';

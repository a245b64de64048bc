-- Files uploaded to the S3-compatible store (functions/files). Ids are server-generated in the
-- safe alphabet: object keys derive from them alone (files/<id>/original). A file belongs to one
-- conversation and one uploader; a file message may only name a ready file of its sender in
-- the same conversation (checked by the sequencer).
CREATE TABLE files (
  id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
  conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  owner_id uuid NOT NULL REFERENCES users (id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
  size bigint NOT NULL CHECK (size >= 0),
  content_type text NOT NULL CHECK (length(content_type) BETWEEN 3 AND 255),
  sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  status text NOT NULL CHECK (status IN ('pending', 'ready')),
  -- The store's multipart upload id while a large file is being uploaded.
  upload_id text,
  created_at timestamptz NOT NULL,
  ready_at timestamptz,
  thumbnail_width int,
  thumbnail_height int,
  thumbnail_size int,
  CHECK ((status = 'ready') = (ready_at IS NOT NULL))
);
-- The sweeper looks for pending uploads older than a limit.
CREATE INDEX files_pending_by_age ON files (created_at) WHERE status = 'pending';
-- Which messages show a file: the retention sweep deletes ready files that none shows (never
-- sent, or recalled: a recall empties the body).
CREATE INDEX messages_by_file ON messages (conversation_id, (body ->> 'file_id'))
  WHERE kind = 'message' AND body ->> 'kind' = 'file';
CREATE INDEX files_ready_by_age ON files (ready_at) WHERE status = 'ready';

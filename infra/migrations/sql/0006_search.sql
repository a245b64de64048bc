-- Full-text search (functions/index writes, functions/search reads; docs/search.md). One row per
-- message, membership-independent: the search function filters by the caller's conversations.
-- The tsvector is built by Cove's own tokenizer (lib/search/tokenize.ts: words, CJK unigrams and
-- bigrams) and stored as given, so no text search configuration or dictionary is involved.
CREATE TABLE search_docs (
  conversation_id text NOT NULL,
  message_id uuid NOT NULL,
  seq bigint NOT NULL CHECK (seq > 0),
  sender_id text NOT NULL,
  sent_at timestamptz NOT NULL,
  -- The conversation seq of the last event reflected here (the message, an edit, a recall). A
  -- write with a lower version is ignored, so redeliveries and a concurrent rebuild cannot bring
  -- back an older text.
  version bigint NOT NULL CHECK (version > 0),
  -- What was indexed (text, caption, file name), for snippets; NULL once recalled.
  content text,
  tsv tsvector,
  indexed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (conversation_id, message_id),
  CHECK ((content IS NULL) = (tsv IS NULL))
);
-- Each tsvector also holds its conversation as a lexeme ('~c:<id>'), so one GIN search both
-- finds the words and keeps only the caller's conversations.
CREATE INDEX search_docs_tsv ON search_docs USING gin (tsv);

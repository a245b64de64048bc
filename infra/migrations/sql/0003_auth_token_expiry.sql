-- Logins prune expired refresh tokens a few at a time (lib/adapters/pg-sessions.ts); this index
-- keeps that cheap however many tokens are stored. 0002 was already committed, hence a new file.
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

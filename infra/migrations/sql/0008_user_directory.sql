-- The user directory (GET /function/auth/users?q=) finds names by the start of their folded
-- form: a pattern-ops index serves `username_key LIKE 'prefix%'` whatever the collation.
CREATE INDEX users_username_key_prefix ON users (username_key text_pattern_ops) WHERE disabled_at IS NULL;

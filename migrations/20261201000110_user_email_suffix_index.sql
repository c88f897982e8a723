-- no-transaction
-- ends_with on email: lower(email) LIKE '%x' is rewritten as reverse(lower(email)) LIKE
-- reverse(x) || '%', a btree range (e.g. '@example.com' matching a quarter of all users is
-- counted from the index alone). INCLUDE (email): see 20261201000109.
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_email_suffix_idx ON "user" (reverse(lower(email)) text_pattern_ops) INCLUDE (email);

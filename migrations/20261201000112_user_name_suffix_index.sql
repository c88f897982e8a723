-- no-transaction
-- ends_with on name as a btree range on the reversed name (see 20261201000110).
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_name_suffix_idx ON "user" (reverse(lower(name)) text_pattern_ops) INCLUDE (name);

-- no-transaction
-- starts_with on name as a btree range (see 20261201000109).
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_name_prefix_idx ON "user" (lower(name) text_pattern_ops) INCLUDE (name);

-- no-transaction
-- Sort by createdAt (the default, newest first) with LIMIT/OFFSET.
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_created_at_idx ON "user" (created_at, id);

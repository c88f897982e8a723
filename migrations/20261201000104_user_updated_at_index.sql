-- no-transaction
-- Sort by updatedAt.
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_updated_at_idx ON "user" (updated_at, id);

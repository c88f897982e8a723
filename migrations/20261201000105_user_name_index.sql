-- no-transaction
-- Sort by name.
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_name_idx ON "user" (name, id);

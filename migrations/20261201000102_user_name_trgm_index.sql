-- no-transaction
-- contains / starts_with / ends_with on name, case-insensitive.
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_name_trgm_idx ON "user" USING gin (lower(name) gin_trgm_ops);

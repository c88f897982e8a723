-- no-transaction
-- contains / starts_with / ends_with on email, case-insensitive.
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_email_trgm_idx ON "user" USING gin (lower(email) gin_trgm_ops);

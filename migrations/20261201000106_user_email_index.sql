-- no-transaction
-- Sort by email.
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_email_idx ON "user" (email, id);

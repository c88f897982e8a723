-- no-transaction
-- banned=true is a small slice: count it and page it without walking everyone.
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_banned_idx ON "user" (created_at, id) WHERE banned IS TRUE;

-- no-transaction
-- The role filter and the last-admin count match one role inside the comma-joined string, by
-- Better-Auth's rule (warden_role_names, migration 20261206000001).
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_role_names_idx ON "user"
    USING gin (warden_role_names(role));

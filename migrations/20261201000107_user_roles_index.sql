-- no-transaction
-- The role filter (and the last-admin check) match one role inside the comma-joined string.
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_roles_idx ON "user"
    USING gin ((string_to_array(replace(coalesce(role, ''), ' ', ''), ',')));

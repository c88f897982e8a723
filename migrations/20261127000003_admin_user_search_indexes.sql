-- Indexes for GET /admin/users on large user tables (a million rows and more):
-- trigram indexes serve contains / starts_with / ends_with searches (case-insensitive),
-- btree indexes serve each sort order with LIMIT/OFFSET. Better-Auth never needs them.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS warden_user_email_trgm_idx ON "user" USING gin (lower(email) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS warden_user_name_trgm_idx ON "user" USING gin (lower(name) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS warden_user_created_at_idx ON "user" (created_at, id);
CREATE INDEX IF NOT EXISTS warden_user_updated_at_idx ON "user" (updated_at, id);
CREATE INDEX IF NOT EXISTS warden_user_name_idx ON "user" (name, id);
CREATE INDEX IF NOT EXISTS warden_user_email_idx ON "user" (email, id);
-- The role filter (and the last-admin check) match one role inside the comma-joined string.
CREATE INDEX IF NOT EXISTS warden_user_roles_idx ON "user"
    USING gin ((string_to_array(replace(coalesce(role, ''), ' ', ''), ',')));
-- banned=true is a small slice: count it and page it without walking everyone.
CREATE INDEX IF NOT EXISTS warden_user_banned_idx ON "user" (created_at, id) WHERE banned IS TRUE;

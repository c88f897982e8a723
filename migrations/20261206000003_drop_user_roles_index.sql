-- no-transaction
-- The index on the old expression (every space removed before splitting), which no query uses
-- any more: warden_user_role_names_idx replaces it.
DROP INDEX CONCURRENTLY IF EXISTS warden_user_roles_idx;

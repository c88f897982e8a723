-- Who really acted, from where, in which request: an admin impersonating a user (Better-Auth's
-- admin plugin) acts through a session whose user is the one impersonated, so `actor_id` alone
-- names the wrong person. Each row now records the session the write was made in, the admin
-- behind that session when it is an impersonation, the client's address (as warden resolved it,
-- TRUSTED_PROXIES included) and the request id the response carried (`x-request-id`, in every
-- log line of the request). Nullable: rows written before this migration know none of them.
-- Adding nullable columns without a default rewrites nothing and holds its lock for a moment.
ALTER TABLE warden_audit_log
    ADD COLUMN IF NOT EXISTS session_id text,
    ADD COLUMN IF NOT EXISTS impersonated_by text,
    ADD COLUMN IF NOT EXISTS client_ip text,
    ADD COLUMN IF NOT EXISTS request_id text;
-- `GET /admin/audit?actor=` finds an admin's writes made while impersonating someone too.
CREATE INDEX IF NOT EXISTS warden_audit_log_impersonator_idx ON warden_audit_log (impersonated_by, id DESC)
    WHERE impersonated_by IS NOT NULL;

-- warden's own table: every admin write, who did it, to whom, and what changed.
-- No foreign keys: the trail outlives the users and sessions it mentions.
CREATE TABLE IF NOT EXISTS warden_audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor_id text NOT NULL,
    action text NOT NULL,
    target_user_id text,
    target_session_id text,
    details jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS warden_audit_log_actor_idx ON warden_audit_log (actor_id, id DESC);
CREATE INDEX IF NOT EXISTS warden_audit_log_target_idx ON warden_audit_log (target_user_id, id DESC);

-- Better-Auth's organization plugin (teams and dynamic access control on), snake_case,
-- timestamptz: exactly what Better-Auth 1.7.25 emits (tests/fixtures/
-- better-auth-1.7.25-organization-postgres.sql), and idempotent on a database where
-- Better-Auth created them first. The session gains the active organization and team.

CREATE TABLE IF NOT EXISTS "organization" (
    "id" text NOT NULL PRIMARY KEY,
    "name" text NOT NULL,
    "slug" text NOT NULL UNIQUE,
    "logo" text,
    "created_at" timestamptz NOT NULL,
    "metadata" text
);

CREATE TABLE IF NOT EXISTS "organization_role" (
    "id" text NOT NULL PRIMARY KEY,
    "organization_id" text NOT NULL REFERENCES "organization" ("id") ON DELETE CASCADE,
    "role" text NOT NULL,
    "permission" text NOT NULL,
    "created_at" timestamptz DEFAULT CURRENT_TIMESTAMP NOT NULL,
    "updated_at" timestamptz
);

CREATE TABLE IF NOT EXISTS "team" (
    "id" text NOT NULL PRIMARY KEY,
    "name" text NOT NULL,
    "member_count" integer NOT NULL,
    "organization_id" text NOT NULL REFERENCES "organization" ("id") ON DELETE CASCADE,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz
);

CREATE TABLE IF NOT EXISTS "team_member" (
    "id" text NOT NULL PRIMARY KEY,
    "team_id" text NOT NULL REFERENCES "team" ("id") ON DELETE CASCADE,
    "user_id" text NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
    "membership_key" text UNIQUE,
    "created_at" timestamptz
);

CREATE TABLE IF NOT EXISTS "member" (
    "id" text NOT NULL PRIMARY KEY,
    "organization_id" text NOT NULL REFERENCES "organization" ("id") ON DELETE CASCADE,
    "user_id" text NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
    "role" text NOT NULL,
    "created_at" timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS "invitation" (
    "id" text NOT NULL PRIMARY KEY,
    "organization_id" text NOT NULL REFERENCES "organization" ("id") ON DELETE CASCADE,
    "email" text NOT NULL,
    "role" text,
    "team_id" text,
    "status" text NOT NULL,
    "expires_at" timestamptz NOT NULL,
    "created_at" timestamptz DEFAULT CURRENT_TIMESTAMP NOT NULL,
    "inviter_id" text NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE
);

ALTER TABLE "session" ADD COLUMN IF NOT EXISTS "active_organization_id" text;
ALTER TABLE "session" ADD COLUMN IF NOT EXISTS "active_team_id" text;
ALTER TABLE "invitation" ADD COLUMN IF NOT EXISTS "team_id" text;

CREATE INDEX IF NOT EXISTS "organization_role_organization_id_idx" ON "organization_role" ("organization_id");
CREATE INDEX IF NOT EXISTS "organization_role_role_idx" ON "organization_role" ("role");
CREATE INDEX IF NOT EXISTS "team_organization_id_idx" ON "team" ("organization_id");
CREATE INDEX IF NOT EXISTS "team_member_team_id_idx" ON "team_member" ("team_id");
CREATE INDEX IF NOT EXISTS "team_member_user_id_idx" ON "team_member" ("user_id");
CREATE INDEX IF NOT EXISTS "member_organization_id_idx" ON "member" ("organization_id");
CREATE INDEX IF NOT EXISTS "member_user_id_idx" ON "member" ("user_id");
CREATE INDEX IF NOT EXISTS "invitation_organization_id_idx" ON "invitation" ("organization_id");
CREATE INDEX IF NOT EXISTS "invitation_email_idx" ON "invitation" ("email");

-- Membership and dynamic roles decide organization permissions: like user rows and sessions,
-- every change is announced, so warden's cache of them drops what changed (as in
-- 20261127000004). The payload is a column of the row: the member's user, the role's
-- organization (both the old and the new value when an UPDATE moves the row). INSERTs count
-- too: a new membership must replace a cached "not a member".
CREATE OR REPLACE FUNCTION warden_notify_change_of() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_key text;
    old_key text;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        new_key := to_jsonb(NEW) ->> TG_ARGV[1];
        PERFORM pg_notify(TG_ARGV[0], new_key);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        old_key := to_jsonb(OLD) ->> TG_ARGV[1];
        IF old_key IS DISTINCT FROM new_key THEN
            PERFORM pg_notify(TG_ARGV[0], old_key);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS warden_member_changed ON "member";
CREATE TRIGGER warden_member_changed AFTER INSERT OR UPDATE OR DELETE ON "member"
    FOR EACH ROW EXECUTE FUNCTION warden_notify_change_of('warden_member', 'user_id');
DROP TRIGGER IF EXISTS warden_organization_role_changed ON "organization_role";
CREATE TRIGGER warden_organization_role_changed AFTER INSERT OR UPDATE OR DELETE ON "organization_role"
    FOR EACH ROW EXECUTE FUNCTION warden_notify_change_of('warden_organization_role', 'organization_id');

DROP TRIGGER IF EXISTS warden_member_truncated ON "member";
CREATE TRIGGER warden_member_truncated AFTER TRUNCATE ON "member"
    FOR EACH STATEMENT EXECUTE FUNCTION warden_notify_truncate('member');
DROP TRIGGER IF EXISTS warden_organization_role_truncated ON "organization_role";
CREATE TRIGGER warden_organization_role_truncated AFTER TRUNCATE ON "organization_role"
    FOR EACH STATEMENT EXECUTE FUNCTION warden_notify_truncate('organization_role');

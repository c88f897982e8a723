-- TRUNCATE fires no row trigger, so the change notifications of 20261127000004 miss a mass
-- sign-out by `TRUNCATE session` (or a wiped user table): cached sessions and users would stay
-- valid until their TTL. These statement-level triggers tell warden to forget the whole table.

CREATE OR REPLACE FUNCTION warden_notify_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('warden_truncate', TG_ARGV[0]);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS warden_user_truncated ON "user";
CREATE TRIGGER warden_user_truncated AFTER TRUNCATE ON "user"
    FOR EACH STATEMENT EXECUTE FUNCTION warden_notify_truncate('user');

DROP TRIGGER IF EXISTS warden_session_truncated ON session;
CREATE TRIGGER warden_session_truncated AFTER TRUNCATE ON session
    FOR EACH STATEMENT EXECUTE FUNCTION warden_notify_truncate('session');

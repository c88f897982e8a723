-- warden caches user rows and sessions in memory and must drop an entry the moment the row
-- changes, whoever changes it (Better-Auth, warden, or plain SQL). These triggers tell it:
-- every UPDATE or DELETE of a user or a session sends the row's id on a NOTIFY channel that
-- warden LISTENs to. (INSERTs need no notice: nothing absent is ever cached.)

CREATE OR REPLACE FUNCTION warden_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], CASE TG_OP WHEN 'DELETE' THEN OLD.id ELSE NEW.id END);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS warden_user_changed ON "user";
CREATE TRIGGER warden_user_changed AFTER UPDATE OR DELETE ON "user"
    FOR EACH ROW EXECUTE FUNCTION warden_notify_change('warden_user');

DROP TRIGGER IF EXISTS warden_session_changed ON session;
CREATE TRIGGER warden_session_changed AFTER UPDATE OR DELETE ON session
    FOR EACH ROW EXECUTE FUNCTION warden_notify_change('warden_session');

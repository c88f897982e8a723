-- warden keeps OAuth clients' and opaque access tokens' rows in memory and must drop one the
-- moment anything its verdict reads changes, whoever changes it (Better-Auth's revocation
-- endpoint, an admin disabling a client, a session's deletion setting `session_id` to NULL).
-- A client is named by its `client_id` on `warden_oauth_client`; a token by the hex SHA-256 of
-- its stored form on `warden_oauth_token` (never the stored form itself: any role may LISTEN).
-- A TRUNCATE tells warden to forget every row of the table.

CREATE OR REPLACE FUNCTION warden_notify_oauth_client() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (OLD.client_id, OLD.disabled) IS DISTINCT FROM (NEW.client_id, NEW.disabled) THEN
        PERFORM pg_notify('warden_oauth_client', OLD.client_id);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS warden_oauth_client_changed ON oauth_client;
CREATE TRIGGER warden_oauth_client_changed AFTER UPDATE OR DELETE ON oauth_client
    FOR EACH ROW EXECUTE FUNCTION warden_notify_oauth_client();

DROP TRIGGER IF EXISTS warden_oauth_client_truncated ON oauth_client;
CREATE TRIGGER warden_oauth_client_truncated AFTER TRUNCATE ON oauth_client
    FOR EACH STATEMENT EXECUTE FUNCTION warden_notify_truncate('oauth_client');

CREATE OR REPLACE FUNCTION warden_notify_oauth_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (OLD.token, OLD.client_id, OLD.session_id, OLD.user_id, OLD.resources,
                            OLD.expires_at, OLD.revoked, OLD.confirmation, OLD.scopes)
                           IS DISTINCT FROM
                           (NEW.token, NEW.client_id, NEW.session_id, NEW.user_id, NEW.resources,
                            NEW.expires_at, NEW.revoked, NEW.confirmation, NEW.scopes) THEN
        PERFORM pg_notify('warden_oauth_token', encode(sha256(convert_to(OLD.token, 'UTF8')), 'hex'));
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS warden_oauth_token_changed ON oauth_access_token;
CREATE TRIGGER warden_oauth_token_changed AFTER UPDATE OR DELETE ON oauth_access_token
    FOR EACH ROW EXECUTE FUNCTION warden_notify_oauth_token();

DROP TRIGGER IF EXISTS warden_oauth_token_truncated ON oauth_access_token;
CREATE TRIGGER warden_oauth_token_truncated AFTER TRUNCATE ON oauth_access_token
    FOR EACH STATEMENT EXECUTE FUNCTION warden_notify_truncate('oauth_access_token');

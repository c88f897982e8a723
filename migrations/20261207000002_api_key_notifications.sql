-- warden keeps API keys' rows in memory, keyed by their stored form, and must drop one the
-- moment anything its checks before a claim read changes, whoever changes it. This trigger
-- sends, on `warden_api_key`, the hex SHA-256 of the key's stored form (never the stored form
-- itself: without the plugin's hashing that is the key, and any role may LISTEN; and a digest
-- keeps the payload short, whatever the key's length) when such a column changes or the row
-- goes away. The columns every use writes (`last_request`, `updated_at`, `request_count`, a
-- `remaining` that stays a number, `last_refill_at`) send nothing: they change on every
-- request, and the claim reads them fresh from the locked row. A TRUNCATE tells warden to
-- forget every key.

CREATE OR REPLACE FUNCTION warden_notify_api_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('warden_api_key', encode(sha256(convert_to(OLD.key, 'UTF8')), 'hex'));
    ELSIF (OLD.key, OLD.config_id, OLD.reference_id, OLD.enabled, OLD.expires_at, OLD.permissions,
           OLD.metadata, OLD.name, OLD.start, OLD.prefix, OLD.remaining IS NULL, OLD.refill_interval,
           OLD.refill_amount, OLD.rate_limit_enabled, OLD.rate_limit_time_window, OLD.rate_limit_max)
          IS DISTINCT FROM
          (NEW.key, NEW.config_id, NEW.reference_id, NEW.enabled, NEW.expires_at, NEW.permissions,
           NEW.metadata, NEW.name, NEW.start, NEW.prefix, NEW.remaining IS NULL, NEW.refill_interval,
           NEW.refill_amount, NEW.rate_limit_enabled, NEW.rate_limit_time_window, NEW.rate_limit_max) THEN
        PERFORM pg_notify('warden_api_key', encode(sha256(convert_to(OLD.key, 'UTF8')), 'hex'));
        IF NEW.key IS DISTINCT FROM OLD.key THEN
            PERFORM pg_notify('warden_api_key', encode(sha256(convert_to(NEW.key, 'UTF8')), 'hex'));
        END IF;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS warden_api_key_changed ON apikey;
CREATE TRIGGER warden_api_key_changed AFTER UPDATE OR DELETE ON apikey
    FOR EACH ROW EXECUTE FUNCTION warden_notify_api_key();

DROP TRIGGER IF EXISTS warden_api_key_truncated ON apikey;
CREATE TRIGGER warden_api_key_truncated AFTER TRUNCATE ON apikey
    FOR EACH STATEMENT EXECUTE FUNCTION warden_notify_truncate('apikey');

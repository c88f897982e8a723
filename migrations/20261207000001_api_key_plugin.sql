-- Better-Auth's api-key plugin (@better-auth/api-key), snake_case, timestamptz: exactly the
-- table Better-Auth 1.7.25 with the plugin 1.7.21 emits (../shared/fixtures/
-- better-auth-1.7.25-apikey-postgres.sql), and idempotent on a database where Better-Auth
-- created it first. `key` holds base64url(SHA-256(key)) without padding, or the key itself
-- when the plugin runs with `disableKeyHashing`; `reference_id` is the owner (a user, or an
-- organization for a configuration with `references: "organization"`). Time spans
-- (`refill_interval`, `rate_limit_time_window`) are milliseconds.

CREATE TABLE IF NOT EXISTS "apikey" (
    "id" text NOT NULL PRIMARY KEY,
    "config_id" text NOT NULL,
    "name" text,
    "start" text,
    "reference_id" text NOT NULL,
    "prefix" text,
    "key" text NOT NULL,
    "refill_interval" integer,
    "refill_amount" integer,
    "last_refill_at" timestamptz,
    "enabled" boolean,
    "rate_limit_enabled" boolean,
    "rate_limit_time_window" integer,
    "rate_limit_max" integer,
    "request_count" integer,
    "remaining" integer,
    "last_request" timestamptz,
    "expires_at" timestamptz,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL,
    "permissions" text,
    "metadata" text
);

CREATE INDEX IF NOT EXISTS "apikey_config_id_idx" ON "apikey" ("config_id");
CREATE INDEX IF NOT EXISTS "apikey_key_idx" ON "apikey" ("key");
CREATE INDEX IF NOT EXISTS "apikey_reference_id_idx" ON "apikey" ("reference_id");

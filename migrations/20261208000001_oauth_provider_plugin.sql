-- Better-Auth's oauth-provider plugin (@better-auth/oauth-provider), snake_case, timestamptz:
-- exactly the tables Better-Auth 1.7.25 with the plugin 1.7.25 emits (tests/fixtures/
-- better-auth-1.7.25-oauth-provider-postgres.sql), and idempotent on a database where
-- Better-Auth created them first. The auth server (auth-server/, OAUTH_PROVIDER on by default)
-- never migrates and refuses to start without them; warden reads them to verify what the
-- plugin issues. `token` in oauth_access_token and oauth_refresh_token, and `client_secret`,
-- hold base64url(SHA-256(value)) without padding (the plugin's storeTokens and
-- storeClientSecret "hashed"); `revoked` is when a refresh token was revoked or rotated; list
-- columns (`scopes`, `resources`, `redirect_uris`, ...) are JSON arrays. A resource's
-- `identifier` is what tokens name in `resource` and carry in `aud`, and what
-- oauth_client_resource.resource_id links a client to.

CREATE TABLE IF NOT EXISTS "oauth_client" (
    "id" text NOT NULL PRIMARY KEY,
    "client_id" text NOT NULL UNIQUE,
    "client_secret" text,
    "client_discovery_id" text,
    "disabled" boolean,
    "skip_consent" boolean,
    "enable_end_session" boolean,
    "subject_type" text,
    "scopes" jsonb,
    "client_credentials_scopes" jsonb,
    "user_id" text REFERENCES "user" ("id") ON DELETE CASCADE,
    "created_at" timestamptz,
    "updated_at" timestamptz,
    "name" text,
    "uri" text,
    "icon" text,
    "contacts" jsonb,
    "tos" text,
    "policy" text,
    "software_id" text,
    "software_version" text,
    "software_statement" text,
    "redirect_uris" jsonb NOT NULL,
    "post_logout_redirect_uris" jsonb,
    "backchannel_logout_uri" text,
    "backchannel_logout_session_required" boolean,
    "token_endpoint_auth_method" text,
    "application_type" text,
    "jwks" text,
    "jwks_uri" text,
    "grant_types" jsonb,
    "response_types" jsonb,
    "require_pkce" boolean,
    "dpop_bound_access_tokens" boolean,
    "reference_id" text,
    "metadata" jsonb
);

CREATE TABLE IF NOT EXISTS "oauth_resource" (
    "id" text NOT NULL PRIMARY KEY,
    "identifier" text NOT NULL UNIQUE,
    "name" text NOT NULL,
    "access_token_ttl" integer,
    "refresh_token_ttl" integer,
    "signing_algorithm" text,
    "signing_key_id" text,
    "allowed_scopes" jsonb,
    "custom_claims" jsonb,
    "dpop_bound_access_tokens_required" boolean,
    "disabled" boolean,
    "created_at" timestamptz,
    "updated_at" timestamptz,
    "policy_version" integer,
    "metadata" jsonb
);

CREATE TABLE IF NOT EXISTS "oauth_client_resource" (
    "id" text NOT NULL PRIMARY KEY,
    "client_id" text NOT NULL REFERENCES "oauth_client" ("client_id") ON DELETE CASCADE,
    "resource_id" text NOT NULL REFERENCES "oauth_resource" ("identifier") ON DELETE CASCADE,
    "metadata" jsonb,
    "created_at" timestamptz
);

CREATE TABLE IF NOT EXISTS "oauth_refresh_token" (
    "id" text NOT NULL PRIMARY KEY,
    "token" text NOT NULL UNIQUE,
    "client_id" text NOT NULL REFERENCES "oauth_client" ("client_id") ON DELETE CASCADE,
    "session_id" text REFERENCES "session" ("id") ON DELETE SET NULL,
    "user_id" text NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
    "reference_id" text,
    "authorization_code_id" text,
    "resources" jsonb,
    "requested_user_info_claims" jsonb,
    "expires_at" timestamptz NOT NULL,
    "created_at" timestamptz NOT NULL,
    "revoked" timestamptz,
    "rotated_at" timestamptz,
    "rotation_replay_response" text,
    "rotation_replay_expires_at" timestamptz,
    "auth_time" timestamptz,
    "confirmation" jsonb,
    "scopes" jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS "oauth_access_token" (
    "id" text NOT NULL PRIMARY KEY,
    "token" text NOT NULL UNIQUE,
    "client_id" text NOT NULL REFERENCES "oauth_client" ("client_id") ON DELETE CASCADE,
    "session_id" text REFERENCES "session" ("id") ON DELETE SET NULL,
    "user_id" text REFERENCES "user" ("id") ON DELETE CASCADE,
    "reference_id" text,
    "authorization_code_id" text,
    "resources" jsonb,
    "requested_user_info_claims" jsonb,
    "refresh_id" text REFERENCES "oauth_refresh_token" ("id") ON DELETE CASCADE,
    "expires_at" timestamptz NOT NULL,
    "created_at" timestamptz NOT NULL,
    "revoked" timestamptz,
    "confirmation" jsonb,
    "scopes" jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS "oauth_consent" (
    "id" text NOT NULL PRIMARY KEY,
    "client_id" text NOT NULL REFERENCES "oauth_client" ("client_id") ON DELETE CASCADE,
    "user_id" text REFERENCES "user" ("id") ON DELETE CASCADE,
    "reference_id" text,
    "resources" jsonb,
    "requested_user_info_claims" jsonb,
    "scopes" jsonb NOT NULL,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS "oauth_client_assertion" (
    "id" text NOT NULL PRIMARY KEY,
    "expires_at" timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS "oauth_client_user_id_idx" ON "oauth_client" ("user_id");
CREATE INDEX IF NOT EXISTS "oauth_client_resource_client_id_idx" ON "oauth_client_resource" ("client_id");
CREATE INDEX IF NOT EXISTS "oauth_client_resource_resource_id_idx" ON "oauth_client_resource" ("resource_id");
CREATE INDEX IF NOT EXISTS "oauth_refresh_token_client_id_idx" ON "oauth_refresh_token" ("client_id");
CREATE INDEX IF NOT EXISTS "oauth_refresh_token_session_id_idx" ON "oauth_refresh_token" ("session_id");
CREATE INDEX IF NOT EXISTS "oauth_refresh_token_user_id_idx" ON "oauth_refresh_token" ("user_id");
CREATE INDEX IF NOT EXISTS "oauth_refresh_token_authorization_code_id_idx" ON "oauth_refresh_token" ("authorization_code_id");
CREATE INDEX IF NOT EXISTS "oauth_access_token_client_id_idx" ON "oauth_access_token" ("client_id");
CREATE INDEX IF NOT EXISTS "oauth_access_token_session_id_idx" ON "oauth_access_token" ("session_id");
CREATE INDEX IF NOT EXISTS "oauth_access_token_user_id_idx" ON "oauth_access_token" ("user_id");
CREATE INDEX IF NOT EXISTS "oauth_access_token_authorization_code_id_idx" ON "oauth_access_token" ("authorization_code_id");
CREATE INDEX IF NOT EXISTS "oauth_access_token_refresh_id_idx" ON "oauth_access_token" ("refresh_id");
CREATE INDEX IF NOT EXISTS "oauth_consent_client_id_idx" ON "oauth_consent" ("client_id");
CREATE INDEX IF NOT EXISTS "oauth_consent_user_id_idx" ON "oauth_consent" ("user_id");
CREATE UNIQUE INDEX IF NOT EXISTS "oauth_client_resource_client_id_resource_id_uidx" ON "oauth_client_resource" ("client_id", "resource_id");

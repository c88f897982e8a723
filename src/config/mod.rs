//! Configuration: every environment variable warden reads, its default, and its validation.
//!
//! The environment is read once, at start, by [`Config::from_env`]. Each value is checked
//! there, and a bad one stops the start with a message naming the variable, so nothing deeper
//! in the code ever has to deal with a half-valid configuration. README and `.env.example`
//! list the same variables with the same defaults.
//!
//! The configuration then builds what the rest of the crate defines: the pool settings, the
//! [`AuthPolicy`], the HTTP settings, an [`Auth`] ([`Auth::from_env`]) and the server's
//! [`AppState`]. Those modules never import this one.

mod better_auth;
mod caches;
mod database;
mod env;
mod http;
mod roles;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use sqlx::PgPool;

use self::better_auth::{BetterAuthParts, trusted_origins};
use self::caches::CacheParts;
use self::database::DatabaseParts;
use self::env::Env;
use self::http::HttpParts;
use self::roles::RoleParts;
use crate::auth::{AccessControl, Auth, AuthBuilder, AuthPolicy, JwksSettings};
use crate::cache::RowCacheSettings;
use crate::db::{self, PoolSettings};
use crate::error::StartupError;
use crate::http::HttpSettings;
use crate::http::server::ConnectionLimits;
use crate::state::{AdminThroughProxy, AppState, Shared};

pub use crate::auth::policy::SessionCheck;
pub use crate::error::ConfigError;
pub use crate::secret::Secret;

pub use crate::auth::{DEFAULT_BETTER_AUTH_URL, DEFAULT_JWKS_GRACE_SECS, DEFAULT_JWKS_MAX_WAITERS};
pub use crate::http::server::DEFAULT_MAX_CONNECTIONS;

/// The validated configuration. `Debug` never shows secrets: database URLs (they may hold a
/// password) and `BETTER_AUTH_SECRET` are [`Secret`]s.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL` (required): the PostgreSQL database shared with Better-Auth.
    pub database_url: Secret,
    /// `BETTER_AUTH_URL` (default `http://localhost:3000`): Better-Auth's base URL.
    pub better_auth_url: String,
    /// `JWKS_URL` (default `$BETTER_AUTH_URL/api/auth/jwks`).
    pub jwks_url: String,
    /// `JWT_ISSUER` (default `$BETTER_AUTH_URL`): the only `iss` accepted.
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE` (default `$BETTER_AUTH_URL`; a comma list): a token's `aud` must name one.
    pub jwt_audience: Vec<String>,
    /// `JWT_LEEWAY_SECS` (default 30): clock skew allowed on `exp` and `nbf`.
    pub jwt_leeway: Duration,
    /// `JWKS_REFRESH_SECS` (default 300): background refresh period of the key set.
    pub jwks_refresh: Duration,
    /// `JWKS_COOLDOWN_SECS` (default 5): minimum time between two fetches caused by unknown
    /// `kid`s, so a flood of random kids cannot turn warden into a JWKS hammer.
    pub jwks_cooldown: Duration,
    /// `JWKS_TIMEOUT_SECS` (default 5): a JWKS fetch that takes longer is abandoned.
    pub jwks_timeout: Duration,
    /// `JWKS_GRACE_PERIOD_SECS` (default 2592000 = 30 days, Better-Auth's default): how long
    /// after its `expires_at` a key in the database `jwks` table is still used as a fallback.
    pub jwks_grace: Duration,
    /// `JWKS_MAX_WAITERS` (default 8): how many requests with an unknown `kid` may wait for a
    /// JWKS fetch in flight; the rest are answered at once, so a hanging Better-Auth cannot
    /// tie up request slots.
    pub jwks_max_waiters: usize,
    /// `BIND_ADDR` (default `0.0.0.0:8080`).
    pub bind_addr: SocketAddr,
    /// `RUN_MIGRATIONS` (default true): `warden serve` migrates the database before serving.
    pub run_migrations: bool,
    /// `DATABASE_MAX_CONNECTIONS` (default 10): size of the connection pool.
    pub database_max_connections: u32,
    /// `ADMIN_ROLES` (default `admin`): a user holding any of these roles is an admin.
    pub admin_roles: Vec<String>,
    /// `ADMIN_USER_IDS` (default empty): users who are admins whatever their roles.
    pub admin_user_ids: Vec<String>,
    /// `ROLES` (default: the roles of `ACCESS_CONTROL_FILE`, else `admin,user`): the roles an
    /// admin may assign.
    pub roles: Vec<String>,
    /// `ACCESS_CONTROL_FILE` (default unset: Better-Auth's default roles): the roles'
    /// permissions, in Better-Auth's shape, shared with the auth server.
    pub access_control: Arc<AccessControl>,
    /// `SESSION_CHECK` (default `auto`): whether a JWT's `sid` must name a live session.
    pub session_check: SessionCheck,
    /// `BETTER_AUTH_SECRET` (optional): verifies signed session tokens (`token.signature`).
    pub better_auth_secret: Option<Secret>,
    /// `COOKIE_AUTH` (default false): Better-Auth's session cookie is a credential too (for
    /// `/auth/verify` and the library), with its cross-site rule (`TRUSTED_ORIGINS`).
    pub cookie_auth: bool,
    /// `TRUSTED_ORIGINS` (default: the origin of `BETTER_AUTH_URL` and every `CORS_ORIGINS`
    /// entry): where a cookie-borne change may come from.
    pub trusted_origins: Vec<String>,
    /// `SESSION_COOKIE_NAME` (default `$COOKIE_PREFIX.session_token`, with `COOKIE_PREFIX`
    /// default `better-auth`): Better-Auth's session cookie, as its `advanced.cookiePrefix` or
    /// `advanced.cookies.session_token.name` names it.
    pub session_cookie: String,
    /// `SECURE_COOKIES` (default: true when `BETTER_AUTH_URL` is https, as Better-Auth's own
    /// default): read the session cookie in its `__Secure-` form only (Better-Auth's
    /// `advanced.useSecureCookies`); false: in its plain form only.
    pub secure_cookies: bool,
    /// `REQUIRE_SIGNED_SESSION_TOKENS` (default false): accept a Better-Auth session token as a
    /// bearer credential only in its signed form (`token.signature`), like the bearer plugin's
    /// `requireSignature`. Needs `BETTER_AUTH_SECRET`.
    pub require_signed_session_tokens: bool,
    /// `LOG_FORMAT` (default `pretty`): `pretty` for people, `json` for log pipelines.
    pub log_format: LogFormat,
    /// `CORS_ORIGINS` (default empty: no cross-origin access): the frontend origins allowed to
    /// call warden from a browser, comma-separated; credentials are allowed for them.
    pub cors_origins: Vec<String>,
    /// `BODY_LIMIT_BYTES` (default 65536): larger request bodies get 413.
    pub body_limit_bytes: usize,
    /// `REQUEST_TIMEOUT_SECS` (default 30): a request still running then gets 408.
    pub request_timeout: Duration,
    /// `MAX_CONCURRENT_REQUESTS` (default 1024): beyond this, requests are shed with 503 at once
    /// rather than queued without bound.
    pub max_concurrent_requests: usize,
    /// `MAX_CONNECTIONS` (default 10000): open connections; at the cap the longest-idle
    /// connections are closed to make room, and accepting waits when none is idle.
    pub max_connections: usize,
    /// `HEADER_READ_TIMEOUT_SECS` (default 60, nginx's `client_header_timeout`): a request head
    /// (and the first one on a new connection) must arrive whole within this.
    pub header_read_timeout: Duration,
    /// `KEEP_ALIVE_TIMEOUT_SECS` (default 75, nginx's `keepalive_timeout`): an idle keep-alive
    /// connection is closed after this.
    pub keep_alive_timeout: Duration,
    /// `TRUSTED_PROXIES` (default empty): addresses or CIDR ranges of proxies whose
    /// `X-Forwarded-For` names the client. Otherwise the client is the socket's peer.
    pub trusted_proxies: Vec<IpNet>,
    /// `AUTH_FAILURES_PER_MINUTE` (default 60; 0 turns it off): refused credentials allowed per
    /// client address per minute; beyond, 429 until the minute is over.
    pub auth_failures_per_minute: u32,
    /// `METRICS_ADDR` (default unset: `/metrics` on the main port): serve `/metrics` on this
    /// separate address instead, e.g. `127.0.0.1:9090`, to keep it off the public port.
    pub metrics_addr: Option<SocketAddr>,
    /// `AUTH_PROXY` (default false): forward `/api/auth/*` to `BETTER_AUTH_URL`, so a frontend
    /// can talk to one origin.
    pub auth_proxy: bool,
    /// `AUTH_PROXY_ADMIN` (default `audit`): what the auth proxy does with writes to
    /// Better-Auth's admin endpoints (`/api/auth/admin/*`), which bypass warden's last-admin
    /// rule: `audit` forwards them and records those Better-Auth accepts in the audit trail,
    /// `refuse` answers 403 `admin_through_proxy_refused`.
    pub auth_proxy_admin: AdminThroughProxy,
    /// `CONSOLE` (default true): serve the console (sign-in, profile and admin pages) at
    /// `/console`; false answers 404 there.
    pub console: bool,
    /// `CONSOLE_SOCIAL_PROVIDERS` (default empty: none): the Better-Auth social providers the
    /// console offers a button for (`google,github`), by Better-Auth's ids. Better-Auth has no
    /// endpoint that lists them, so warden is told, and the page never asks the auth server.
    pub console_social_providers: Vec<String>,
    /// `DATABASE_READ_URL` (default unset): a read replica for lag-tolerant reads (admin user
    /// listing, audit log). Authorisation always reads the primary.
    pub database_read_url: Option<Secret>,
    /// `DATABASE_ACQUIRE_TIMEOUT_SECS` (default 5): waiting longer for a pooled connection is a 503.
    pub database_acquire_timeout: Duration,
    /// `DATABASE_IDLE_TIMEOUT_SECS` (default 300): idle pooled connections are closed after this
    /// (lets Neon scale to zero).
    pub database_idle_timeout: Duration,
    /// `DATABASE_STATEMENT_CACHE` (default 100): prepared statements cached per connection; 0
    /// re-prepares every time. (It does not make a transaction-mode pooler without
    /// prepared-statement support work: `warden check` detects that case.)
    pub database_statement_cache: usize,
    /// `DATABASE_CONNECT_RETRY_SECS` (default 30): how long the first connection is retried
    /// (with backoff) before warden gives up; covers a cold Neon compute waking up.
    pub database_connect_retry: Duration,
    /// `TOKEN_CACHE_MB` (default 8; 0 turns it off): memory for verified tokens, so each
    /// distinct token's signature is checked once. Entries die at the token's `exp`.
    pub token_cache_mb: u64,
    /// `USER_CACHE` (default true): keep user rows and sessions in memory, invalidated at once
    /// by PostgreSQL notifications; false reads the database on every request.
    pub user_cache: bool,
    /// `USER_CACHE_TTL_SECS` (default 60): an upper bound on any cached row's age.
    pub user_cache_ttl: Duration,
    /// `USER_CACHE_MB` (default 16): memory for cached users, sessions, memberships and
    /// organization roles together.
    pub user_cache_mb: u64,
    /// `DATABASE_LISTEN_URL` (default `DATABASE_URL`): a direct connection for LISTEN (Neon:
    /// the non-pooled host; transaction-mode poolers do not carry LISTEN).
    pub database_listen_url: Option<Secret>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Lines for people to read (`pretty`).
    Pretty,
    /// One JSON object per line, with the request's span fields (`json`).
    Json,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can pass a map instead of the
    /// process environment. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let database = DatabaseParts::read(&env)?;
        let better_auth = BetterAuthParts::read(&env)?;
        let roles = RoleParts::read(&env)?;
        let http = HttpParts::read(&env)?;
        let caches = CacheParts::read(&env)?;
        let trusted_origins = trusted_origins(&env, &better_auth.url, &http.cors_origins)?;
        Ok(Self {
            database_url: Secret::new(database.url),
            database_read_url: database.read_url.map(Secret::new),
            database_listen_url: database.listen_url.map(Secret::new),
            database_max_connections: database.max_connections,
            database_acquire_timeout: database.acquire_timeout,
            database_idle_timeout: database.idle_timeout,
            database_statement_cache: database.statement_cache,
            database_connect_retry: database.connect_retry,
            run_migrations: database.run_migrations,
            better_auth_url: better_auth.url,
            jwks_url: better_auth.jwks_url,
            jwt_issuer: better_auth.issuer,
            jwt_audience: better_auth.audience,
            jwt_leeway: better_auth.leeway,
            jwks_refresh: better_auth.refresh,
            jwks_cooldown: better_auth.cooldown,
            jwks_timeout: better_auth.timeout,
            jwks_grace: better_auth.grace,
            jwks_max_waiters: better_auth.max_waiters,
            better_auth_secret: better_auth.secret,
            require_signed_session_tokens: better_auth.require_signed_session_tokens,
            cookie_auth: better_auth.cookie_auth,
            session_cookie: better_auth.session_cookie,
            secure_cookies: better_auth.secure_cookies,
            trusted_origins,
            session_check: better_auth.session_check,
            admin_roles: roles.admin_roles,
            admin_user_ids: roles.admin_user_ids,
            roles: roles.roles,
            access_control: roles.access_control,
            bind_addr: http.bind_addr,
            metrics_addr: http.metrics_addr,
            log_format: http.log_format,
            cors_origins: http.cors_origins,
            body_limit_bytes: http.body_limit_bytes,
            request_timeout: http.request_timeout,
            max_concurrent_requests: http.max_concurrent_requests,
            max_connections: http.max_connections,
            header_read_timeout: http.header_read_timeout,
            keep_alive_timeout: http.keep_alive_timeout,
            auth_proxy: http.auth_proxy,
            auth_proxy_admin: http.auth_proxy_admin,
            console: http.console,
            console_social_providers: http.console_social_providers,
            trusted_proxies: http.trusted_proxies,
            auth_failures_per_minute: http.auth_failures_per_minute,
            token_cache_mb: caches.token_cache_mb,
            user_cache: caches.user_cache,
            user_cache_ttl: caches.user_cache_ttl,
            user_cache_mb: caches.user_cache_mb,
        })
    }
}

/// What the configuration builds: the pieces of the library and of the server.
impl Config {
    /// Database pool sizes and timeouts.
    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            max_connections: self.database_max_connections,
            acquire_timeout: self.database_acquire_timeout,
            idle_timeout: self.database_idle_timeout,
            statement_cache: self.database_statement_cache,
            connect_retry: self.database_connect_retry,
        }
    }

    /// Admin rules, roles, session strictness, secret and cookie rules.
    pub fn auth_policy(&self) -> AuthPolicy {
        AuthPolicy {
            admin_roles: self.admin_roles.clone(),
            admin_user_ids: self.admin_user_ids.clone(),
            assignable_roles: self.roles.clone(),
            session_check: self.session_check,
            better_auth_secret: self.better_auth_secret.clone(),
            require_signed_session_tokens: self.require_signed_session_tokens,
            cookie_auth: self.cookie_auth,
            trusted_origins: self.trusted_origins.clone(),
            session_cookie: self.session_cookie.clone(),
            secure_cookies: self.secure_cookies,
            access: Arc::clone(&self.access_control),
        }
    }

    /// CORS, limits, timeouts and the connection cap.
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings {
            cors_origins: self.cors_origins.clone(),
            body_limit_bytes: self.body_limit_bytes,
            request_timeout: self.request_timeout,
            max_concurrent_requests: self.max_concurrent_requests,
            connections: ConnectionLimits {
                header_read_timeout: self.header_read_timeout,
                keep_alive_timeout: self.keep_alive_timeout,
                // A request runs at most REQUEST_TIMEOUT_SECS; a connection that moves no byte
                // for that long and a bit more is a client that stopped reading.
                stall_timeout: self.request_timeout + Duration::from_secs(5),
                max_connections: self.max_connections,
            },
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }

    /// An [`Auth`] builder set up as the configuration says, on the primary pool `db`.
    pub fn auth_builder(&self, db: PgPool) -> Result<AuthBuilder, StartupError> {
        let user_cache = if self.user_cache {
            let url = self
                .database_listen_url
                .as_ref()
                .unwrap_or(&self.database_url)
                .expose();
            let listen =
                db::connect_options(url, self.database_statement_cache).map_err(StartupError::Database)?;
            Some((
                RowCacheSettings {
                    enabled: true,
                    ttl: self.user_cache_ttl,
                    bytes: self.user_cache_mb * 1024 * 1024,
                },
                Some(listen),
            ))
        } else {
            None
        };
        Ok(Auth::builder(db)
            .better_auth_url(self.better_auth_url.clone())
            .jwks_url(self.jwks_url.clone())
            .issuer(self.jwt_issuer.clone())
            .audience(self.jwt_audience.clone())
            .leeway(self.jwt_leeway)
            .jwks_settings(JwksSettings {
                refresh: self.jwks_refresh,
                cooldown: self.jwks_cooldown,
                timeout: self.jwks_timeout,
                grace: self.jwks_grace,
                max_waiters: self.jwks_max_waiters,
            })
            .policy(self.auth_policy())
            .token_cache_bytes(self.token_cache_mb * 1024 * 1024)
            .user_cache(user_cache)
            .trusted_proxies(self.trusted_proxies.clone())
            .failures_per_minute(self.auth_failures_per_minute)
            .checks_capacity(self.max_concurrent_requests))
    }
}

impl Auth {
    /// An `Auth` from the environment (and a `.env` file), with the same variables and
    /// defaults as the `warden` server (README, Configuration): connects to `DATABASE_URL`,
    /// loads the JWKS, starts the background tasks.
    pub async fn from_env() -> Result<Self, StartupError> {
        let _ = dotenvy::dotenv();
        let config = Config::from_env()?;
        let db = db::connect_one(config.database_url.expose(), &config.pool_settings()).await?;
        Self::from_config(&config, db).await
    }

    /// An `Auth` as `config` says, on the primary pool `db`.
    pub async fn from_config(config: &Config, db: PgPool) -> Result<Self, StartupError> {
        config.auth_builder(db)?.build().await
    }
}

impl AppState {
    /// The `warden` server's state: an [`Auth`] on the primary pool, the read replica, HTTP
    /// settings, where `/metrics` goes, the auth proxy's upstream, and the console.
    pub async fn from_config(config: &Config, pools: db::Pools) -> Result<Self, StartupError> {
        let auth = Auth::from_config(config, pools.primary).await?;
        Ok(Shared {
            auth,
            read_db: pools.read,
            http: Arc::new(config.http_settings()),
            metrics_on_main: config.metrics_addr.is_none(),
            auth_proxy: config.auth_proxy.then(|| config.better_auth_url.clone()),
            auth_proxy_admin: config.auth_proxy_admin,
            better_auth_url: config.better_auth_url.clone(),
            console: config.console,
            console_social_providers: config.console_social_providers.clone(),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_derive_from_better_auth_url() {
        let c = config(&[("DATABASE_URL", "postgres://localhost/db")]).unwrap();
        assert_eq!(c.better_auth_url, "http://localhost:3000");
        assert_eq!(c.jwks_url, "http://localhost:3000/api/auth/jwks");
        assert_eq!(c.jwt_issuer, "http://localhost:3000");
        assert_eq!(c.jwt_audience, vec!["http://localhost:3000".to_owned()]);
        assert_eq!(c.jwt_leeway, Duration::from_secs(30));
        assert_eq!(c.jwks_refresh, Duration::from_secs(300));
        assert_eq!(c.jwks_cooldown, Duration::from_secs(5));
        assert_eq!(c.bind_addr.to_string(), "0.0.0.0:8080");
        assert!(c.run_migrations);
        assert_eq!(c.roles, vec!["admin", "user"]);
        assert_eq!(c.admin_roles, vec!["admin"]);
        assert!(c.admin_user_ids.is_empty());
        assert_eq!(c.session_check, SessionCheck::Auto);
        assert!(c.better_auth_secret.is_none());
        assert!(c.console);
        assert_eq!(c.auth_proxy_admin, AdminThroughProxy::Audit);
        assert!(c.console_social_providers.is_empty());
        let social = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("CONSOLE_SOCIAL_PROVIDERS", " google, github ,microsoft-entra-id"),
        ])
        .unwrap();
        assert_eq!(
            social.console_social_providers,
            ["google", "github", "microsoft-entra-id"]
        );
        assert_eq!(c.session_cookie, "better-auth.session_token");
        assert!(!c.secure_cookies, "plain http: the plain cookie");
        let prefixed = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("COOKIE_PREFIX", "myapp"),
        ])
        .unwrap();
        assert_eq!(prefixed.session_cookie, "myapp.session_token");
        let named = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("COOKIE_PREFIX", "myapp"),
            ("SESSION_COOKIE_NAME", "sid"),
        ])
        .unwrap();
        assert_eq!(
            named.session_cookie, "sid",
            "a custom name replaces the prefixed one, as in Better-Auth"
        );

        let c = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("BETTER_AUTH_URL", "https://auth.example.com/"),
            ("JWT_AUDIENCE", "a, b,,c"),
            ("RUN_MIGRATIONS", "false"),
            ("SESSION_CHECK", "Required"),
            ("BETTER_AUTH_SECRET", "s3cret"),
        ])
        .unwrap();
        assert_eq!(c.session_check, SessionCheck::Required);
        assert!(!format!("{c:?}").contains("s3cret"), "secrets never print");
        assert_eq!(c.jwks_url, "https://auth.example.com/api/auth/jwks");
        assert!(
            c.secure_cookies,
            "https: the __Secure- cookie, as Better-Auth names it"
        );
        assert_eq!(c.jwt_audience, vec!["a", "b", "c"]);
        assert!(!c.run_migrations);
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        assert_eq!(config(&[]).unwrap_err(), ConfigError::Missing("DATABASE_URL"));
        let base = ("DATABASE_URL", "postgres://localhost/db");
        for (var, value) in [
            ("DATABASE_URL", "mysql://x"),
            ("BETTER_AUTH_URL", "localhost:3000"),
            ("JWKS_URL", "ftp://x"),
            ("JWT_AUDIENCE", " , "),
            ("JWT_LEEWAY_SECS", "-1"),
            ("JWKS_REFRESH_SECS", "0"),
            ("JWKS_COOLDOWN_SECS", "soon"),
            ("BIND_ADDR", "8080"),
            ("RUN_MIGRATIONS", "maybe"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("ROLES", " , "),
            ("ADMIN_ROLES", "admin;drop"),
            ("SESSION_CHECK", "sometimes"),
            ("LOG_FORMAT", "xml"),
            ("CORS_ORIGINS", "https://app.test/path"),
            ("BODY_LIMIT_BYTES", "12"),
            ("REQUEST_TIMEOUT_SECS", "0"),
            ("MAX_CONCURRENT_REQUESTS", "many"),
            ("METRICS_ADDR", "9090"),
            ("AUTH_PROXY", "perhaps"),
            ("AUTH_PROXY_ADMIN", "allow"),
            ("CONSOLE", "sometimes"),
            ("CONSOLE_SOCIAL_PROVIDERS", "google,GitHub"),
            ("DATABASE_READ_URL", "mysql://replica"),
            ("DATABASE_STATEMENT_CACHE", "-1"),
            ("TOKEN_CACHE_MB", "lots"),
            ("USER_CACHE", "sometimes"),
            ("USER_CACHE_TTL_SECS", "0"),
            ("DATABASE_LISTEN_URL", "redis://x"),
            ("COOKIE_PREFIX", "my app"),
            ("SESSION_COOKIE_NAME", "sid;x=1"),
            ("SECURE_COOKIES", "sometimes"),
        ] {
            let vars = if var == "DATABASE_URL" {
                vec![(var, value)]
            } else {
                vec![base, (var, value)]
            };
            let err = config(&vars).unwrap_err().to_string();
            assert!(err.starts_with(var), "{var}={value:?} gave {err:?}");
        }
    }
}

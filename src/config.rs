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

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use ipnet::IpNet;
use sqlx::PgPool;
use std::sync::Arc;

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

/// Typed reads of one variable each: the default when unset (or empty), else a parsed and
/// range-checked value, else an error naming the variable.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.get(var).ok_or(ConfigError::Missing(var))
    }

    /// A whole number in `range`.
    fn number<T>(&self, var: &'static str, default: T, range: RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        match raw.parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(invalid(
                var,
                format!(
                    "expected a whole number from {} to {}, got {raw:?}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    /// Whole seconds in `range`.
    fn secs(
        &self,
        var: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(Duration::from_secs(default));
        };
        let value = raw
            .parse::<u64>()
            .map_err(|_| invalid(var, format!("expected a whole number of seconds, got {raw:?}")))?;
        if !range.contains(&value) {
            return Err(invalid(
                var,
                format!(
                    "must be between {} and {} seconds, got {value}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(Duration::from_secs(value))
    }

    fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => {
                parse_bool(&v).ok_or_else(|| invalid(var, format!("expected true or false, got {v:?}")))
            }
        }
    }

    /// One of `choices` (case-insensitive), mapped to its value.
    fn choice<T: Copy>(
        &self,
        var: &'static str,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        let wanted = raw.to_ascii_lowercase();
        choices
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                invalid(var, format!("expected {}, got {raw:?}", names.join(" or ")))
            })
    }

    /// A comma list, trimmed, empty items and repeats dropped.
    fn list(&self, var: &'static str, default: &str) -> Vec<String> {
        let mut items: Vec<String> = Vec::new();
        for item in self
            .get(var)
            .unwrap_or_else(|| default.to_owned())
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            if !items.iter().any(|i| i == item) {
                items.push(item.to_owned());
            }
        }
        items
    }

    fn pg_url(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        let url = self.get(var);
        if let Some(url) = &url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(var, "must start with postgres:// or postgresql://"));
        }
        Ok(url)
    }

    fn socket_addr(&self, var: &'static str, example: &str) -> Result<Option<SocketAddr>, ConfigError> {
        self.get(var)
            .map(|v| {
                v.parse()
                    .map_err(|_| invalid(var, format!("expected host:port such as {example}, got {v:?}")))
            })
            .transpose()
    }

    fn http_url(&self, var: &'static str, default: impl FnOnce() -> String) -> Result<String, ConfigError> {
        http_url(var, self.get(var).unwrap_or_else(default))
    }
}

struct DatabaseParts {
    url: String,
    read_url: Option<String>,
    listen_url: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
    idle_timeout: Duration,
    statement_cache: usize,
    connect_retry: Duration,
    run_migrations: bool,
}

impl DatabaseParts {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        env.required("DATABASE_URL")?;
        Ok(Self {
            url: env
                .pg_url("DATABASE_URL")?
                .ok_or(ConfigError::Missing("DATABASE_URL"))?,
            read_url: env.pg_url("DATABASE_READ_URL")?,
            listen_url: env.pg_url("DATABASE_LISTEN_URL")?,
            max_connections: env.number("DATABASE_MAX_CONNECTIONS", 10, 1..=1000)?,
            acquire_timeout: env.secs("DATABASE_ACQUIRE_TIMEOUT_SECS", 5, 1..=300)?,
            idle_timeout: env.secs("DATABASE_IDLE_TIMEOUT_SECS", 300, 1..=86_400)?,
            statement_cache: env.number("DATABASE_STATEMENT_CACHE", 100, 0..=100_000)?,
            connect_retry: env.secs("DATABASE_CONNECT_RETRY_SECS", 30, 0..=3_600)?,
            run_migrations: env.flag("RUN_MIGRATIONS", true)?,
        })
    }
}

struct BetterAuthParts {
    url: String,
    jwks_url: String,
    issuer: String,
    audience: Vec<String>,
    leeway: Duration,
    refresh: Duration,
    cooldown: Duration,
    timeout: Duration,
    grace: Duration,
    max_waiters: usize,
    secret: Option<Secret>,
    require_signed_session_tokens: bool,
    cookie_auth: bool,
    session_cookie: String,
    secure_cookies: bool,
    session_check: SessionCheck,
}

impl BetterAuthParts {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let url = env.http_url("BETTER_AUTH_URL", || DEFAULT_BETTER_AUTH_URL.to_owned())?;
        let base = url.trim_end_matches('/').to_owned();
        let jwks_url = env.http_url("JWKS_URL", || format!("{base}/api/auth/jwks"))?;
        let issuer = env.get("JWT_ISSUER").unwrap_or_else(|| url.clone());
        let audience = env.list("JWT_AUDIENCE", &url);
        if audience.is_empty() {
            return Err(invalid("JWT_AUDIENCE", "names no audience"));
        }
        let secret = env.get("BETTER_AUTH_SECRET").map(Secret::new);
        let require_signed_session_tokens = env.flag("REQUIRE_SIGNED_SESSION_TOKENS", false)?;
        if require_signed_session_tokens && secret.is_none() {
            return Err(invalid(
                "REQUIRE_SIGNED_SESSION_TOKENS",
                "needs BETTER_AUTH_SECRET to check the signatures",
            ));
        }
        let cookie_auth = env.flag("COOKIE_AUTH", false)?;
        if cookie_auth && secret.is_none() {
            return Err(invalid(
                "COOKIE_AUTH",
                "needs BETTER_AUTH_SECRET to check the cookie's signature",
            ));
        }
        let prefix = env
            .get("COOKIE_PREFIX")
            .unwrap_or_else(|| "better-auth".to_owned());
        if !valid_cookie_name(&prefix) {
            return Err(invalid(
                "COOKIE_PREFIX",
                format!("{prefix:?} cannot start a cookie name (letters, digits and !#$%&'*+-.^_`|~ only)"),
            ));
        }
        let session_cookie = env
            .get("SESSION_COOKIE_NAME")
            .unwrap_or_else(|| format!("{prefix}.session_token"));
        if !valid_cookie_name(&session_cookie) {
            return Err(invalid(
                "SESSION_COOKIE_NAME",
                format!("{session_cookie:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~ only)"),
            ));
        }
        let secure_cookies = env.flag("SECURE_COOKIES", url.starts_with("https://"))?;
        Ok(Self {
            jwks_url,
            issuer,
            cookie_auth,
            session_cookie,
            secure_cookies,
            audience,
            leeway: env.secs("JWT_LEEWAY_SECS", 30, 0..=600)?,
            refresh: env.secs("JWKS_REFRESH_SECS", 300, 1..=86_400)?,
            cooldown: env.secs("JWKS_COOLDOWN_SECS", 5, 0..=3_600)?,
            timeout: env.secs("JWKS_TIMEOUT_SECS", 5, 1..=120)?,
            grace: env.secs(
                "JWKS_GRACE_PERIOD_SECS",
                DEFAULT_JWKS_GRACE_SECS,
                0..=10 * 365 * 86_400,
            )?,
            max_waiters: env.number("JWKS_MAX_WAITERS", DEFAULT_JWKS_MAX_WAITERS, 0..=10_000)?,
            secret,
            require_signed_session_tokens,
            session_check: env.choice(
                "SESSION_CHECK",
                SessionCheck::Auto,
                &[
                    ("off", SessionCheck::Off),
                    ("auto", SessionCheck::Auto),
                    ("required", SessionCheck::Required),
                ],
            )?,
            url,
        })
    }
}

struct RoleParts {
    roles: Vec<String>,
    admin_roles: Vec<String>,
    admin_user_ids: Vec<String>,
    access_control: Arc<AccessControl>,
}

impl RoleParts {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let access_control = match env.get("ACCESS_CONTROL_FILE") {
            None => AccessControl::default(),
            Some(path) => AccessControl::from_file(std::path::Path::new(&path))
                .map_err(|e| invalid("ACCESS_CONTROL_FILE", e.to_string()))?,
        };
        let defined: Vec<&str> = access_control.roles.keys().map(String::as_str).collect();
        let parts = Self {
            roles: env.list("ROLES", &defined.join(",")),
            admin_roles: env.list("ADMIN_ROLES", "admin"),
            admin_user_ids: env.list("ADMIN_USER_IDS", ""),
            access_control: Arc::new(access_control),
        };
        for (var, roles) in [("ROLES", &parts.roles), ("ADMIN_ROLES", &parts.admin_roles)] {
            if roles.is_empty() {
                return Err(invalid(var, "names no role"));
            }
            if let Some(role) = roles.iter().find(|r| !valid_role_name(r)) {
                return Err(invalid(
                    var,
                    format!("role {role:?} may only use letters, digits, _ - :"),
                ));
            }
        }
        Ok(parts)
    }
}

/// `TRUSTED_ORIGINS`, or its default: Better-Auth's own origin and the CORS origins.
fn trusted_origins(
    env: &Env<'_>,
    better_auth_url: &str,
    cors: &[String],
) -> Result<Vec<String>, ConfigError> {
    let configured = env.list("TRUSTED_ORIGINS", "");
    let origins = if configured.is_empty() {
        let mut origins: Vec<String> = origin_of(better_auth_url).into_iter().collect();
        origins.extend(cors.iter().filter(|o| *o != "*").cloned());
        origins
    } else {
        configured
    };
    for origin in &origins {
        if origin_of(origin).as_deref() != Some(origin.as_str()) {
            return Err(invalid(
                "TRUSTED_ORIGINS",
                format!("{origin:?} is not an origin such as https://app.example.com"),
            ));
        }
    }
    Ok(origins)
}

/// `scheme://host[:port]` of an http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let origin = parsed.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// A cookie name is an RFC 6265 token (the name Better-Auth sets, without its `__Secure-`).
fn valid_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Role names go into comma-joined strings and URLs: keep them plain.
pub(crate) fn valid_role_name(role: &str) -> bool {
    !role.is_empty()
        && role.len() <= 64
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':')
}

struct HttpParts {
    bind_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    log_format: LogFormat,
    cors_origins: Vec<String>,
    body_limit_bytes: usize,
    request_timeout: Duration,
    max_concurrent_requests: usize,
    max_connections: usize,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
    auth_proxy: bool,
    auth_proxy_admin: AdminThroughProxy,
    console: bool,
    console_social_providers: Vec<String>,
    trusted_proxies: Vec<IpNet>,
    auth_failures_per_minute: u32,
}

impl HttpParts {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let cors_origins = env.list("CORS_ORIGINS", "");
        for origin in &cors_origins {
            let ok = origin == "*"
                || (http_url("CORS_ORIGINS", origin.clone()).is_ok()
                    && !origin
                        .trim_start_matches("http://")
                        .trim_start_matches("https://")
                        .contains('/'));
            if !ok {
                return Err(invalid(
                    "CORS_ORIGINS",
                    format!("{origin:?} is not an origin such as https://app.example.com (no path) or *"),
                ));
            }
        }
        let mut trusted_proxies = Vec::new();
        for item in env.list("TRUSTED_PROXIES", "") {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    invalid(
                        "TRUSTED_PROXIES",
                        format!("{item:?} is not an IP address or a CIDR range such as 10.0.0.0/8"),
                    )
                })?;
            trusted_proxies.push(net);
        }
        Ok(Self {
            bind_addr: env
                .socket_addr("BIND_ADDR", "0.0.0.0:8080")?
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080))),
            metrics_addr: env.socket_addr("METRICS_ADDR", "127.0.0.1:9090")?,
            log_format: env.choice(
                "LOG_FORMAT",
                LogFormat::Pretty,
                &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)],
            )?,
            cors_origins,
            body_limit_bytes: env.number("BODY_LIMIT_BYTES", 64 * 1024, 1024..=64 * 1024 * 1024)?,
            request_timeout: env.secs("REQUEST_TIMEOUT_SECS", 30, 1..=3_600)?,
            max_concurrent_requests: env.number("MAX_CONCURRENT_REQUESTS", 1024, 1..=1_000_000)?,
            max_connections: env.number("MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, 1..=1_000_000)?,
            header_read_timeout: env.secs("HEADER_READ_TIMEOUT_SECS", 60, 1..=3_600)?,
            keep_alive_timeout: env.secs("KEEP_ALIVE_TIMEOUT_SECS", 75, 1..=3_600)?,
            auth_proxy: env.flag("AUTH_PROXY", false)?,
            auth_proxy_admin: env.choice(
                "AUTH_PROXY_ADMIN",
                AdminThroughProxy::Audit,
                &[
                    ("audit", AdminThroughProxy::Audit),
                    ("refuse", AdminThroughProxy::Refuse),
                ],
            )?,
            console: env.flag("CONSOLE", true)?,
            console_social_providers: social_providers(env)?,
            trusted_proxies,
            auth_failures_per_minute: env.number("AUTH_FAILURES_PER_MINUTE", 60, 0..=1_000_000)?,
        })
    }
}

struct CacheParts {
    token_cache_mb: u64,
    user_cache: bool,
    user_cache_ttl: Duration,
    user_cache_mb: u64,
}

impl CacheParts {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            token_cache_mb: env.number("TOKEN_CACHE_MB", 8, 0..=65_536)?,
            user_cache: env.flag("USER_CACHE", true)?,
            user_cache_ttl: env.secs("USER_CACHE_TTL_SECS", 60, 1..=86_400)?,
            user_cache_mb: env.number("USER_CACHE_MB", 16, 1..=65_536)?,
        })
    }
}

/// `CONSOLE_SOCIAL_PROVIDERS`: Better-Auth's provider ids, as its `socialProviders` keys
/// (`google`, `github`, `microsoft`, ...): lowercase letters, digits and `-`.
fn social_providers(env: &Env<'_>) -> Result<Vec<String>, ConfigError> {
    let providers = env.list("CONSOLE_SOCIAL_PROVIDERS", "");
    for id in &providers {
        let ok = id.len() <= 32
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(invalid(
                "CONSOLE_SOCIAL_PROVIDERS",
                format!(
                    "{id:?} is not a Better-Auth provider id such as google or github (lowercase letters, digits, -)"
                ),
            ));
        }
    }
    Ok(providers)
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.into(),
    }
}

fn http_url(var: &'static str, value: String) -> Result<String, ConfigError> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| invalid(var, format!("expected an http:// or https:// URL, got {value:?}")))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid(var, format!("the URL {value:?} has no host")));
    }
    Ok(value)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
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

//! Configuration: every environment variable warden reads, its default, and its validation.
//!
//! The environment is read once, at start, by [`Config::from_env`]. Each value is checked
//! there, and a bad one stops the start with a message naming the variable, so nothing deeper
//! in the code ever has to deal with a half-valid configuration. README and `.env.example`
//! list the same variables with the same defaults.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Where Better-Auth listens when `BETTER_AUTH_URL` is not set (its own default port).
pub const DEFAULT_BETTER_AUTH_URL: &str = "http://localhost:3000";
/// Better-Auth's default `jwks.gracePeriod`: a rotated-out key stays valid this long.
pub const DEFAULT_JWKS_GRACE_SECS: u64 = 30 * 24 * 3600;

/// The validated configuration.
#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL` (required): the PostgreSQL database shared with Better-Auth.
    pub database_url: String,
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
    /// `ROLES` (default `admin,user`): the roles an admin may assign.
    pub roles: Vec<String>,
    /// `SESSION_CHECK` (default `auto`): whether a JWT's `sid` must name a live session.
    pub session_check: SessionCheck,
    /// `BETTER_AUTH_SECRET` (optional): verifies signed session tokens (`token.signature`).
    pub better_auth_secret: Option<Secret>,
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
    /// `METRICS_ADDR` (default unset: `/metrics` on the main port): serve `/metrics` on this
    /// separate address instead, e.g. `127.0.0.1:9090`, to keep it off the public port.
    pub metrics_addr: Option<SocketAddr>,
    /// `AUTH_PROXY` (default false): forward `/api/auth/*` to `BETTER_AUTH_URL`, so a frontend
    /// can talk to one origin.
    pub auth_proxy: bool,
    /// `DATABASE_READ_URL` (default unset): a read replica for lag-tolerant reads (admin user
    /// listing, audit log). Authorisation always reads the primary.
    pub database_read_url: Option<String>,
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
    /// `TOKEN_CACHE_SIZE` (default 100000; 0 turns it off): verified tokens kept, so each
    /// distinct token's signature is checked once. Entries die at the token's `exp`.
    pub token_cache_size: u64,
    /// `USER_CACHE` (default true): keep user rows and sessions in memory, invalidated at once
    /// by PostgreSQL notifications; false reads the database on every request.
    pub user_cache: bool,
    /// `USER_CACHE_TTL_SECS` (default 60): an upper bound on any cached row's age.
    pub user_cache_ttl: Duration,
    /// `USER_CACHE_SIZE` (default 100000): cached users (and as many sessions).
    pub user_cache_size: u64,
    /// `DATABASE_LISTEN_URL` (default `DATABASE_URL`): a direct connection for LISTEN (Neon:
    /// the non-pooled host; transaction-mode poolers do not carry LISTEN).
    pub database_listen_url: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// How a JWT is tied to its Better-Auth session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// The `sid` claim is ignored.
    Off,
    /// When the JWT carries `sid`, that session must exist and not be expired.
    Auto,
    /// Every JWT must carry `sid`, and its session must exist and not be expired.
    Required,
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// Hand-written so the database URL (it may hold a password) never reaches a log line.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &"<redacted>")
            .field("better_auth_url", &self.better_auth_url)
            .field("jwks_url", &self.jwks_url)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("jwt_leeway", &self.jwt_leeway)
            .field("jwks_refresh", &self.jwks_refresh)
            .field("jwks_cooldown", &self.jwks_cooldown)
            .field("jwks_timeout", &self.jwks_timeout)
            .field("jwks_grace", &self.jwks_grace)
            .field("bind_addr", &self.bind_addr)
            .field("run_migrations", &self.run_migrations)
            .field("database_max_connections", &self.database_max_connections)
            .field("admin_roles", &self.admin_roles)
            .field("admin_user_ids", &self.admin_user_ids)
            .field("roles", &self.roles)
            .field("session_check", &self.session_check)
            .field("better_auth_secret", &self.better_auth_secret)
            .field("log_format", &self.log_format)
            .field("cors_origins", &self.cors_origins)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("metrics_addr", &self.metrics_addr)
            .field("auth_proxy", &self.auth_proxy)
            .field(
                "database_read_url",
                &self.database_read_url.as_ref().map(|_| "<redacted>"),
            )
            .field("database_acquire_timeout", &self.database_acquire_timeout)
            .field("database_idle_timeout", &self.database_idle_timeout)
            .field("database_statement_cache", &self.database_statement_cache)
            .field("database_connect_retry", &self.database_connect_retry)
            .field("token_cache_size", &self.token_cache_size)
            .field("user_cache", &self.user_cache)
            .field("user_cache_ttl", &self.user_cache_ttl)
            .field("user_cache_size", &self.user_cache_size)
            .field(
                "database_listen_url",
                &self.database_listen_url.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A configuration value that cannot be used. The message names the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required but not set")]
    Missing(&'static str),
    #[error("{var} is not valid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can pass a map instead of the
    /// process environment. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let database_url = get("DATABASE_URL").ok_or(ConfigError::Missing("DATABASE_URL"))?;
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(invalid(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            ));
        }

        let better_auth_url = http_url(
            "BETTER_AUTH_URL",
            get("BETTER_AUTH_URL").unwrap_or_else(|| DEFAULT_BETTER_AUTH_URL.to_owned()),
        )?;
        let base = better_auth_url.trim_end_matches('/');
        let jwks_url = http_url(
            "JWKS_URL",
            get("JWKS_URL").unwrap_or_else(|| format!("{base}/api/auth/jwks")),
        )?;
        let jwt_issuer = get("JWT_ISSUER").unwrap_or_else(|| better_auth_url.clone());
        let jwt_audience: Vec<String> = get("JWT_AUDIENCE")
            .unwrap_or_else(|| better_auth_url.clone())
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if jwt_audience.is_empty() {
            return Err(invalid("JWT_AUDIENCE", "names no audience"));
        }

        let secs = |var: &'static str, default: u64, min: u64, max: u64| -> Result<Duration, ConfigError> {
            let value = match get(var) {
                None => default,
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| invalid(var, format!("expected a whole number of seconds, got {v:?}")))?,
            };
            if value < min || value > max {
                return Err(invalid(
                    var,
                    format!("must be between {min} and {max} seconds, got {value}"),
                ));
            }
            Ok(Duration::from_secs(value))
        };

        let bind_addr = match get("BIND_ADDR") {
            None => SocketAddr::from(([0, 0, 0, 0], 8080)),
            Some(v) => v.parse().map_err(|_| {
                invalid(
                    "BIND_ADDR",
                    format!("expected host:port such as 0.0.0.0:8080, got {v:?}"),
                )
            })?,
        };

        let run_migrations = match get("RUN_MIGRATIONS") {
            None => true,
            Some(v) => parse_bool(&v)
                .ok_or_else(|| invalid("RUN_MIGRATIONS", format!("expected true or false, got {v:?}")))?,
        };

        let database_max_connections = match get("DATABASE_MAX_CONNECTIONS") {
            None => 10,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    return Err(invalid(
                        "DATABASE_MAX_CONNECTIONS",
                        format!("expected 1 to 1000, got {v:?}"),
                    ));
                }
            },
        };

        let list = |var: &'static str, default: &str| -> Vec<String> {
            let mut items: Vec<String> = get(var)
                .unwrap_or_else(|| default.to_owned())
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect();
            items.dedup();
            items
        };
        let roles = list("ROLES", "admin,user");
        let admin_roles = list("ADMIN_ROLES", "admin");
        if roles.is_empty() {
            return Err(invalid("ROLES", "names no role"));
        }
        if admin_roles.is_empty() {
            return Err(invalid("ADMIN_ROLES", "names no role"));
        }
        for role in roles.iter().chain(&admin_roles) {
            if !role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':')
            {
                let var = if roles.contains(role) {
                    "ROLES"
                } else {
                    "ADMIN_ROLES"
                };
                return Err(invalid(
                    var,
                    format!("role {role:?} may only use letters, digits, _ - :"),
                ));
            }
        }
        let session_check = match get("SESSION_CHECK")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("auto") => SessionCheck::Auto,
            Some("off") => SessionCheck::Off,
            Some("required") => SessionCheck::Required,
            Some(other) => {
                return Err(invalid(
                    "SESSION_CHECK",
                    format!("expected off, auto or required, got {other:?}"),
                ));
            }
        };
        let better_auth_secret = get("BETTER_AUTH_SECRET").map(Secret::new);

        let log_format = match get("LOG_FORMAT")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "LOG_FORMAT",
                    format!("expected pretty or json, got {other:?}"),
                ));
            }
        };
        let cors_origins = list("CORS_ORIGINS", "");
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
        let number =
            |var: &'static str, default: usize, min: usize, max: usize| -> Result<usize, ConfigError> {
                match get(var) {
                    None => Ok(default),
                    Some(v) => match v.parse::<usize>() {
                        Ok(n) if (min..=max).contains(&n) => Ok(n),
                        _ => Err(invalid(
                            var,
                            format!("expected a whole number from {min} to {max}, got {v:?}"),
                        )),
                    },
                }
            };
        let metrics_addr = match get("METRICS_ADDR") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| {
                invalid(
                    "METRICS_ADDR",
                    format!("expected host:port such as 127.0.0.1:9090, got {v:?}"),
                )
            })?),
        };
        let auth_proxy = match get("AUTH_PROXY") {
            None => false,
            Some(v) => parse_bool(&v)
                .ok_or_else(|| invalid("AUTH_PROXY", format!("expected true or false, got {v:?}")))?,
        };
        let user_cache = match get("USER_CACHE") {
            None => true,
            Some(v) => parse_bool(&v)
                .ok_or_else(|| invalid("USER_CACHE", format!("expected true or false, got {v:?}")))?,
        };
        let database_listen_url = get("DATABASE_LISTEN_URL");
        if let Some(url) = &database_listen_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "DATABASE_LISTEN_URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        let database_read_url = get("DATABASE_READ_URL");
        if let Some(url) = &database_read_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "DATABASE_READ_URL",
                "must start with postgres:// or postgresql://",
            ));
        }

        Ok(Self {
            admin_user_ids: list("ADMIN_USER_IDS", ""),
            admin_roles,
            roles,
            session_check,
            better_auth_secret,
            log_format,
            cors_origins,
            body_limit_bytes: number("BODY_LIMIT_BYTES", 64 * 1024, 1024, 64 * 1024 * 1024)?,
            request_timeout: secs("REQUEST_TIMEOUT_SECS", 30, 1, 3_600)?,
            max_concurrent_requests: number("MAX_CONCURRENT_REQUESTS", 1024, 1, 1_000_000)?,
            metrics_addr,
            auth_proxy,
            database_read_url,
            database_acquire_timeout: secs("DATABASE_ACQUIRE_TIMEOUT_SECS", 5, 1, 300)?,
            database_idle_timeout: secs("DATABASE_IDLE_TIMEOUT_SECS", 300, 1, 86_400)?,
            database_statement_cache: number("DATABASE_STATEMENT_CACHE", 100, 0, 100_000)?,
            database_connect_retry: secs("DATABASE_CONNECT_RETRY_SECS", 30, 0, 3_600)?,
            token_cache_size: number("TOKEN_CACHE_SIZE", 100_000, 0, 10_000_000)? as u64,
            user_cache,
            user_cache_ttl: secs("USER_CACHE_TTL_SECS", 60, 1, 86_400)?,
            user_cache_size: number("USER_CACHE_SIZE", 100_000, 1, 10_000_000)? as u64,
            database_listen_url,
            database_url,
            jwks_url,
            jwt_issuer,
            jwt_audience,
            jwt_leeway: secs("JWT_LEEWAY_SECS", 30, 0, 600)?,
            jwks_refresh: secs("JWKS_REFRESH_SECS", 300, 1, 86_400)?,
            jwks_cooldown: secs("JWKS_COOLDOWN_SECS", 5, 0, 3_600)?,
            jwks_timeout: secs("JWKS_TIMEOUT_SECS", 5, 1, 120)?,
            jwks_grace: secs(
                "JWKS_GRACE_PERIOD_SECS",
                DEFAULT_JWKS_GRACE_SECS,
                0,
                10 * 365 * 86_400,
            )?,
            better_auth_url,
            bind_addr,
            run_migrations,
            database_max_connections,
        })
    }
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
            ("DATABASE_READ_URL", "mysql://replica"),
            ("DATABASE_STATEMENT_CACHE", "-1"),
            ("TOKEN_CACHE_SIZE", "lots"),
            ("USER_CACHE", "sometimes"),
            ("USER_CACHE_TTL_SECS", "0"),
            ("DATABASE_LISTEN_URL", "redis://x"),
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

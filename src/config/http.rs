//! The HTTP group: addresses, logs, CORS, limits, timeouts, trusted proxies, the failure
//! limiter, the auth proxy and the console.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::env::{Env, http_url, invalid};
use crate::error::ConfigError;

/// `BODY_LIMIT_BYTES`' default: larger request bodies get 413.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 64 * 1024;
/// `REQUEST_TIMEOUT_SECS`' default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// `MAX_CONCURRENT_REQUESTS`' default (also how many credential checks in flight count as
/// full load for the failure limiter's shedding).
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;
/// `MAX_CONNECTIONS`' default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// `HEADER_READ_TIMEOUT_SECS`' default (nginx's `client_header_timeout`).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// `KEEP_ALIVE_TIMEOUT_SECS`' default (nginx's `keepalive_timeout`).
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(75);

/// What the auth proxy does with requests that may change something through Better-Auth's
/// admin endpoints (`AUTH_PROXY_ADMIN`; see the server's `routes::proxy`). Either way they
/// bypass warden's last-admin rule: Better-Auth applies its own rules only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminThroughProxy {
    /// `audit` (default): forward them, and record each one Better-Auth accepts (2xx) in
    /// warden's audit trail.
    #[default]
    Audit,
    /// `refuse`: answer 403 `admin_through_proxy_refused`; nothing is forwarded.
    Refuse,
}

/// How warden serves HTTP: where, with which limits and timeouts, behind which proxies, and
/// what it serves besides the API (the auth proxy, the console).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `BIND_ADDR` (default `0.0.0.0:8080`).
    pub bind_addr: SocketAddr,
    /// `METRICS_ADDR` (default unset: `/metrics` on the main port): serve `/metrics` on this
    /// separate address instead, e.g. `127.0.0.1:9090`, to keep it off the public port.
    pub metrics_addr: Option<SocketAddr>,
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
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Lines for people to read (`pretty`).
    Pretty,
    /// One JSON object per line, with the request's span fields (`json`).
    Json,
}

impl HttpConfig {
    /// The defaults of the limits and timeouts are this group's constants, which the server's
    /// layers and connection handling take as their own defaults too.
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let cors_origins = cors_origins(env)?;
        let trusted_proxies = trusted_proxies(env)?;
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
            body_limit_bytes: env.number(
                "BODY_LIMIT_BYTES",
                DEFAULT_BODY_LIMIT_BYTES,
                1024..=64 * 1024 * 1024,
            )?,
            request_timeout: env.secs(
                "REQUEST_TIMEOUT_SECS",
                DEFAULT_REQUEST_TIMEOUT.as_secs(),
                1..=3_600,
            )?,
            max_concurrent_requests: env.number(
                "MAX_CONCURRENT_REQUESTS",
                DEFAULT_MAX_CONCURRENT_REQUESTS,
                1..=1_000_000,
            )?,
            max_connections: env.number("MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, 1..=1_000_000)?,
            header_read_timeout: env.secs(
                "HEADER_READ_TIMEOUT_SECS",
                DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
                1..=3_600,
            )?,
            keep_alive_timeout: env.secs(
                "KEEP_ALIVE_TIMEOUT_SECS",
                DEFAULT_KEEP_ALIVE_TIMEOUT.as_secs(),
                1..=3_600,
            )?,
            auth_proxy: env.flag("AUTH_PROXY", false)?,
            auth_proxy_admin: env.choice(
                "AUTH_PROXY_ADMIN",
                AdminThroughProxy::default(),
                &[
                    ("audit", AdminThroughProxy::Audit),
                    ("refuse", AdminThroughProxy::Refuse),
                ],
            )?,
            console: env.flag("CONSOLE", true)?,
            console_social_providers: social_providers(env)?,
            trusted_proxies,
            auth_failures_per_minute: env.number(
                "AUTH_FAILURES_PER_MINUTE",
                crate::auth::request::throttle::DEFAULT_FAILURES_PER_MINUTE,
                0..=1_000_000,
            )?,
        })
    }
}

/// `CORS_ORIGINS`: origins (`scheme://host[:port]`, no path), or `*`.
fn cors_origins(env: &Env<'_>) -> Result<Vec<String>, ConfigError> {
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
    Ok(cors_origins)
}

/// `TRUSTED_PROXIES`: addresses (taken as single-address ranges) or CIDR ranges.
fn trusted_proxies(env: &Env<'_>) -> Result<Vec<IpNet>, ConfigError> {
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
    Ok(trusted_proxies)
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

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, config};
    use super::*;

    #[test]
    fn defaults() {
        let c = config(&[("DATABASE_URL", "postgres://localhost/db")]).unwrap();
        assert_eq!(c.http.bind_addr.to_string(), "0.0.0.0:8080");
        assert!(c.http.console);
        assert_eq!(c.http.auth_proxy_admin, AdminThroughProxy::Audit);
        assert!(c.http.console_social_providers.is_empty());
        // As README and .env.example say; the numbers themselves live with the HTTP layers
        // and the server.
        assert_eq!(c.http.body_limit_bytes, 65_536);
        assert_eq!(c.http.request_timeout, Duration::from_secs(30));
        assert_eq!(c.http.max_concurrent_requests, 1024);
        assert_eq!(c.http.max_connections, 10_000);
        assert_eq!(c.http.header_read_timeout, Duration::from_secs(60));
        assert_eq!(c.http.keep_alive_timeout, Duration::from_secs(75));
        assert_eq!(c.http.auth_failures_per_minute, 60);
        let social = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("CONSOLE_SOCIAL_PROVIDERS", " google, github ,microsoft-entra-id"),
        ])
        .unwrap();
        assert_eq!(
            social.http.console_social_providers,
            ["google", "github", "microsoft-entra-id"]
        );
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        assert_each_refused(&[
            ("BIND_ADDR", "8080"),
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
        ]);
    }
}

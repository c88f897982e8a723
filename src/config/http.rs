//! The HTTP group: addresses, logs, CORS, limits, timeouts, trusted proxies, the failure
//! limiter, the auth proxy and the console.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::LogFormat;
use super::env::{Env, http_url, invalid};
use crate::error::ConfigError;
use crate::http::server::DEFAULT_MAX_CONNECTIONS;
use crate::state::AdminThroughProxy;

pub(super) struct HttpParts {
    pub(super) bind_addr: SocketAddr,
    pub(super) metrics_addr: Option<SocketAddr>,
    pub(super) log_format: LogFormat,
    pub(super) cors_origins: Vec<String>,
    pub(super) body_limit_bytes: usize,
    pub(super) request_timeout: Duration,
    pub(super) max_concurrent_requests: usize,
    pub(super) max_connections: usize,
    pub(super) header_read_timeout: Duration,
    pub(super) keep_alive_timeout: Duration,
    pub(super) auth_proxy: bool,
    pub(super) auth_proxy_admin: AdminThroughProxy,
    pub(super) console: bool,
    pub(super) console_social_providers: Vec<String>,
    pub(super) trusted_proxies: Vec<IpNet>,
    pub(super) auth_failures_per_minute: u32,
}

impl HttpParts {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
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

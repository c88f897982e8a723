//! `warden check`: the first thing to run when something is wrong. It reads the configuration
//! and reports, one line each and in plain words: config, database (and TLS), schema,
//! migrations, read replica, JWKS (keys and algorithms; a warning when fetched over plain http
//! for an https Better-Auth), the Better-Auth version (when the auth server reports it), where sessions are read (Redis: reachable, tracking, its prefix), where `/metrics` is served (a warning when on the main port), and
//! the issuer/audience tokens must carry. Exit code 0 when nothing failed, 1 otherwise. It changes nothing.

use std::fmt;
use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::auth::jwt::keys::KeySet;
use crate::config::{Config, ConfigError};
use crate::db;

/// How one finding came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// As warden needs it.
    Ok,
    /// Works, but deserves a look (a key warden skips, a JWKS with no key yet).
    Warn,
    /// Warden cannot work like this; `warden check` exits 1.
    Fail,
}

/// One line of the report: `[ok  ] database: reachable, ...`.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How it came out.
    pub outcome: Outcome,
    /// What was checked: `config`, `database`, `schema`, `migrations`, `jwks`, ...
    pub topic: &'static str,
    /// What was found, in plain words.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.outcome {
            Outcome::Ok => "ok  ",
            Outcome::Warn => "warn",
            Outcome::Fail => "FAIL",
        };
        write!(f, "[{mark}] {}: {}", self.topic, self.message)
    }
}

/// Everything `warden check` found.
#[derive(Debug, Default)]
pub struct Report {
    /// In the order they were checked.
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, outcome: Outcome, topic: &'static str, message: impl Into<String>) {
        self.findings.push(Finding {
            outcome,
            topic,
            message: message.into(),
        });
    }

    /// Whether any finding is a [`Outcome::Fail`] (the exit code is then 1).
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.outcome == Outcome::Fail)
    }
}

/// The columns warden needs, with their PostgreSQL types (information_schema `data_type`).
const REQUIRED_COLUMNS: &[(&str, &[(&str, &str)])] = &[
    (
        "user",
        &[
            ("id", "text"),
            ("name", "text"),
            ("email", "text"),
            ("email_verified", "boolean"),
            ("image", "text"),
            ("created_at", "timestamp with time zone"),
            ("updated_at", "timestamp with time zone"),
            ("role", "text"),
            ("banned", "boolean"),
            ("ban_reason", "text"),
            ("ban_expires", "timestamp with time zone"),
        ],
    ),
    (
        "session",
        &[
            ("id", "text"),
            ("expires_at", "timestamp with time zone"),
            ("token", "text"),
            ("created_at", "timestamp with time zone"),
            ("updated_at", "timestamp with time zone"),
            ("ip_address", "text"),
            ("user_agent", "text"),
            ("user_id", "text"),
            ("impersonated_by", "text"),
            ("active_organization_id", "text"),
        ],
    ),
    (
        "organization",
        &[
            ("id", "text"),
            ("name", "text"),
            ("slug", "text"),
            ("logo", "text"),
            ("metadata", "text"),
            ("created_at", "timestamp with time zone"),
        ],
    ),
    (
        "member",
        &[
            ("id", "text"),
            ("organization_id", "text"),
            ("user_id", "text"),
            ("role", "text"),
            ("created_at", "timestamp with time zone"),
        ],
    ),
    (
        "organization_role",
        &[
            ("id", "text"),
            ("organization_id", "text"),
            ("role", "text"),
            ("permission", "text"),
            ("created_at", "timestamp with time zone"),
        ],
    ),
    (
        "account",
        &[
            ("id", "text"),
            ("account_id", "text"),
            ("provider_id", "text"),
            ("user_id", "text"),
            ("scope", "text"),
            ("created_at", "timestamp with time zone"),
            ("updated_at", "timestamp with time zone"),
        ],
    ),
    (
        "jwks",
        &[
            ("id", "text"),
            ("public_key", "text"),
            ("created_at", "timestamp with time zone"),
            ("expires_at", "timestamp with time zone"),
            ("alg", "text"),
            ("crv", "text"),
        ],
    ),
    (
        "warden_audit_log",
        &[
            ("id", "bigint"),
            ("at", "timestamp with time zone"),
            ("actor_id", "text"),
            ("action", "text"),
            ("target_user_id", "text"),
            ("target_session_id", "text"),
            ("details", "jsonb"),
            ("session_id", "text"),
            ("impersonated_by", "text"),
            ("client_ip", "text"),
            ("request_id", "text"),
        ],
    ),
];

/// Runs every check.
pub async fn run(config: Result<Config, ConfigError>) -> Report {
    let mut report = Report::default();
    let config = match config {
        Ok(config) => {
            report.add(Outcome::Ok, "config", "valid");
            config
        }
        Err(err) => {
            report.add(Outcome::Fail, "config", err.to_string());
            return report;
        }
    };

    check_database(&mut report, &config).await;
    check_jwks(&mut report, &config).await;
    check_better_auth_version(&mut report, &config).await;
    check_sessions(&mut report, &config).await;
    check_exposure(&mut report, &config);
    report.add(
        Outcome::Ok,
        "tokens",
        format!(
            "accepted when iss = {:?} and aud is one of {:?} (clock leeway {} s)",
            config.better_auth.jwt_issuer,
            config.better_auth.jwt_audience,
            config.better_auth.jwt_leeway.as_secs()
        ),
    );
    report
}

/// Settings that work but give something away: keys fetched over plain http while
/// Better-Auth itself is served over https, `/metrics` on the public port, and a failure limit
/// that cannot tell a valid session token from junk.
fn check_exposure(report: &mut Report, config: &Config) {
    if config.http.auth_failures_per_minute > 0 && config.better_auth.secret.is_none() {
        report.add(
            Outcome::Warn,
            "limiter",
            "without BETTER_AUTH_SECRET no session token can be proven before a database read: once an \
             address passes AUTH_FAILURES_PER_MINUTE refusals, every session-token user behind it gets 429 \
             until its minute ends (JWTs are unaffected); set BETTER_AUTH_SECRET to Better-Auth's secret",
        );
    }
    if config.better_auth.url.starts_with("https://") && config.better_auth.jwks_url.starts_with("http://") {
        report.add(
            Outcome::Warn,
            "jwks",
            format!(
                "{} is plain http while BETTER_AUTH_URL is https: the keys that decide who is signed in \
                 travel unauthenticated, and anyone on that path can swap in their own and mint tokens \
                 warden accepts; use https (plain http only inside a network you trust)",
                config.better_auth.jwks_url
            ),
        );
    }
    match config.http.metrics_addr {
        None => report.add(
            Outcome::Warn,
            "metrics",
            format!(
                "/metrics is served on the main port ({}) to anyone who can reach it; set METRICS_ADDR \
                 (e.g. 127.0.0.1:9090) to serve it on an address of its own",
                config.http.bind_addr
            ),
        ),
        Some(addr) => report.add(
            Outcome::Ok,
            "metrics",
            format!("/metrics on {addr}, not on the main port"),
        ),
    }
}

/// One connection, or why not in the words `warden serve` uses: the server (host and port,
/// never the password) and the cause.
async fn connect(url: &str, config: &Config) -> Result<PgConnection, String> {
    let options = db::connect_options(url, config.database.statement_cache)
        .map_err(|e| format!("cannot connect: the URL is not valid: {e}"))?;
    let server = db::server_of(&options);
    match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(format!(
            "cannot connect to PostgreSQL at {server}: {}",
            db::cause_of(&err)
        )),
        Err(_) => Err(format!(
            "cannot connect to PostgreSQL at {server}: no answer within 10 s"
        )),
    }
}

async fn describe_server(conn: &mut PgConnection) -> String {
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_default();
    let tls: Option<bool> = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_optional(&mut *conn)
        .await
        .ok()
        .flatten();
    let tls = match tls {
        Some(true) => "TLS in use",
        Some(false) => "no TLS (add ?sslmode=require for a remote database)",
        None => "TLS unknown",
    };
    format!("reachable, PostgreSQL {version}, {tls}")
}

async fn check_database(report: &mut Report, config: &Config) {
    let mut conn = match connect(config.database.url.expose(), config).await {
        Ok(conn) => conn,
        Err(err) => {
            report.add(Outcome::Fail, "database", err);
            return;
        }
    };
    // First, because through a broken pooler every later query is unreliable.
    if !check_pooler(report, config.database.url.expose(), config).await {
        let _ = conn.close().await;
        return;
    }
    let description = describe_server(&mut conn).await;
    report.add(Outcome::Ok, "database", description);
    if !check_schema(report, &mut conn).await {
        let _ = conn.close().await;
        return;
    }
    check_migrations(report, &mut conn).await;
    let _ = conn.close().await;

    if let Some(url) = &config.database.read_url {
        match connect(url.expose(), config).await {
            Ok(mut replica) => {
                let description = describe_server(&mut replica).await;
                report.add(Outcome::Ok, "read replica", description);
                let _ = replica.close().await;
            }
            Err(err) => report.add(Outcome::Fail, "read replica", err),
        }
    }
}

/// Every column warden needs, with its type; `false` when the schema cannot be read at all.
async fn check_schema(report: &mut Report, conn: &mut PgConnection) -> bool {
    let columns: Vec<(String, String, String)> = match sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = current_schema()",
    )
    .fetch_all(&mut *conn)
    .await
    {
        Ok(columns) => columns,
        Err(err) => {
            report.add(
                Outcome::Fail,
                "schema",
                format!("cannot read information_schema: {err}"),
            );
            return false;
        }
    };
    let mut problems = 0;
    for (table, wanted) in REQUIRED_COLUMNS {
        for (column, data_type) in *wanted {
            match columns.iter().find(|(t, c, _)| t == table && c == column) {
                None => {
                    problems += 1;
                    report.add(Outcome::Fail, "schema", format!("{table}.{column} is missing"));
                }
                Some((_, _, found)) if found != data_type => {
                    problems += 1;
                    report.add(
                        Outcome::Fail,
                        "schema",
                        format!("{table}.{column} is {found}, expected {data_type}"),
                    );
                }
                Some(_) => {}
            }
        }
    }
    if problems == 0 {
        let count: usize = REQUIRED_COLUMNS.iter().map(|(_, c)| c.len()).sum();
        report.add(
            Outcome::Ok,
            "schema",
            format!("all {count} columns warden needs are present with the right types"),
        );
    }
    true
}

/// Whether every migration of this build has been applied.
async fn check_migrations(report: &mut Report, conn: &mut PgConnection) {
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default();
    let pending: Vec<String> = db::MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| format!("{} {}", m.version, m.description))
        .collect();
    if pending.is_empty() {
        report.add(
            Outcome::Ok,
            "migrations",
            format!("all {} applied", db::MIGRATOR.iter().count()),
        );
    } else {
        report.add(
            Outcome::Fail,
            "migrations",
            format!(
                "{} pending ({}): run `warden migrate`",
                pending.len(),
                pending.join(", ")
            ),
        );
    }
}

/// sqlx prepares named statements (`sqlx_s_1`, ...) per connection. Behind a transaction-mode
/// pooler without prepared-statement support (PgBouncer before 1.21, or without
/// `max_prepared_statements`), two client connections share server connections and their
/// statement names collide. Two connections preparing different statements one after the
/// other are enough to see it: the pooler hands the second the first one's server connection.
async fn check_pooler(report: &mut Report, url: &str, config: &Config) -> bool {
    let mut collided = None;
    for round in 0..4 {
        let (Ok(mut first), Ok(mut second)) = (connect(url, config).await, connect(url, config).await) else {
            return true;
        };
        let a = sqlx::query_scalar::<_, i32>("SELECT $1::int4 + 1")
            .bind(round)
            .fetch_one(&mut first)
            .await;
        let b = sqlx::query_scalar::<_, String>("SELECT $1::text || '-probe'")
            .bind("x")
            .fetch_one(&mut second)
            .await;
        let _ = first.close().await;
        let _ = second.close().await;
        if let Some(err) = a.err().or(b.err()) {
            collided = Some(err.to_string());
            break;
        }
    }
    match collided {
        None => {
            report.add(Outcome::Ok, "prepared statements", "work through this connection");
            true
        }
        Some(err) => {
            report.add(
            Outcome::Fail,
            "prepared statements",
            format!(
                "broken through this connection ({err}): a transaction-mode pooler without prepared-statement \
                 support is in between; use PgBouncer >= 1.21 with max_prepared_statements (Neon's pooler has it), \
                 session mode, or a direct connection"
                ),
            );
            false
        }
    }
}

/// The Better-Auth releases warden is tested against, in CI, both ends (scripts/test pins the
/// newest in auth-server/, scripts/e2e-lowest runs the lowest).
pub const BETTER_AUTH_TESTED: (&str, &str) = ("1.7.25", "1.7.29");

/// The Better-Auth version the auth server reports (warden's auth server answers `GET /version`;
/// Better-Auth itself has no such route): printed, with a warning outside the tested range.
async fn check_better_auth_version(report: &mut Report, config: &Config) {
    let jwks = config.better_auth.jwks_url.as_str();
    let base = jwks
        .strip_suffix("/api/auth/jwks")
        .unwrap_or(config.better_auth.url.trim_end_matches('/'));
    let url = format!("{base}/version");
    let found = async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .ok()?;
        let response = client.get(&url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body: serde_json::Value = response.json().await.ok()?;
        body["betterAuth"].as_str().map(str::to_owned)
    }
    .await;
    let (low, high) = BETTER_AUTH_TESTED;
    match found {
        Some(version) if in_range(&version, low, high) => report.add(
            Outcome::Ok,
            "better-auth",
            format!("{version} (warden is tested with {low} to {high})"),
        ),
        Some(version) => report.add(
            Outcome::Warn,
            "better-auth",
            format!("{version}: warden is tested with {low} to {high}; run its end-to-end tests against this one"),
        ),
        None => report.add(
            Outcome::Ok,
            "better-auth",
            format!("its version is not reported at {url} (warden's auth server reports it there); warden is tested with {low} to {high}"),
        ),
    }
}

/// Whether `version` (`major.minor.patch`, anything after a `-` ignored) is within `low..=high`.
fn in_range(version: &str, low: &str, high: &str) -> bool {
    let parse = |v: &str| -> Option<(u32, u32, u32)> {
        let mut parts = v.split('-').next()?.split('.').map(|p| p.parse::<u32>().ok());
        Some((parts.next()??, parts.next()??, parts.next()??))
    };
    match (parse(version), parse(low), parse(high)) {
        (Some(v), Some(l), Some(h)) => l <= v && v <= h,
        _ => false,
    }
}

/// Where sessions are read: the table, or Redis (reachable, able to track keys, and with keys
/// under the prefix Better-Auth's storage uses).
async fn check_sessions(report: &mut Report, config: &Config) {
    let crate::auth::SessionStorage::Redis(redis) = &config.sessions else {
        report.add(
            Outcome::Ok,
            "sessions",
            "read from the session table (SESSION_STORE=database)",
        );
        return;
    };
    let mode = match (redis.store_in_database, redis.preserve_in_database) {
        (false, _) => "in Redis only",
        (true, false) => "in Redis and the session table (Redis first)",
        (true, true) => "in Redis, rows kept in the session table",
    };
    let probe = match crate::redis::probe(redis.url.expose(), &redis.key_prefix).await {
        Ok(probe) => probe,
        Err(err) => {
            report.add(
                Outcome::Fail,
                "sessions",
                format!("Redis (REDIS_URL) cannot be reached: {err}"),
            );
            return;
        }
    };
    report.add(
        Outcome::Ok,
        "sessions",
        format!("{mode}; {} reachable", probe.server),
    );
    let keys = match config.api_keys.storage {
        crate::auth::ApiKeyStorage::Database => None,
        crate::auth::ApiKeyStorage::SecondaryStorage => {
            Some("API keys read and counted in Redis (API_KEY_STORAGE=secondary-storage)")
        }
        crate::auth::ApiKeyStorage::SecondaryStorageWithFallback => {
            Some("API keys decided in the apikey table, Redis holding copies (fallbackToDatabase)")
        }
    };
    if let Some(keys) = keys {
        report.add(Outcome::Ok, "api keys", keys);
    }
    if !probe.tracking {
        report.add(
            Outcome::Warn,
            "sessions",
            "the server refused CLIENT TRACKING (Redis 6+ or Valkey has it): nothing is cached, every session read goes to Redis",
        );
    }
    if probe.keys_seen == 0 {
        report.add(
            Outcome::Warn,
            "sessions",
            format!(
                "no key under {:?} yet: nobody has signed in, or REDIS_KEY_PREFIX differs from the storage's keyPrefix",
                redis.key_prefix
            ),
        );
    } else {
        report.add(
            Outcome::Ok,
            "sessions",
            format!("keys found under {:?}", redis.key_prefix),
        );
    }
}

async fn check_jwks(report: &mut Report, config: &Config) {
    let client = match reqwest::Client::builder()
        .timeout(config.better_auth.jwks_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            report.add(
                Outcome::Fail,
                "jwks",
                format!("cannot build an HTTP client: {err}"),
            );
            return;
        }
    };
    let url = &config.better_auth.jwks_url;
    let body = match client.get(url).send().await {
        Ok(response) if response.status().is_success() => response.bytes().await,
        Ok(response) => {
            let hint = if response.status().is_redirection() {
                " (a redirect: warden does not follow redirects for keys; set JWKS_URL to the address that serves them)"
            } else {
                ""
            };
            report.add(
                Outcome::Fail,
                "jwks",
                format!("{url} answered HTTP {}{hint}", response.status()),
            );
            return;
        }
        Err(err) => {
            report.add(Outcome::Fail, "jwks", format!("{url} cannot be reached: {err}"));
            return;
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(err) => {
            report.add(Outcome::Fail, "jwks", format!("reading {url} failed: {err}"));
            return;
        }
    };
    match KeySet::from_jwks_json(&body) {
        Err(err) => report.add(Outcome::Fail, "jwks", format!("{url}: {err}")),
        Ok((keys, skipped)) => {
            for s in &skipped {
                report.add(
                    Outcome::Warn,
                    "jwks",
                    format!("ignoring key {:?}: {}", s.kid, s.error),
                );
            }
            if keys.is_empty() {
                report.add(
                    Outcome::Warn,
                    "jwks",
                    format!("{url} has no usable key yet (Better-Auth creates its first key when it signs its first token)"),
                );
            } else {
                report.add(
                    Outcome::Ok,
                    "jwks",
                    format!(
                        "{} key(s) at {url}, algorithms {}",
                        keys.len(),
                        keys.algorithms().join(", ")
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::in_range;

    #[test]
    fn versions_are_compared_as_numbers() {
        assert!(in_range("1.7.25", "1.7.25", "1.7.29"));
        assert!(in_range("1.7.29", "1.7.25", "1.7.29"));
        assert!(in_range("1.7.27-beta.1", "1.7.25", "1.7.29"));
        assert!(!in_range("1.7.3", "1.7.25", "1.7.29"));
        assert!(!in_range("1.8.0", "1.7.25", "1.7.29"));
        assert!(!in_range("soon", "1.7.25", "1.7.29"));
    }
}

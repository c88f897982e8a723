//! Database access. All SQL lives in this module's children, one per table, checked at
//! compile time by `sqlx::query!` (offline data in `.sqlx/`).
//!
//! The library reads what authentication needs (users, sessions, memberships, keys); the
//! server (feature `server`) uses the rest: the admin listing and writes, the audit trail,
//! accounts, the pools and the migrations. Built without the server, that rest is unused.
#![cfg_attr(
    not(feature = "server"),
    allow(dead_code, reason = "the server's queries, unused by the library alone")
)]

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod jwks;
pub mod oauth_tokens;
pub mod organizations;
pub mod sessions;
pub mod users;

use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

/// A pooled connection idle this long is pinged before use (see [`connect_one`]).
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(5);

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The primary pool, and the pool for lag-tolerant reads (the primary again when no
/// `DATABASE_READ_URL` is set).
#[derive(Debug, Clone)]
pub struct Pools {
    /// Every write, and every read that decides something (`DATABASE_URL`).
    pub primary: PgPool,
    /// Lag-tolerant reads: the admin user listing and the audit log (`DATABASE_READ_URL`).
    pub read: PgPool,
}

/// How pools connect and how big they get.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// `DATABASE_MAX_CONNECTIONS`.
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT_SECS`: waiting longer for a connection is a 503.
    pub acquire_timeout: Duration,
    /// `DATABASE_IDLE_TIMEOUT_SECS`.
    pub idle_timeout: Duration,
    /// `DATABASE_STATEMENT_CACHE`: prepared statements kept per connection.
    pub statement_cache: usize,
    /// `DATABASE_CONNECT_RETRY_SECS`: how long the first connection is retried.
    pub connect_retry: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(300),
            statement_cache: 100,
            connect_retry: Duration::from_secs(30),
        }
    }
}

/// Why a database could not be opened: the URL, or the server named by its host and port
/// (never the user or the password) and the cause in a few words.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("the database URL is not valid: {0}")]
    Url(#[source] sqlx::Error),
    /// The server did not let warden in, after the retries for transient failures.
    #[error("cannot connect to PostgreSQL at {server}: {cause}")]
    Failed {
        /// `host:port` (or the socket's path) from the URL.
        server: String,
        /// `connection refused`, `password authentication failed for user "..."`, ...
        cause: String,
        /// sqlx's error; `None` when the server did not answer in time.
        #[source]
        source: Option<sqlx::Error>,
    },
}

/// Where `options` connect: `host:port`, `[v6]:port`, or a Unix socket's path.
pub fn server_of(options: &PgConnectOptions) -> String {
    let (host, port) = (options.get_host(), options.get_port());
    if host.starts_with('/') {
        format!("{}/.s.PGSQL.{port}", host.trim_end_matches('/'))
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A failed connection attempt in a few words, without sqlx's wrapping ("error communicating
/// with database: ...") and without the OS error number.
pub fn cause_of(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused (nothing listens there: is PostgreSQL running, on that port?)".to_owned()
            }
            std::io::ErrorKind::TimedOut => "timed out".to_owned(),
            _ => {
                let text = io.to_string();
                let text = match text.rfind(" (os error ") {
                    Some(cut) => text[..cut].to_owned(),
                    None => text,
                };
                let mut chars = text.chars();
                chars
                    .next()
                    .map(|first| first.to_lowercase().chain(chars).collect())
                    .unwrap_or(text)
            }
        },
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        other => other.to_string(),
    }
}

/// Opens the pools, retrying the first connection with backoff for up to
/// `settings.connect_retry` (a cold Neon compute takes about a second to wake up).
pub async fn connect(
    primary: &str,
    read: Option<&str>,
    settings: &PoolSettings,
) -> Result<Pools, ConnectError> {
    let primary = connect_one(primary, settings).await?;
    let read = match read {
        Some(url) => connect_one(url, settings).await?,
        None => primary.clone(),
    };
    Ok(Pools { primary, read })
}

/// Connection options from a URL. Neon's URLs carry `channel_binding=require`, which sqlx does
/// not implement: it is dropped here (TLS still applies through `sslmode`).
pub fn connect_options(url: &str, statement_cache: usize) -> Result<PgConnectOptions, sqlx::Error> {
    let cleaned = match url.split_once('?') {
        Some((base, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|pair| !pair.starts_with("channel_binding="))
                .collect();
            if kept.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        }
        None => url.to_owned(),
    };
    Ok(cleaned
        .parse::<PgConnectOptions>()?
        .statement_cache_capacity(statement_cache))
}

/// One pool (see [`connect`]).
pub async fn connect_one(url: &str, settings: &PoolSettings) -> Result<PgPool, ConnectError> {
    let options = connect_options(url, settings.statement_cache).map_err(ConnectError::Url)?;
    let server = server_of(&options);
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(Some(settings.idle_timeout))
        // sqlx pings every connection it hands out: a round trip before every query, which
        // doubled the database work of a cold request. A connection in steady use is alive;
        // one idle for a while (a restarted server, a pooler or Neon closing it) is pinged, and
        // replaced when the ping fails.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < PING_WHEN_IDLE_FOR {
                    return Ok(true);
                }
                Ok(sqlx::Connection::ping(conn).await.is_ok())
            })
        });
    let deadline = Instant::now() + settings.connect_retry;
    let mut delay = Duration::from_millis(250);
    loop {
        let failed = match probe(&options, settings.acquire_timeout).await {
            Ok(()) => match pool.clone().connect_with(options.clone()).await {
                Ok(pool) => return Ok(pool),
                Err(err) => Some(err),
            },
            Err(failed) => failed,
        };
        let cause = failed.as_ref().map_or_else(
            || format!("no answer within {} s", settings.acquire_timeout.as_secs()),
            cause_of,
        );
        if failed.as_ref().is_none_or(is_transient) && Instant::now() + delay < deadline {
            tracing::warn!(%server, %cause, retry_in_ms = delay.as_millis() as u64, "database not reachable yet");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            continue;
        }
        return Err(ConnectError::Failed {
            server,
            cause,
            source: failed,
        });
    }
}

/// One connection, opened and closed, before the pool opens its own: the pool retries a
/// refused connection by itself until its acquire timeout and then says only "pool timed out",
/// which hides where it tried and why it failed. `Err(None)`: no answer within `timeout`.
async fn probe(options: &PgConnectOptions, timeout: Duration) -> Result<(), Option<sqlx::Error>> {
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(err)) => Err(Some(err)),
        Err(_) => Err(None),
    }
}

/// Errors worth retrying at start: the server is not there yet, or is starting up. A wrong
/// password or database name is not.
fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        // 57P03 cannot_connect_now (starting up), 53300 too_many_connections.
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("57P03" | "53300")),
        _ => false,
    }
}

/// Brings the schema up to date: Better-Auth's tables, then warden's own.
///
/// Two repairs come first. Migration `20261127000003` once created the search indexes itself
/// (locking `"user"` against writes while they built); it now only adds `pg_trgm`, and the
/// indexes come in their own `CONCURRENTLY` migrations. A database where the old version ran
/// already has the indexes, so its recorded checksum is updated to the new file's. And an index
/// build that was interrupted leaves an invalid index behind that `IF NOT EXISTS` would skip:
/// warden's invalid indexes are dropped so their migrations build them again.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    repair_before_migrating(pool).await?;
    MIGRATOR.run(pool).await
}

/// The SHA-384 of the first version of migration 20261127000003.
const SEARCH_INDEXES_V1_CHECKSUM: &str =
    "1ed4ed661f9c5e7b9540d844d5aebc9c0d3a10b57cdf4ff830b0c5192236c1af72c349532b689b0f20f39eb35cfc7c7f";
const SEARCH_INDEXES_VERSION: i64 = 20261127000003;

async fn repair_before_migrating(pool: &PgPool) -> Result<(), sqlx::Error> {
    let tracked: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await?;
    if tracked.is_some()
        && let Some(current) = MIGRATOR.iter().find(|m| m.version == SEARCH_INDEXES_VERSION)
    {
        let old = decode_hex(SEARCH_INDEXES_V1_CHECKSUM);
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3")
            .bind(&*current.checksum)
            .bind(SEARCH_INDEXES_VERSION)
            .bind(old)
            .execute(pool)
            .await?;
    }
    let invalid: Vec<String> = sqlx::query_scalar(
        r#"SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE NOT i.indisvalid AND c.relname LIKE 'warden\_%' AND n.nspname = current_schema()"#,
    )
    .fetch_all(pool)
    .await?;
    for index in invalid {
        tracing::warn!(
            index,
            "dropping an index left invalid by an interrupted build; it is built again"
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            r#"DROP INDEX CONCURRENTLY IF EXISTS "{index}""#
        )))
        .execute(pool)
        .await?;
    }
    Ok(())
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .filter_map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// Whether warden's change-notification triggers (migration `..._change_notifications`) are
/// installed: without them a cache of user rows would never hear of changes.
pub async fn change_triggers_installed(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let count: i64 = sqlx::query_scalar(
        r#"SELECT count(*) FROM pg_trigger
           WHERE (tgname = 'warden_user_changed' AND tgrelid = to_regclass('"user"'))
              OR (tgname = 'warden_session_changed' AND tgrelid = to_regclass('session'))"#,
    )
    .fetch_one(pool)
    .await?;
    Ok(count == 2)
}

/// Whether the database answers a trivial query.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!("SELECT 1 AS \"one!\"")
        .fetch_one(pool)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neon_urls_parse_without_channel_binding() {
        let url = "postgres://u:p@ep-x-pooler.eu-central-1.aws.neon.tech/neondb?sslmode=require&channel_binding=require";
        let options = connect_options(url, 0).unwrap();
        assert_eq!(options.get_host(), "ep-x-pooler.eu-central-1.aws.neon.tech");
        assert_eq!(options.get_database(), Some("neondb"));
        assert!(matches!(
            options.get_ssl_mode(),
            sqlx::postgres::PgSslMode::Require
        ));
        let options = connect_options("postgres://u@h/db?channel_binding=disable", 10).unwrap();
        assert_eq!(options.get_database(), Some("db"));
    }
}

//! The database group: `DATABASE_*` and `RUN_MIGRATIONS`.

use std::time::Duration;

use super::env::Env;
use crate::db::PoolSettings;
use crate::error::ConfigError;
use crate::secret::Secret;

/// Where the database is and how warden connects to it. The URLs are [`Secret`]s: they may
/// hold a password.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL` (required): the PostgreSQL database shared with Better-Auth.
    pub url: Secret,
    /// `DATABASE_READ_URL` (default unset): a read replica for lag-tolerant reads (admin user
    /// listing, audit log). Authorisation always reads the primary.
    pub read_url: Option<Secret>,
    /// `DATABASE_LISTEN_URL` (default `DATABASE_URL`): a direct connection for LISTEN (Neon:
    /// the non-pooled host; transaction-mode poolers do not carry LISTEN).
    pub listen_url: Option<Secret>,
    /// `DATABASE_MAX_CONNECTIONS` (default 10): size of the connection pool.
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT_SECS` (default 5): waiting longer for a pooled connection is a 503.
    pub acquire_timeout: Duration,
    /// `DATABASE_IDLE_TIMEOUT_SECS` (default 300): idle pooled connections are closed after this
    /// (lets Neon scale to zero).
    pub idle_timeout: Duration,
    /// `DATABASE_STATEMENT_CACHE` (default 100): prepared statements cached per connection; 0
    /// re-prepares every time. (It does not make a transaction-mode pooler without
    /// prepared-statement support work: `warden check` detects that case.)
    pub statement_cache: usize,
    /// `DATABASE_CONNECT_RETRY_SECS` (default 30): how long the first connection is retried
    /// (with backoff) before warden gives up; covers a cold Neon compute waking up.
    pub connect_retry: Duration,
    /// `RUN_MIGRATIONS` (default true): `warden serve` migrates the database before serving.
    pub run_migrations: bool,
}

impl DatabaseConfig {
    /// The pool's defaults are [`PoolSettings`]'s, which the library uses too.
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        env.required("DATABASE_URL")?;
        let pool = PoolSettings::default();
        Ok(Self {
            url: env
                .pg_url("DATABASE_URL")?
                .map(Secret::new)
                .ok_or(ConfigError::Missing("DATABASE_URL"))?,
            read_url: env.pg_url("DATABASE_READ_URL")?.map(Secret::new),
            listen_url: env.pg_url("DATABASE_LISTEN_URL")?.map(Secret::new),
            max_connections: env.number("DATABASE_MAX_CONNECTIONS", pool.max_connections, 1..=1000)?,
            acquire_timeout: env.secs(
                "DATABASE_ACQUIRE_TIMEOUT_SECS",
                pool.acquire_timeout.as_secs(),
                1..=300,
            )?,
            idle_timeout: env.secs(
                "DATABASE_IDLE_TIMEOUT_SECS",
                pool.idle_timeout.as_secs(),
                1..=86_400,
            )?,
            statement_cache: env.number("DATABASE_STATEMENT_CACHE", pool.statement_cache, 0..=100_000)?,
            connect_retry: env.secs(
                "DATABASE_CONNECT_RETRY_SECS",
                pool.connect_retry.as_secs(),
                0..=3_600,
            )?,
            run_migrations: env.flag("RUN_MIGRATIONS", true)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, config};
    use super::*;

    #[test]
    fn defaults_and_secrets() {
        let c = config(&[("DATABASE_URL", "postgres://warden:pw-in-url@localhost/db")]).unwrap();
        assert!(c.database.run_migrations);
        // As README and .env.example say; the numbers themselves live with PoolSettings.
        assert_eq!(c.database.max_connections, 10);
        assert_eq!(c.database.acquire_timeout, Duration::from_secs(5));
        assert_eq!(c.database.idle_timeout, Duration::from_secs(300));
        assert_eq!(c.database.statement_cache, 100);
        assert_eq!(c.database.connect_retry, Duration::from_secs(30));
        assert!(c.database.read_url.is_none() && c.database.listen_url.is_none());
        assert!(
            !format!("{c:?}").contains("pw-in-url"),
            "database URLs never print"
        );
        let c = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("RUN_MIGRATIONS", "false"),
        ])
        .unwrap();
        assert!(!c.database.run_migrations);
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        assert_eq!(config(&[]).unwrap_err(), ConfigError::Missing("DATABASE_URL"));
        let err = config(&[("DATABASE_URL", "mysql://x")]).unwrap_err().to_string();
        assert!(
            err.starts_with("DATABASE_URL"),
            "DATABASE_URL=\"mysql://x\" gave {err:?}"
        );
        assert_each_refused(&[
            ("RUN_MIGRATIONS", "maybe"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_READ_URL", "mysql://replica"),
            ("DATABASE_STATEMENT_CACHE", "-1"),
            ("DATABASE_LISTEN_URL", "redis://x"),
        ]);
    }
}

//! The database group: `DATABASE_*` and `RUN_MIGRATIONS`.

use std::time::Duration;

use super::env::Env;
use crate::error::ConfigError;

pub(super) struct DatabaseParts {
    pub(super) url: String,
    pub(super) read_url: Option<String>,
    pub(super) listen_url: Option<String>,
    pub(super) max_connections: u32,
    pub(super) acquire_timeout: Duration,
    pub(super) idle_timeout: Duration,
    pub(super) statement_cache: usize,
    pub(super) connect_retry: Duration,
    pub(super) run_migrations: bool,
}

impl DatabaseParts {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
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

//! The caches group: `TOKEN_CACHE_MB` and `USER_CACHE*`.

use std::time::Duration;

use super::env::Env;
use crate::auth::DEFAULT_TOKEN_CACHE_BYTES;
use crate::cache::RowCacheSettings;
use crate::error::ConfigError;

/// `*_MB` variables count in these.
pub(super) const MIB: u64 = 1024 * 1024;

/// What warden keeps in memory: verified tokens, and user and session rows.
#[derive(Debug, Clone)]
pub struct CacheConfig {
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
}

impl CacheConfig {
    /// The defaults are the library's: [`DEFAULT_TOKEN_CACHE_BYTES`] and [`RowCacheSettings`].
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let rows = RowCacheSettings::default();
        Ok(Self {
            token_cache_mb: env.number("TOKEN_CACHE_MB", DEFAULT_TOKEN_CACHE_BYTES / MIB, 0..=65_536)?,
            user_cache: env.flag("USER_CACHE", rows.enabled)?,
            user_cache_ttl: env.secs("USER_CACHE_TTL_SECS", rows.ttl.as_secs(), 1..=86_400)?,
            user_cache_mb: env.number("USER_CACHE_MB", rows.bytes / MIB, 1..=65_536)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, config};
    use super::*;

    #[test]
    fn defaults() {
        // As README and .env.example say; the numbers themselves live with what they size.
        let c = config(&[("DATABASE_URL", "postgres://localhost/db")]).unwrap();
        assert_eq!(c.caches.token_cache_mb, 8);
        assert!(c.caches.user_cache);
        assert_eq!(c.caches.user_cache_ttl, Duration::from_secs(60));
        assert_eq!(c.caches.user_cache_mb, 16);
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        assert_each_refused(&[
            ("TOKEN_CACHE_MB", "lots"),
            ("USER_CACHE", "sometimes"),
            ("USER_CACHE_TTL_SECS", "0"),
        ]);
    }
}

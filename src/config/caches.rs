//! The caches group: `TOKEN_CACHE_MB` and `USER_CACHE*`.

use std::time::Duration;

use super::env::Env;
use crate::error::ConfigError;

pub(super) struct CacheParts {
    pub(super) token_cache_mb: u64,
    pub(super) user_cache: bool,
    pub(super) user_cache_ttl: Duration,
    pub(super) user_cache_mb: u64,
}

impl CacheParts {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            token_cache_mb: env.number("TOKEN_CACHE_MB", 8, 0..=65_536)?,
            user_cache: env.flag("USER_CACHE", true)?,
            user_cache_ttl: env.secs("USER_CACHE_TTL_SECS", 60, 1..=86_400)?,
            user_cache_mb: env.number("USER_CACHE_MB", 16, 1..=65_536)?,
        })
    }
}

//! Verified tokens by SHA-256 of the token: each distinct token's signature is checked once.
//!
//! An entry lives until the token's `exp` (plus leeway) and no longer; a hit is only used
//! while the key that verified it is still in the JWKS. Only successful verifications are
//! cached, so a forged token costs a full check every time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};

use super::verify::Claims;

/// One verified token.
#[derive(Debug)]
pub(crate) struct Verified {
    /// Its claims, as they passed every check.
    pub claims: Arc<Claims>,
    /// The key that verified it.
    pub kid: String,
    /// When the token stops being valid (exp + leeway), as an instant.
    pub valid_until: Instant,
}

struct UntilExpiry;

impl moka::Expiry<[u8; 32], Arc<Verified>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        value: &Arc<Verified>,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(value.valid_until.saturating_duration_since(created_at))
    }
}

/// Verified tokens by hash (see the module docs). Holds nothing when built with capacity 0
/// (`TOKEN_CACHE_SIZE=0`).
#[derive(Clone)]
pub struct TokenCache {
    cache: Option<moka::sync::Cache<[u8; 32], Arc<Verified>>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.cache.as_ref().map(|c| c.entry_count()))
            .finish()
    }
}

impl TokenCache {
    /// Room for `capacity` verified tokens; 0 turns the cache off, so every request's
    /// signature is checked.
    pub fn new(capacity: u64) -> Self {
        let cache = (capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExpiry)
                .build()
        });
        Self { cache }
    }

    /// Whether the cache keeps anything (its capacity is not 0).
    pub fn enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// The cache key of `token`: its SHA-256, so the cache never holds a token itself.
    pub(crate) fn key(token: &str) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        key
    }

    /// A cached verification still within its validity, or `None`.
    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<Arc<Verified>> {
        let entry = self.cache.as_ref()?.get(key)?;
        (entry.valid_until > Instant::now()).then_some(entry)
    }

    /// Keeps `verified` under `key` until it stops being valid; one already past that is not kept.
    pub(crate) fn insert(&self, key: [u8; 32], verified: Verified) {
        if let Some(cache) = &self.cache
            && verified.valid_until > Instant::now()
        {
            cache.insert(key, Arc::new(verified));
        }
    }

    /// Forgets the token under `key` (its key left the JWKS).
    pub(crate) fn remove(&self, key: &[u8; 32]) {
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
    }
}

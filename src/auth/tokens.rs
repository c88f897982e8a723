//! Verified tokens by SHA-256 of the token: each distinct token's signature is checked once.
//!
//! An entry lives until the token's `exp` (plus leeway) and no longer; a hit is only used
//! while the key that verified it is still in the JWKS. Only successful verifications are
//! cached, so a forged token costs a full check every time.
//!
//! The cache is bounded by memory, not by a count (`TOKEN_CACHE_MB`): each entry is weighed as
//! what it holds (the claims a decision needs, a pointer to its key) plus the cache's own
//! bookkeeping, so a burst of tokens seen once (each user's new JWT every 15 minutes) evicts
//! the oldest instead of growing the process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};

use super::keys::VerifyingKey;
use super::verify::Claims;

/// What one entry costs beyond what it points to: moka's node, its timer-wheel and access-order
/// links, its hash-table slot, and the allocator's rounding (measured by filling a cache like
/// this one with 16,000 entries and reading the process's RSS: about 400 bytes an entry).
const ENTRY_OVERHEAD: usize = 400;

/// One verified token.
#[derive(Debug)]
pub(crate) struct Verified {
    /// Its claims, as they passed every check.
    pub claims: Arc<Claims>,
    /// The key that verified it (shared with the key set: no copy per token).
    pub key: Arc<VerifyingKey>,
    /// When the token stops being valid (exp + leeway), as an instant.
    pub valid_until: Instant,
}

impl Verified {
    /// Approximately the bytes this entry keeps alive, for the cache's weigher.
    fn weight(&self) -> u32 {
        let claims = &self.claims;
        let text = claims.sub.len()
            + claims.sid.as_ref().map_or(0, String::len)
            + claims.iss.as_ref().map_or(0, String::len)
            + claims.aud.as_ref().map_or(0, |a| a.heap_len());
        let bytes = 32 + size_of::<Self>() + size_of::<Claims>() + text + ENTRY_OVERHEAD;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
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

/// Verified tokens by hash (see the module docs). Holds nothing when built with 0 bytes
/// (`TOKEN_CACHE_MB=0`).
#[derive(Clone)]
pub struct TokenCache {
    cache: Option<moka::sync::Cache<[u8; 32], Arc<Verified>>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.cache.as_ref().map(|c| c.entry_count()))
            .field("bytes", &self.cache.as_ref().map(|c| c.weighted_size()))
            .finish()
    }
}

impl TokenCache {
    /// Room for about `bytes` of verified tokens; 0 turns the cache off, so every request's
    /// signature is checked.
    pub fn new(bytes: u64) -> Self {
        let cache = (bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_: &[u8; 32], v: &Arc<Verified>| v.weight())
                .expire_after(UntilExpiry)
                .build()
        });
        Self { cache }
    }

    /// The bytes the entries held now weigh (for tests and metrics; moka counts lazily).
    pub fn weighted_size(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.weighted_size()
        })
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

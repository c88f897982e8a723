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
use std::time::Instant;

use aws_lc_rs::digest::{SHA256, digest};

use crate::auth::jwt::keys::VerifyingKey;
use crate::auth::jwt::verify::Claims;

/// What one entry costs beyond what it points to: the cache's slot and bookkeeping and the
/// allocator's rounding (measured with moka, which needed about 400 bytes an entry; a bound on
/// the lighter cache used now).
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
            + claims.aud.as_ref().map_or(0, |a| a.heap_len())
            + claims.scope.as_ref().map_or(0, String::len)
            + claims.client_id.as_ref().map_or(0, String::len)
            + claims.azp.as_ref().map_or(0, String::len)
            + claims.jkt().map_or(0, |j| j.len() + 24);
        let bytes = 32 + size_of::<Self>() + size_of::<Claims>() + text + ENTRY_OVERHEAD;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// Weighs an entry for the cache's memory bound.
#[derive(Clone, Copy)]
struct ByWeight;

impl quick_cache::Weighter<[u8; 32], Arc<Verified>> for ByWeight {
    fn weight(&self, _: &[u8; 32], value: &Arc<Verified>) -> u64 {
        u64::from(value.weight())
    }
}

/// About what an entry weighs with Better-Auth's tokens, to size the table up front.
const TYPICAL_ENTRY: u64 = 700;

/// Verified tokens by hash (see the module docs). Holds nothing when built with 0 bytes
/// (`TOKEN_CACHE_MB=0`). An entry past its token's expiry is never returned; it stays until
/// evicted or overwritten (the memory bound holds either way).
#[derive(Clone)]
pub struct TokenCache {
    cache: Option<Arc<Verifications>>,
}

/// The table behind [`TokenCache`]: token hash → verification.
type Verifications = quick_cache::sync::Cache<[u8; 32], Arc<Verified>, ByWeight>;

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.cache.as_ref().map(|c| c.len()))
            .field("bytes", &self.cache.as_ref().map(|c| c.weight()))
            .finish()
    }
}

impl TokenCache {
    /// Room for about `bytes` of verified tokens; 0 turns the cache off, so every request's
    /// signature is checked.
    pub fn new(bytes: u64) -> Self {
        let cache = (bytes > 0).then(|| {
            let items = usize::try_from((bytes / TYPICAL_ENTRY).max(16)).unwrap_or(usize::MAX);
            Arc::new(quick_cache::sync::Cache::with_weighter(items, bytes, ByWeight))
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
            cache.remove(key);
        }
    }
}

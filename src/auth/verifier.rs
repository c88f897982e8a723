//! [`Verifier`]: a JWT checked against the cached JWKS and the claim rules, each distinct
//! token once (verified tokens are kept by hash until their `exp`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::jwks::{JwksCache, Lookup};
use super::tokens::{TokenCache, Verified};
use super::verify::{self, ClaimRules, Claims, VerifyError};
use crate::error::ApiError;

/// Default memory for verified tokens (8 MiB: some 20,000 tokens).
pub const DEFAULT_TOKEN_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Verifies Better-Auth JWTs against the cached JWKS, each distinct token once.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Where the keys come from (shared with its background refresher).
    pub jwks: Arc<JwksCache>,
    /// The issuer, audience and leeway every token must pass.
    pub rules: Arc<ClaimRules>,
    /// The tokens already verified, by hash.
    pub tokens: TokenCache,
}

impl Verifier {
    /// A verifier with a token cache of [`DEFAULT_TOKEN_CACHE_BYTES`].
    pub fn new(jwks: Arc<JwksCache>, rules: ClaimRules) -> Self {
        Self {
            jwks,
            rules: Arc::new(rules),
            tokens: TokenCache::new(DEFAULT_TOKEN_CACHE_BYTES),
        }
    }

    /// The same verifier with `tokens` as its token cache (`TokenCache::new(0)`: no cache).
    pub fn with_token_cache(mut self, tokens: TokenCache) -> Self {
        self.tokens = tokens;
        self
    }

    /// The claims of `token` if it was verified before (still valid, its key still in the
    /// JWKS): a hash and a lookup, no signature check.
    pub fn cached(&self, token: &str) -> Option<Arc<Claims>> {
        self.cached_by_key(&self.cache_key(token)?)
    }

    /// The token cache's key for `token` (its SHA-256), or `None` when the cache is off. A
    /// request computes it once and hands it to [`cached_by_key`](Self::cached_by_key) and,
    /// on a miss, to [`verify_uncached`](Self::verify_uncached).
    pub(crate) fn cache_key(&self, token: &str) -> Option<[u8; 32]> {
        self.tokens.enabled().then(|| TokenCache::key(token))
    }

    /// The cached claims under `key`, as [`cached`](Self::cached) finds them.
    pub(crate) fn cached_by_key(&self, key: &[u8; 32]) -> Option<Arc<Claims>> {
        let hit = self.tokens.get(key)?;
        if self.jwks.has_key(hit.key.kid()) {
            return Some(Arc::clone(&hit.claims));
        }
        self.tokens.remove(key);
        None
    }

    /// Verifies `token` completely: structure, key, algorithm, signature, claims. A token
    /// verified before (still valid, its key still in the JWKS) costs a hash and a lookup.
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, ApiError> {
        let cache_key = self.cache_key(token);
        if let Some(claims) = cache_key.as_ref().and_then(|key| self.cached_by_key(key)) {
            return Ok(claims);
        }
        self.verify_uncached(token, cache_key).await
    }

    /// Verifies `token` completely without asking the cache first (the caller asked, with
    /// `cache_key`), and keeps the claims under `cache_key` until the token expires.
    pub(crate) async fn verify_uncached(
        &self,
        token: &str,
        cache_key: Option<[u8; 32]>,
    ) -> Result<Arc<Claims>, ApiError> {
        let parsed = verify::parse(token)?;
        let key = match self.jwks.key(&parsed.kid).await {
            Lookup::Found(key) => key,
            Lookup::Unknown => return Err(VerifyError::UnknownKid.into()),
            Lookup::Unavailable => return Err(ApiError::JwksUnavailable),
        };
        let now = verify::now_secs();
        let claims = Arc::new(parsed.verify(&key, &self.rules, now)?);
        if let Some(cache_key) = cache_key {
            let left = claims.exp + self.rules.leeway_secs as f64 - now;
            if left > 0.0 {
                self.tokens.insert(
                    cache_key,
                    Verified {
                        claims: Arc::clone(&claims),
                        key: Arc::clone(&key),
                        valid_until: Instant::now() + Duration::from_secs_f64(left.min(86_400.0)),
                    },
                );
            }
        }
        Ok(claims)
    }
}

impl From<VerifyError> for ApiError {
    fn from(err: VerifyError) -> Self {
        match err {
            VerifyError::Expired => ApiError::TokenExpired,
            other => ApiError::InvalidToken(other.to_string()),
        }
    }
}

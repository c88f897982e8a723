//! [`Verifier`]: a JWT checked against the cached JWKS and the claim rules, each distinct
//! token once (verified tokens are kept by hash until their `exp`).
//!
//! The protocol has two halves, so that a caller can decide in between how much work a token
//! may cost: `Verifier::lookup` (the token cache: a hash and a lookup) and, on a miss,
//! `Unverified::check` (the key, fetching the JWKS only if the caller allows it; the
//! signature; the claims; the claims kept). [`Verifier::verify`] is both, fetch allowed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::jwt::jwks::{JwksCache, Lookup};
use crate::auth::jwt::tokens::{TokenCache, Verified};
use crate::auth::jwt::verify::{self, AccessTokenRules, ClaimRules, Claims, VerifyError};
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
    /// The rules of OAuth access tokens; `None`: none is accepted.
    pub access: Option<Arc<AccessTokenRules>>,
}

impl Verifier {
    /// A verifier with a token cache of [`DEFAULT_TOKEN_CACHE_BYTES`].
    pub fn new(jwks: Arc<JwksCache>, rules: ClaimRules) -> Self {
        Self {
            jwks,
            rules: Arc::new(rules),
            tokens: TokenCache::new(DEFAULT_TOKEN_CACHE_BYTES),
            access: None,
        }
    }

    /// The same verifier accepting OAuth access tokens (`typ: at+jwt`) that pass `rules`.
    pub fn with_access_tokens(mut self, rules: Option<AccessTokenRules>) -> Self {
        self.access = rules.map(Arc::new);
        self
    }

    /// The same verifier with `tokens` as its token cache (`TokenCache::new(0)`: no cache).
    pub fn with_token_cache(mut self, tokens: TokenCache) -> Self {
        self.tokens = tokens;
        self
    }

    /// The claims of `token` if it was verified before (still valid, its key still in the
    /// JWKS): a hash and a lookup, no signature check.
    #[cfg(any(test, feature = "testing"))]
    pub fn cached(&self, token: &str) -> Option<Arc<Claims>> {
        self.lookup(token).ok()
    }

    /// Verifies `token` completely: structure, key (fetching the JWKS for an unknown `kid`),
    /// algorithm, signature, claims. A token verified before (still valid, its key still in
    /// the JWKS) costs a hash and a lookup.
    #[cfg(any(test, feature = "testing"))]
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, ApiError> {
        match self.lookup(token) {
            Ok(claims) => Ok(claims),
            Err(unverified) => unverified.check(|| true).await.map_err(|not| match not {
                NotVerified::Refused(err) => err,
                NotVerified::FetchNotAllowed => VerifyError::UnknownKid.into(),
            }),
        }
    }

    /// The protocol's first half: the claims of a token verified before, or, on a miss, what
    /// checking it takes ([`Unverified::check`]). A caller that limits the work it spends on a
    /// client (the request side's failure limiter) decides between the two halves.
    pub(crate) fn lookup<'a>(&'a self, token: &'a str) -> Result<Arc<Claims>, Unverified<'a>> {
        // The cache key (the token's SHA-256) is computed once, for the lookup and, on a
        // miss, for keeping the verified claims.
        let cache_key = self.tokens.enabled().then(|| TokenCache::key(token));
        if let Some(key) = &cache_key
            && let Some(hit) = self.tokens.get(key)
        {
            if self.jwks.has_key(hit.key.kid()) {
                return Ok(Arc::clone(&hit.claims));
            }
            self.tokens.remove(key);
        }
        Err(Unverified {
            verifier: self,
            token,
            cache_key,
        })
    }
}

/// A token the cache did not hold, and what checking it takes.
#[derive(Debug)]
pub(crate) struct Unverified<'a> {
    verifier: &'a Verifier,
    token: &'a str,
    cache_key: Option<[u8; 32]>,
}

/// Why an [`Unverified`] token was not verified.
#[derive(Debug)]
pub(crate) enum NotVerified {
    /// Checked and refused (malformed, forged, expired, another issuer, unknown key, ...), or
    /// the keys are unavailable: the answer to give.
    Refused(ApiError),
    /// Its `kid` is not in the JWKS, and the caller did not allow a fetch to look for it.
    FetchNotAllowed,
}

impl Unverified<'_> {
    /// The protocol's second half: the key (a JWKS fetch only when the `kid` is unknown and
    /// `may_fetch()` allows it; a known key is a bounded signature check), the signature and
    /// the claims; the verified claims are kept until the token expires.
    pub(crate) async fn check(self, may_fetch: impl FnOnce() -> bool) -> Result<Arc<Claims>, NotVerified> {
        let Self {
            verifier,
            token,
            cache_key,
        } = self;
        let parsed = verify::parse(token).map_err(|e| NotVerified::Refused(e.into()))?;
        if !verifier.jwks.has_key(&parsed.kid) && !may_fetch() {
            return Err(NotVerified::FetchNotAllowed);
        }
        let key = match verifier.jwks.key(&parsed.kid).await {
            Lookup::Found(key) => key,
            Lookup::Unknown => return Err(NotVerified::Refused(VerifyError::UnknownKid.into())),
            Lookup::Unavailable => return Err(NotVerified::Refused(ApiError::JwksUnavailable)),
        };
        let now = verify::now_secs();
        let claims = Arc::new(
            parsed
                .verify(&key, &verifier.rules, verifier.access.as_deref(), now)
                .map_err(|e| NotVerified::Refused(e.into()))?,
        );
        if let Some(cache_key) = cache_key {
            let left = claims.exp + verifier.rules.leeway_secs as f64 - now;
            if left > 0.0 {
                verifier.tokens.insert(
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

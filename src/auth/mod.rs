//! Authentication: who is calling.
//!
//! Layout:
//! - [`keys`]: one JWK → one [`keys::VerifyingKey`] with its algorithm pinned; key sets.
//! - [`jwks`]: the cache of Better-Auth's JWKS (fetch, refresh, single-flight, fallback).
//! - [`verify`]: compact JWS → checked [`verify::Claims`], for all five algorithms.
//! - [`session_token`]: Better-Auth session tokens (raw or signed) as bearer credentials.
//! - [`policy`]: admin membership, assignable roles, session strictness.
//! - [`extract`]: [`extract::AuthUser`], [`extract::Admin`], [`extract::RequireRole`].
//!
//! [`Verifier`] joins the cache and the claim rules; it is the only thing the extractor calls.

pub mod extract;
pub mod jwks;
pub mod keys;
pub mod policy;
pub mod session_token;
pub mod verify;

use std::sync::Arc;

use crate::error::ApiError;
use jwks::{JwksCache, Lookup};
use verify::{ClaimRules, Claims, VerifyError};

/// Verifies Better-Auth JWTs against the cached JWKS.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub jwks: Arc<JwksCache>,
    pub rules: Arc<ClaimRules>,
}

impl Verifier {
    pub fn new(jwks: Arc<JwksCache>, rules: ClaimRules) -> Self {
        Self {
            jwks,
            rules: Arc::new(rules),
        }
    }

    /// Verifies `token` completely: structure, key, algorithm, signature, claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let parsed = verify::parse(token)?;
        let key = match self.jwks.key(&parsed.kid).await {
            Lookup::Found(key) => key,
            Lookup::Unknown => return Err(VerifyError::UnknownKid.into()),
            Lookup::Unavailable => return Err(ApiError::JwksUnavailable),
        };
        Ok(parsed.verify(&key, &self.rules, verify::now_secs())?)
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

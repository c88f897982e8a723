//! Extractors: the only place a request's credentials are read.
//!
//! A handler that takes [`AuthUser`] cannot run for an unauthenticated caller: the extractor
//! verifies the bearer JWT, then loads the user row fresh from the database on every request
//! (the JWT's copy of the user can be 15 minutes stale), refusing deleted and banned users.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use time::OffsetDateTime;

use super::verify::{Claims, MAX_TOKEN_LEN};
use crate::AppState;
use crate::db::users::{self, User};
use crate::error::ApiError;

/// An authenticated caller whose account exists and is not banned.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub claims: Claims,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        let claims = state.verifier.verify(token).await?;
        tracing::Span::current().record("user_id", claims.sub.as_str());
        let user = users::find_by_id(&state.db, &claims.sub)
            .await?
            .ok_or(ApiError::UserNotFound)?;
        if user.ban_is_active(OffsetDateTime::now_utc()) {
            return Err(ApiError::Banned {
                reason: user.ban_reason.clone(),
                expires: user.ban_expires,
            });
        }
        Ok(Self { user, claims })
    }
}

/// The token of `Authorization: Bearer <token>`. The scheme is case-insensitive (RFC 7235).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(ApiError::MissingToken);
    };
    if values.next().is_some() {
        return Err(ApiError::InvalidToken(
            "send exactly one Authorization header".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::InvalidToken("the Authorization header is not valid text".into()))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::InvalidToken(
            "the Authorization header must use the Bearer scheme".into(),
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::MissingToken);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::InvalidToken(format!(
            "the token is longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    Ok(token)
}

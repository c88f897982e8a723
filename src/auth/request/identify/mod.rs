//! Step 1 of authentication: whose credential is it? One step per kind of credential, each in
//! its own file, all answering with a [`Proof`]:
//!
//! - [`jwt`]: a Better-Auth JWT: the token cache, else a signature check (a JWKS fetch only
//!   when the key is unknown and the client may still cost warden one);
//! - [`session_token`]: a Better-Auth session token, from the bearer header or the session
//!   cookie: its HMAC, then the session it names;
//! - [`api_key`]: a key of Better-Auth's api-key plugin: its row, the plugin's checks, its
//!   owner, then one use claimed.
//!
//! A new kind of credential (OAuth access tokens) is a variant of
//! [`Presented`] and a file here with its step, and a [`Proof`] variant if what it proves is
//! new. A token already verified costs a lookup and is never limited. Any other check asks the
//! failure limiter first ([`crate::auth::request::throttle`]) and gets a [`Ticket`]: an address
//! out of attempts still gets the bounded checks (a known key's signature, a session token's
//! HMAC), so a valid credential behind an address that junk came from is served; only dear
//! work (a JWKS fetch, a database read nothing proved worth doing) is answered 429.

mod access_token;
pub(crate) mod api_key;

pub(crate) use api_key::Asked;
mod jwt;
mod session_token;

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::StatusCode;

use crate::auth::Auth;
use crate::auth::api_key::ApiKey;
use crate::auth::jwt::looks_like_jwt;
use crate::auth::jwt::verify::{Claims, TokenKind};
use crate::auth::oauth::token::AccessToken;
use crate::auth::request::credential::Presented;
use crate::auth::request::throttle::Ticket;
use crate::db::sessions::SessionRef;
use crate::db::users::User;
use crate::error::ApiError;

/// What step 1 established.
pub(crate) enum Proof {
    /// A JWT's verified claims.
    Jwt(Arc<Claims>),
    /// The session a session token (bearer or cookie) names, live or not (step 4 decides).
    Session { session: SessionRef, from_cookie: bool },
    /// An API key whose use was claimed, with its owner when a user owns it (fresh and not
    /// banned: checked before the claim).
    ApiKey {
        key: Arc<ApiKey>,
        owner: Option<Arc<User>>,
    },
    /// An OAuth access token: a JWT's verified claims (`typ: at+jwt`) or an opaque token's row;
    /// its client, user and session are checked in `authenticate`.
    Access(AccessToken),
}

impl Proof {
    /// Whose credential it is.
    pub(crate) fn user_id(&self) -> &str {
        match self {
            Self::Jwt(claims) => &claims.sub,
            Self::Session { session, .. } => &session.user_id,
            Self::ApiKey { key, .. } => key.owner.id(),
            Self::Access(token) => token.user_id().unwrap_or_else(|| token.client_id()),
        }
    }
}

/// Checking this credential would cost warden dear work (a JWKS fetch, a database read that
/// nothing proved worth doing), which an address out of attempts does not get.
struct DearWork;

/// A step's answer: the proof or the refusal to give, or [`DearWork`] not done.
type Checked = Result<Result<Proof, ApiError>, DearWork>;

impl Auth {
    /// Step 1: the proof of whose `presented` credential is, from `client`.
    pub(super) async fn identify(
        &self,
        presented: &Presented<'_>,
        client: Option<IpAddr>,
    ) -> Result<Proof, ApiError> {
        let admit = || self.failures().admit(client).map_err(throttled);
        match presented {
            Presented::Jwt(token) => {
                let unverified = match self.verifier().lookup(token) {
                    Ok(claims) => return Ok(jwt_proof(claims)),
                    Err(unverified) => unverified,
                };
                let mut ticket = admit()?;
                let checked = self.identify_jwt(unverified, &mut ticket).await;
                settle(checked, ticket).map(|proof| match proof {
                    Proof::Jwt(claims) => jwt_proof(claims),
                    other => other,
                })
            }
            Presented::SessionToken(token) => {
                let oauth = self.policy().oauth.may_be_opaque(token);
                if oauth && let Some(row) = self.cached_opaque(token) {
                    return self.cached_opaque_proof(row);
                }
                let mut ticket = admit()?;
                let mut checked = self.identify_session_token(token, false, &mut ticket).await;
                // No session: maybe an opaque access token.
                if oauth && matches!(checked, Ok(Err(ApiError::InvalidToken(_)))) {
                    checked = self.identify_opaque(token, &mut ticket).await;
                }
                settle(checked, ticket)
            }
            Presented::Dpop(token) => {
                // Only access tokens come with the DPoP scheme.
                if looks_like_jwt(token) {
                    let unverified = match self.verifier().lookup(token) {
                        Ok(claims) => return Ok(jwt_proof(claims)),
                        Err(unverified) => unverified,
                    };
                    let mut ticket = admit()?;
                    let checked = self.identify_jwt(unverified, &mut ticket).await;
                    return settle(checked, ticket).map(|proof| match proof {
                        Proof::Jwt(claims) => jwt_proof(claims),
                        other => other,
                    });
                }
                if !self.policy().oauth.may_be_opaque(token) {
                    return Err(ApiError::InvalidToken(
                        "the DPoP scheme carries OAuth access tokens, and this is none".into(),
                    ));
                }
                if let Some(row) = self.cached_opaque(token) {
                    return self.cached_opaque_proof(row);
                }
                let mut ticket = admit()?;
                let checked = self.identify_opaque(token, &mut ticket).await;
                settle(checked, ticket)
            }
            Presented::Cookie(value) => {
                let mut ticket = admit()?;
                let checked = self.identify_session_token(value, true, &mut ticket).await;
                settle(checked, ticket)
            }
            Presented::ApiKey(key) => self.identify_key(key, Asked::default(), client).await,
        }
    }

    /// Step 1 for an API key, with what the request `asked` of it.
    pub(crate) async fn identify_key(
        &self,
        key: &str,
        asked: Asked<'_>,
        client: Option<IpAddr>,
    ) -> Result<Proof, ApiError> {
        let mut ticket = self.failures().admit(client).map_err(throttled)?;
        let checked = self.identify_api_key(key, asked, &mut ticket).await;
        settle(checked, ticket)
    }
}

/// A verified JWT's proof: an OAuth access token (`typ: at+jwt`) or a session JWT.
fn jwt_proof(claims: Arc<Claims>) -> Proof {
    match claims.kind {
        TokenKind::Access => Proof::Access(AccessToken::Jwt(claims)),
        TokenKind::Session => Proof::Jwt(claims),
    }
}

/// The limiter's bookkeeping for one verdict: a refused credential counts against the address
/// (not warden's own outage, 503); dear work not done is answered 429 with `Retry-After`.
fn settle(checked: Checked, ticket: Ticket<'_>) -> Result<Proof, ApiError> {
    match checked {
        Ok(Ok(proof)) => Ok(proof),
        Ok(Err(refusal)) => {
            if refusal.status() == StatusCode::UNAUTHORIZED {
                ticket.refused();
            }
            Err(refusal)
        }
        Err(DearWork) => {
            let wait = ticket.retry_after();
            ticket.refused();
            Err(throttled(wait))
        }
    }
}

/// 429 `too_many_requests`, to retry after `wait`.
fn throttled(wait: std::time::Duration) -> ApiError {
    metrics::counter!("warden_auth_throttled_total").increment(1);
    ApiError::TooManyFailures {
        retry_after_secs: wait.as_secs().max(1),
    }
}

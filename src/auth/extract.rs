//! Extractors: the only place a request's credentials are read.
//!
//! A handler that takes [`AuthUser`] cannot run for an unauthenticated caller; one that takes
//! [`Admin`] or [`RequireRole`] cannot run for a caller without the role. Every decision is
//! made on fresh database state: the user row is read on each request (the JWT's copy of the
//! user, roles included, can be 15 minutes stale), deleted and banned users are refused, and
//! when the JWT names its session (`sid`), that session must still be live.
//!
//! Credentials: `Authorization: Bearer <Better-Auth JWT>`, or a Better-Auth session token
//! (raw or signed, as the bearer plugin issues them).

use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use time::OffsetDateTime;

use super::session_token::{looks_like_jwt, session_token};
use super::verify::{Claims, MAX_TOKEN_LEN};
use crate::AppState;
use crate::config::SessionCheck;
use crate::db::sessions::{self, SessionRef};
use crate::db::users::{self, User};
use crate::error::ApiError;

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    Jwt(Arc<Claims>),
    SessionToken,
}

/// An authenticated caller whose account exists and is not banned.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The fresh user row (from the notification-invalidated cache or the database).
    pub user: Arc<User>,
    /// The Better-Auth session behind the credential, when known (`sid`, or the session token's).
    pub session_id: Option<String>,
    pub credential: Credential,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        let client = state.client_ips.client_ip(parts);
        authenticate(state, token, client).await
    }
}

/// The four steps, in order: who the credential names, their fresh row, their ban, and the
/// session behind the credential.
async fn authenticate(state: &AppState, token: &str, client: Option<IpAddr>) -> Result<AuthUser, ApiError> {
    let now = OffsetDateTime::now_utc();
    let proof = identify(state, token, client).await?;
    tracing::Span::current().record("user_id", proof.user_id());
    // The account before the session: a banned user hears "banned" (Better-Auth's ban also
    // deletes the sessions, which would otherwise hide the reason behind "session revoked").
    let user = load_user(state, proof.user_id()).await?;
    refuse_ban(&user, now)?;
    let (session_id, credential) = check_session(state, proof, now).await?;
    Ok(AuthUser {
        user,
        session_id,
        credential,
    })
}

/// Step 1: a verified JWT's subject, or the owner of a live session token. Work that costs
/// warden more than a lookup (a signature check, a query) takes one of the client's attempts
/// first, given back when the credential is good: a client out of attempts is answered 429 at
/// once (see [`super::throttle`]).
async fn identify(state: &AppState, token: &str, client: Option<IpAddr>) -> Result<Proof, ApiError> {
    if looks_like_jwt(token)
        && let Some(claims) = state.verifier.cached(token)
    {
        return Ok(Proof::Jwt(claims));
    }
    if let Some(ip) = client
        && let Err(wait) = state.failures.reserve(ip)
    {
        metrics::counter!("warden_auth_throttled_total").increment(1);
        return Err(ApiError::TooManyFailures {
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let proof = verify_credential(state, token).await;
    // Only a refused credential counts: not a good one, nor our own outage (503).
    let refused = matches!(&proof, Err(e) if e.status() == axum::http::StatusCode::UNAUTHORIZED);
    if !refused && let Some(ip) = client {
        state.failures.refund(ip);
    }
    proof
}

/// The costly part of step 1: a signature check, or a session lookup.
async fn verify_credential(state: &AppState, token: &str) -> Result<Proof, ApiError> {
    if looks_like_jwt(token) {
        return Ok(Proof::Jwt(state.verifier.verify(token).await?));
    }
    let policy = &state.policy;
    let raw = session_token(
        token,
        policy.better_auth_secret.as_ref(),
        policy.require_signed_session_tokens,
    )
    .map_err(|e| ApiError::InvalidToken(e.to_string()))?;
    // Unknown and signed-out tokens look the same here: neither is a live session.
    let unknown = || ApiError::InvalidToken("no live session has this token".into());
    if state.unknown_sessions.contains(&raw) {
        return Err(unknown());
    }
    match sessions::find_ref_by_token(&state.db, &raw).await? {
        Some(session) => Ok(Proof::Session(session)),
        None => {
            state.unknown_sessions.insert(&raw);
            Err(unknown())
        }
    }
}

/// Step 3: an active ban refuses everything.
fn refuse_ban(user: &User, now: OffsetDateTime) -> Result<(), ApiError> {
    if user.ban_is_active(now) {
        return Err(ApiError::Banned {
            reason: user.ban_reason.clone(),
            expires: user.ban_expires,
        });
    }
    Ok(())
}

/// Step 4: the session behind the credential must be live (a session token's own session; a
/// JWT's `sid`, as `SESSION_CHECK` says).
async fn check_session(
    state: &AppState,
    proof: Proof,
    now: OffsetDateTime,
) -> Result<(Option<String>, Credential), ApiError> {
    match proof {
        Proof::Session(session) => {
            if session.expires_at <= now {
                return Err(ApiError::TokenExpired);
            }
            Ok((Some(session.id), Credential::SessionToken))
        }
        Proof::Jwt(claims) => {
            let session_id = match (state.policy.session_check, claims.sid.as_deref()) {
                (SessionCheck::Off, sid) => sid.map(str::to_owned),
                (SessionCheck::Required, None) => {
                    return Err(ApiError::InvalidToken(
                        "the token names no session (sid), which this server requires".into(),
                    ));
                }
                (SessionCheck::Auto, None) => None,
                (_, Some(sid)) => {
                    let session = load_session(state, sid).await?;
                    Some(live_session_of(session.as_deref(), &claims.sub, now)?.id.clone())
                }
            };
            Ok((session_id, Credential::Jwt(claims)))
        }
    }
}

enum Proof {
    Jwt(Arc<Claims>),
    Session(SessionRef),
}

impl Proof {
    fn user_id(&self) -> &str {
        match self {
            Self::Jwt(claims) => &claims.sub,
            Self::Session(session) => &session.user_id,
        }
    }
}

/// The user row: from the cache when it can be trusted, else from the primary.
async fn load_user(state: &AppState, id: &str) -> Result<Arc<User>, ApiError> {
    if let Some(user) = state.rows.user(id) {
        return Ok(user);
    }
    let ticket = state.rows.ticket(id);
    let user = Arc::new(
        users::find_by_id(&state.db, id)
            .await?
            .ok_or(ApiError::UserNotFound)?,
    );
    state.rows.put_user(Arc::clone(&user), ticket);
    Ok(user)
}

/// A session by id: from the cache when it can be trusted, else from the primary.
async fn load_session(state: &AppState, id: &str) -> Result<Option<Arc<SessionRef>>, ApiError> {
    if let Some(session) = state.rows.session(id) {
        return Ok(Some(session));
    }
    let ticket = state.rows.ticket(id);
    let Some(session) = sessions::find_ref_by_id(&state.db, id).await? else {
        return Ok(None);
    };
    let session = Arc::new(session);
    state.rows.put_session(Arc::clone(&session), ticket);
    Ok(Some(session))
}

/// The session a JWT names must exist, belong to the token's subject, and not be expired.
fn live_session_of<'a>(
    session: Option<&'a SessionRef>,
    sub: &str,
    now: OffsetDateTime,
) -> Result<&'a SessionRef, ApiError> {
    match session {
        Some(s) if s.user_id == sub && s.expires_at > now => Ok(s),
        _ => Err(ApiError::SessionRevoked),
    }
}

/// An authenticated admin (Better-Auth's rules: an admin role, or an id in `ADMIN_USER_IDS`),
/// judged on the fresh user row.
#[derive(Debug, Clone)]
pub struct Admin(pub AuthUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = AuthUser::from_request_parts(parts, state).await?;
        if !state.policy.is_admin(&caller.user) {
            return Err(ApiError::Forbidden("this route is for admins".into()));
        }
        Ok(Self(caller))
    }
}

/// A role a route can require: `RequireRole<Editor>` where `Editor: RoleName`.
pub trait RoleName {
    const ROLE: &'static str;
}

/// An authenticated caller holding the role `R::ROLE` (from the fresh user row).
#[derive(Debug, Clone)]
pub struct RequireRole<R> {
    pub caller: AuthUser,
    role: PhantomData<R>,
}

impl<R: RoleName + Send + Sync> FromRequestParts<AppState> for RequireRole<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = AuthUser::from_request_parts(parts, state).await?;
        if !caller.user.roles().iter().any(|r| r == R::ROLE) {
            return Err(ApiError::Forbidden(format!(
                "this route requires the role {:?}",
                R::ROLE
            )));
        }
        Ok(Self {
            caller,
            role: PhantomData,
        })
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

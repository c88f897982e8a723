//! From a request's credential to an [`AuthUser`], in four named steps:
//!
//! 1. **identify**: whose credential is it? A verified JWT's subject, or the owner of a live
//!    session token (bearer or cookie). Costly checks take one of the client's attempts first
//!    ([`super::throttle`]).
//! 2. **load the user**: the fresh row, from the notification-invalidated cache or the primary
//!    (the JWT's copy of the user, roles included, can be 15 minutes stale).
//! 3. **refuse bans**: an active ban refuses everything.
//! 4. **check the session**: the session behind the credential must be live (a session token's
//!    own; a JWT's `sid`, as `SESSION_CHECK` says).

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use time::OffsetDateTime;

use super::Auth;
use super::credential::{self, Presented};
use super::extract::{AuthUser, Credential};
use super::policy::SessionCheck;
use super::session_token::{Refused, looks_like_jwt, session_token};
use super::throttle::Ticket;
use super::verify;
use super::verify::Claims;
use crate::db::sessions::{self, SessionRef};
use crate::db::users::{self, User};
use crate::error::ApiError;

impl Auth {
    /// The caller of this request; 401 `missing_token` when it carries no credential.
    pub async fn authenticate(&self, parts: &Parts) -> Result<AuthUser, ApiError> {
        self.authenticate_optional(parts)
            .await?
            .ok_or(ApiError::MissingToken)
    }

    /// The caller of this request, or `None` when it carries no credential at all. A credential
    /// that is present but bad is an error, never an anonymous caller.
    pub async fn authenticate_optional(&self, parts: &Parts) -> Result<Option<AuthUser>, ApiError> {
        let client = self.client_ips().client_ip(parts);
        self.authenticate_request(Some(&parts.method), &parts.headers, client)
            .await
    }

    /// The same for a request described rather than received: forward auth passes the method
    /// of the original request (which decides the cookie rule; `None` when it is not known,
    /// which the rule treats as unsafe) and its headers.
    pub async fn authenticate_request(
        &self,
        method: Option<&Method>,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Option<AuthUser>, ApiError> {
        let Some(presented) = credential::presented(headers, self.policy())? else {
            return Ok(None);
        };
        if let Presented::Cookie(_) = presented {
            credential::check_cookie_origin(method, headers, self.policy())?;
        }
        let now = OffsetDateTime::now_utc();
        let proof = self.identify(&presented, client).await?;
        tracing::Span::current().record("user_id", proof.user_id());
        // A JWT seen for the first time usually names a user and a session that are not cached
        // either: read both in one round trip.
        let found = self.prefetch_user_and_session(&proof).await;
        // The account before the session: a banned user hears "banned" (Better-Auth's ban also
        // deletes the sessions, which would otherwise hide the reason behind "session revoked").
        let user = match found.user {
            Some(user) => user,
            None => self.load_user(proof.user_id()).await?,
        };
        refuse_ban(&user, now)?;
        let (session, credential) = self.check_session(proof, found.session, now).await?;
        let (session_id, impersonated_by) = session.map_or((None, None), |s| (Some(s.id), s.impersonated_by));
        Ok(Some(AuthUser {
            user,
            session_id,
            impersonated_by,
            credential,
        }))
    }

    /// Step 1: a verified JWT's subject, or the owner of a live session token. A token already
    /// verified costs a lookup and is never limited. Any other check asks the failure limiter
    /// first ([`super::throttle`]): an address out of attempts still gets the bounded checks
    /// (a known key's signature, a session token's HMAC), so a valid credential behind an
    /// address that junk came from is served; only dear work (a JWKS fetch, a database read
    /// nothing proved worth doing) is answered 429.
    async fn identify(&self, presented: &Presented<'_>, client: Option<IpAddr>) -> Result<Proof, ApiError> {
        // A JWT's cache key (its SHA-256) is computed once, for the lookup and, on a miss, for
        // keeping the verified claims.
        let jwt_cache_key = match presented {
            Presented::Bearer(token) if looks_like_jwt(token) => self.verifier().cache_key(token),
            _ => None,
        };
        if let Some(claims) = jwt_cache_key
            .as_ref()
            .and_then(|key| self.verifier().cached_by_key(key))
        {
            return Ok(Proof::Jwt(claims));
        }
        let throttled = |wait: std::time::Duration| {
            metrics::counter!("warden_auth_throttled_total").increment(1);
            ApiError::TooManyFailures {
                retry_after_secs: wait.as_secs().max(1),
            }
        };
        let mut ticket = self.failures().admit(client).map_err(throttled)?;
        match self
            .verify_credential(presented, jwt_cache_key, &mut ticket)
            .await
        {
            Ok(Ok(proof)) => Ok(proof),
            // Only a refused credential counts: not our own outage (503).
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

    /// The costly part of step 1: a signature check (the token cache was asked already, under
    /// `jwt_cache_key`), or a session lookup. Dear work (a JWKS fetch for an unknown key, a
    /// database read for a session token no signature vouches for) is done only when the
    /// `ticket` allows it, else the answer is [`DearWork`].
    async fn verify_credential(
        &self,
        presented: &Presented<'_>,
        jwt_cache_key: Option<[u8; 32]>,
        ticket: &mut Ticket<'_>,
    ) -> Result<Result<Proof, ApiError>, DearWork> {
        let policy = self.policy();
        let (credential, from_cookie) = match presented {
            Presented::Bearer(token) if looks_like_jwt(token) => {
                let unknown_key =
                    verify::parse(token).is_ok_and(|parsed| !self.verifier().jwks.has_key(&parsed.kid));
                if unknown_key && !ticket.allow_dear() {
                    return Err(DearWork);
                }
                return Ok(self
                    .verifier()
                    .verify_uncached(token, jwt_cache_key)
                    .await
                    .map(Proof::Jwt));
            }
            Presented::Bearer(token) => (
                session_token(
                    token,
                    policy.better_auth_secret.as_ref(),
                    policy.require_signed_session_tokens,
                ),
                false,
            ),
            // The cookie is always the signed form.
            Presented::Cookie(value) => (
                session_token(value, policy.better_auth_secret.as_ref(), true),
                true,
            ),
        };
        let refusal = |why: &str| match presented {
            Presented::Bearer(token) => not_a_session_token(token, why),
            Presented::Cookie(_) => ApiError::InvalidToken(format!("the session cookie: {why}")),
        };
        let credential = match credential {
            Ok(credential) => credential,
            Err(e) => return Ok(Err(refusal(&e.to_string()))),
        };
        // Unknown and signed-out tokens look the same here: neither is a live session.
        let unknown = || {
            refusal(
                "no live session has this session token: it was signed out, it expired, or it never existed",
            )
        };
        match self.unknown_sessions().refused(&credential.token) {
            Some(Refused::Unknown) => return Ok(Err(unknown())),
            Some(Refused::Expired) => return Ok(Err(ApiError::TokenExpired)),
            None => {}
        }
        if !credential.signed && !ticket.allow_dear() {
            return Err(DearWork);
        }
        Ok(
            match sessions::find_ref_by_token(self.db(), &credential.token).await {
                Ok(Some(session)) => {
                    // Step 4 refuses it; Better-Auth never extends an expired session.
                    if session.expires_at <= OffsetDateTime::now_utc() {
                        self.unknown_sessions()
                            .remember(&credential.token, Refused::Expired);
                    }
                    Ok(Proof::Session { session, from_cookie })
                }
                Ok(None) => {
                    self.unknown_sessions().insert(&credential.token);
                    Err(unknown())
                }
                Err(e) => Err(e.into()),
            },
        )
    }

    /// The user and the session a JWT names, when lookups or one query find them: both from
    /// the cache (the hot path: one lookup each, done here once), or, when either is missing
    /// (and the cache is trusted), both read in one query shared with other requests' (see
    /// `batch`) and cached. A new sign-in of a user the cache holds still needs its session
    /// read, and a user evicted before their session still needs their row: either way the
    /// batch reads them with everyone else's instead of in a query of their own.
    /// Steps 2 and 4 read what is still missing themselves. A session the read found gone, or
    /// another user's, is handed to step 4 as found, which refuses it without reading again
    /// (a signed-out client keeps sending its JWT until it expires); a session found gone is
    /// remembered for a minute (`gone`), so its next requests are refused without a read.
    async fn prefetch_user_and_session(&self, proof: &Proof) -> Prefetched {
        let Proof::Jwt(claims) = proof else {
            return Prefetched::default();
        };
        let user = self.rows().user(&claims.sub);
        let sid = match claims.sid.as_deref() {
            Some(sid) if self.policy().session_check != SessionCheck::Off && self.rows().trusted() => sid,
            _ => return Prefetched { user, session: None },
        };
        let session = self.rows().session(sid);
        if user.is_some() && session.is_some() {
            return Prefetched {
                user,
                session: Some(session),
            };
        }
        if session.is_none() && self.gone().session(sid) {
            return Prefetched {
                user,
                session: Some(None),
            };
        }
        let (user_ticket, session_ticket) = (self.rows().ticket(&claims.sub), self.rows().ticket(sid));
        match self.session_batcher().load(self.db(), sid).await {
            Ok(Some((session, fresh))) if fresh.id == claims.sub => {
                self.rows().put_user(Arc::clone(&fresh), user_ticket);
                self.rows().put_session(Arc::clone(&session), session_ticket);
                Prefetched {
                    user: Some(fresh),
                    session: Some(Some(session)),
                }
            }
            // Another user's session: step 4 refuses it.
            Ok(Some((session, _))) => Prefetched {
                user,
                session: Some(Some(session)),
            },
            Ok(None) => {
                self.gone().session_gone(sid);
                Prefetched {
                    user,
                    session: Some(None),
                }
            }
            // Nothing known: step 4 reads for itself (and reports the database's state).
            Err(()) => Prefetched {
                user,
                session: session.map(Some),
            },
        }
    }

    /// Step 2: the user row, from the cache when it can be trusted, else from the primary. A
    /// user found gone is remembered for a minute (`gone`).
    async fn load_user(&self, id: &str) -> Result<Arc<User>, ApiError> {
        if let Some(user) = self.rows().user(id) {
            return Ok(user);
        }
        if self.gone().user(id) {
            return Err(ApiError::UserNotFound);
        }
        let ticket = self.rows().ticket(id);
        let Some(user) = users::find_by_id(self.db(), id).await? else {
            self.gone().user_gone(id);
            return Err(ApiError::UserNotFound);
        };
        let user = Arc::new(user);
        self.rows().put_user(Arc::clone(&user), ticket);
        Ok(user)
    }

    /// Step 4: the session behind the credential must be live. Returns it when it was looked
    /// up (its id and whether it is an impersonation).
    async fn check_session(
        &self,
        proof: Proof,
        prefetched: Option<Option<Arc<SessionRef>>>,
        now: OffsetDateTime,
    ) -> Result<(Option<SessionFacts>, Credential), ApiError> {
        match proof {
            Proof::Session { session, from_cookie } => {
                if session.expires_at <= now {
                    return Err(ApiError::TokenExpired);
                }
                let credential = if from_cookie {
                    Credential::Cookie
                } else {
                    Credential::SessionToken
                };
                Ok((Some(SessionFacts::of(&session)), credential))
            }
            Proof::Jwt(claims) => {
                let session = match (self.policy().session_check, claims.sid.as_deref()) {
                    // Not looked up: only the id the token names is known.
                    (SessionCheck::Off, sid) => sid.map(|id| SessionFacts {
                        id: id.to_owned(),
                        impersonated_by: None,
                    }),
                    (SessionCheck::Required, None) => {
                        return Err(ApiError::InvalidToken(
                            "the token names no session (sid), which this server requires".into(),
                        ));
                    }
                    (SessionCheck::Auto, None) => None,
                    (_, Some(sid)) => {
                        let session = match prefetched {
                            Some(found) => found,
                            None if self.gone().session(sid) => None,
                            None => {
                                let found = self.session(sid).await?;
                                if found.is_none() {
                                    self.gone().session_gone(sid);
                                }
                                found
                            }
                        };
                        Some(SessionFacts::of(live_session_of(
                            session.as_deref(),
                            &claims.sub,
                            now,
                        )?))
                    }
                };
                Ok((session, Credential::Jwt(claims)))
            }
        }
    }

    /// A session by id: from the cache when it can be trusted, else from the primary.
    pub(crate) async fn session(&self, id: &str) -> Result<Option<Arc<SessionRef>>, ApiError> {
        if let Some(session) = self.rows().session(id) {
            return Ok(Some(session));
        }
        let ticket = self.rows().ticket(id);
        let Some(session) = sessions::find_ref_by_id(self.db(), id).await? else {
            return Ok(None);
        };
        let session = Arc::new(session);
        self.rows().put_session(Arc::clone(&session), ticket);
        Ok(Some(session))
    }
}

/// What the prefetch found, so steps 2 and 4 need not look it up again.
#[derive(Default)]
struct Prefetched {
    user: Option<Arc<User>>,
    /// `None`: not looked up; `Some(None)`: read, and there is no such session.
    session: Option<Option<Arc<SessionRef>>>,
}

/// What the caller learns of the session behind a credential.
struct SessionFacts {
    id: String,
    impersonated_by: Option<String>,
}

impl SessionFacts {
    fn of(session: &SessionRef) -> Self {
        Self {
            id: session.id.clone(),
            impersonated_by: session.impersonated_by.clone(),
        }
    }
}

/// Checking this credential would cost warden dear work (a JWKS fetch, a database read that
/// nothing proved worth doing), which an address out of attempts does not get.
struct DearWork;

/// What step 1 established.
enum Proof {
    Jwt(Arc<Claims>),
    Session { session: SessionRef, from_cookie: bool },
}

impl Proof {
    fn user_id(&self) -> &str {
        match self {
            Self::Jwt(claims) => &claims.sub,
            Self::Session { session, .. } => &session.user_id,
        }
    }
}

/// A bearer credential that is not a usable session token. One that starts like a JWT's
/// header (`eyJ`, base64url of `{"`) but is not three dot-separated parts was most likely a JWT
/// cut short (a truncated copy, a header that clipped it): say so rather than talk of
/// sessions. (A real session token that happens to start so was found before this is asked.)
fn not_a_session_token(credential: &str, why: &str) -> ApiError {
    if credential.starts_with("eyJ") {
        let parts = credential.bytes().filter(|b| *b == b'.').count() + 1;
        return ApiError::InvalidToken(format!(
            "this looks like a JWT cut short or altered: it has {parts} dot-separated part{}, a JWT has 3",
            if parts == 1 { "" } else { "s" }
        ));
    }
    ApiError::InvalidToken(format!(
        "{why} (the credential is not a JWT, which has 3 dot-separated parts, so it was read as a Better-Auth session token)"
    ))
}

/// Step 3: an active ban refuses everything. Asked again by every admin write, of the actor's
/// row re-read inside its transaction.
pub(crate) fn refuse_ban(user: &User, now: OffsetDateTime) -> Result<(), ApiError> {
    if user.ban_is_active(now) {
        return Err(ApiError::Banned {
            reason: user.ban_reason.clone(),
            expires: user.ban_expires,
        });
    }
    Ok(())
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

//! From a request's credential to an [`AuthUser`], in four named steps:
//!
//! 1. **identify**: whose credential is it? One step per kind of credential, in
//!    `request::identify`: a verified JWT's subject, the owner of a session token (bearer
//!    or cookie), or of an API key (only with `API_KEYS_AS_USERS`; its owner is loaded and
//!    checked for a ban there, before its use is claimed, so steps 2–4 are done). Costly checks ask the failure limiter first
//!    ([`crate::auth::request::throttle`]).
//! 2. **load the user**: the fresh row, from the notification-invalidated cache or the primary
//!    (the JWT's copy of the user, roles included, can be 15 minutes stale).
//! 3. **refuse bans**: an active ban refuses everything.
//! 4. **check the session**: the session behind the credential must be live (a session token's
//!    own; a JWT's `sid`, as `SESSION_CHECK` says).

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use time::OffsetDateTime;

use super::identify::{Asked, Proof};
use crate::auth::Auth;
use crate::auth::api_key::ApiKey;
use crate::auth::oauth::token::AccessToken;
use crate::auth::policy::{SessionCheck, Statements};
use crate::auth::request::credential::{self, Presented};
use crate::auth::request::extract::{AuthUser, Caller, Client, Credential};
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

    /// The OAuth client calling with an access token (JWT or opaque, Bearer or DPoP): checked
    /// as [`Auth::authenticate_caller`] checks it, the DPoP proof against this request's
    /// method and public URL (`PUBLIC_URL` and the request's path). Any other credential is 401
    /// `access_token_required`; none, 401 `missing_token`. Refusals carry this resource's
    /// challenges (`resource_metadata`, DPoP).
    pub async fn authenticate_client(&self, parts: &Parts) -> Result<Client, ApiError> {
        let used_dpop = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.len() > 5 && v.as_bytes()[..5].eq_ignore_ascii_case(b"dpop "));
        let client = self.client_ips().client_ip(parts);
        let target = self.target_of(parts);
        let caller = self
            .authenticate_as(
                Want::Client,
                Some(&parts.method),
                &parts.headers,
                client,
                Some(&target),
            )
            .await;
        let refused = match caller {
            Ok(Some(Caller::Client(client))) => return Ok(client),
            Ok(Some(Caller::User(_))) => access_token_required(),
            Ok(None) => ApiError::MissingToken,
            Err(err) => err,
        };
        Err(self.challenged(refused, used_dpop))
    }

    /// The caller of this request, or `None` when it carries no credential at all. A credential
    /// that is present but bad is an error, never an anonymous caller.
    /// On a route that names an OAuth scope ([`RouteScope`], as warden's own routes do), an
    /// access token whose user granted that scope stands in for the user.
    pub async fn authenticate_optional(&self, parts: &Parts) -> Result<Option<AuthUser>, ApiError> {
        let client = self.client_ips().client_ip(parts);
        // The route's scope and the request's URL are looked up only for an access token.
        let caller = self
            .authenticate_as(
                Want::Person(Some(parts)),
                Some(&parts.method),
                &parts.headers,
                client,
                None,
            )
            .await?;
        match caller {
            None => Ok(None),
            Some(Caller::User(user)) => Ok(Some(user)),
            Some(Caller::Client(_)) => Err(access_token_not_accepted()),
        }
    }

    /// The OAuth scope the request's route names: its [`RouteScope`], else what the app's
    /// [`RouteScopes`] table says of its method and path.
    fn route_scope(&self, parts: &Parts) -> Option<&'static str> {
        if let Some(scope) = parts.extensions.get::<RouteScope>() {
            return Some(scope.0);
        }
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.path(), |uri| uri.0.path());
        self.route_scopes().and_then(|of| of(&parts.method, path))
    }

    /// The method and public URL of a request received, which a DPoP proof must name: the path
    /// the client sent (before any nesting router took its prefix off) at `PUBLIC_URL`.
    fn target_of<'p>(&self, parts: &'p Parts) -> Target<'p> {
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.path(), |uri| uri.0.path());
        Target {
            method: parts.method.as_str(),
            url: format!("{}{path}", self.policy().oauth.public_url.trim_end_matches('/')),
        }
    }

    /// The same for a request described rather than received: forward auth passes the method
    /// of the original request (which decides the cookie rule; `None` when it is not known,
    /// which the rule treats as unsafe) and its headers. An OAuth access token is refused
    /// (401 `access_token_not_accepted`): its scopes say what it may do, and a route that takes
    /// a person's credential names none.
    pub async fn authenticate_request(
        &self,
        method: Option<&Method>,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Option<AuthUser>, ApiError> {
        match self
            .authenticate_as(Want::Person(None), method, headers, client, None)
            .await?
        {
            None => Ok(None),
            Some(Caller::User(user)) => Ok(Some(user)),
            Some(Caller::Client(_)) => Err(access_token_not_accepted()),
        }
    }

    /// The caller of a request, whoever they are: a person by their own credential, or an OAuth
    /// client by an access token. `target` is the request's method and public URL, which a DPoP
    /// proof must name (`None`: a DPoP-bound token is refused).
    pub async fn authenticate_caller(
        &self,
        method: Option<&Method>,
        headers: &HeaderMap,
        client: Option<IpAddr>,
        target: Option<&Target<'_>>,
    ) -> Result<Option<Caller>, ApiError> {
        self.authenticate_as(Want::Either, method, headers, client, target)
            .await
    }

    /// The caller, for a route that takes `want`: a credential of the other kind is refused
    /// as soon as its kind is known, before any work it would cost (an API key's use, an access
    /// token's client and session reads).
    pub(crate) async fn authenticate_as(
        &self,
        want: Want<'_>,
        method: Option<&Method>,
        headers: &HeaderMap,
        client: Option<IpAddr>,
        target: Option<&Target<'_>>,
    ) -> Result<Option<Caller>, ApiError> {
        let Some(mut presented) = credential::presented(headers, self.policy())? else {
            return Ok(None);
        };
        if matches!(want, Want::Client) && matches!(presented, Presented::ApiKey(_) | Presented::Cookie(_)) {
            return Err(access_token_required());
        }
        if let Presented::ApiKey(_) = presented
            && !self.policy().api_keys.as_users
        {
            // Keys do not stand in for users here. Better-Auth then ignores the key's header,
            // and so does warden when the browser's session cookie is there too.
            let policy = self.policy();
            let cookie = policy
                .cookie_auth
                .then(|| credential::session_cookie(headers, &policy.session_cookie, policy.secure_cookies))
                .flatten();
            presented = match cookie {
                Some(cookie) => Presented::Cookie(cookie),
                None => {
                    return Err(ApiError::ApiKeyNotAccepted(
                        "this route needs a user's credential, and API keys do not stand in for their owners here (API_KEYS_AS_USERS is off)"
                            .into(),
                    ));
                }
            };
        }
        if let Presented::Cookie(_) = presented {
            credential::check_cookie_origin(method, headers, self.policy())?;
        }
        let now = OffsetDateTime::now_utc();
        let proof = self.identify(&presented, client).await?;
        tracing::Span::current().record("user_id", proof.user_id());
        if let Proof::ApiKey { key, owner } = proof {
            return key_as_user(key, owner).map(|user| Some(Caller::User(user)));
        }
        if let Proof::Access(token) = proof {
            let request = match want {
                Want::Person(request) => Some(request.ok_or_else(access_token_not_accepted)?),
                Want::Client | Want::Either => None,
            };
            let route_scope = match request {
                Some(parts) => Some(self.route_scope(parts).ok_or_else(access_token_not_accepted)?),
                None => None,
            };
            // A request received (not described, as forward auth's): its own URL.
            let own_target = match (target, request) {
                (None, Some(parts)) => Some(self.target_of(parts)),
                _ => None,
            };
            let target = target.or(own_target.as_ref());
            if let Some(scope) = route_scope
                && !token.has_scope(scope)
            {
                return Err(ApiError::insufficient_scope(
                    vec![scope.to_owned()],
                    scope.to_owned(),
                ));
            }
            let (raw, used_dpop) = match presented {
                Presented::Jwt(raw) | Presented::SessionToken(raw) => (raw, false),
                Presented::Dpop(raw) => (raw, true),
                Presented::Cookie(_) | Presented::ApiKey(_) => {
                    return Err(ApiError::Internal(
                        "an access token from a cookie or key header".into(),
                    ));
                }
            };
            let client = self
                .client_of(token, raw, used_dpop, headers, target, now)
                .await?;
            if route_scope.is_none() {
                return Ok(Some(Caller::Client(client)));
            }
            // The route's scope, granted by a user: the token stands in for them.
            let Some(user) = client.user else {
                return Err(ApiError::AccessTokenNotAccepted(
                    "this route acts for a user, and this access token was issued to a client acting for itself"
                        .into(),
                ));
            };
            return Ok(Some(Caller::User(AuthUser {
                user,
                session_id: client.token.session_id().map(str::to_owned),
                impersonated_by: None,
                credential: Credential::AccessToken(client.token),
            })));
        }
        if let Presented::Dpop(_) = presented {
            return Err(ApiError::InvalidToken(
                "the DPoP scheme carries OAuth access tokens only, and this is a session credential".into(),
            ));
        }
        if matches!(want, Want::Client) {
            return Err(access_token_required());
        }
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
        Ok(Some(Caller::User(AuthUser {
            user,
            session_id,
            impersonated_by,
            credential,
        })))
    }

    /// An OAuth access token's caller, checked as Better-Auth's introspection checks it and
    /// then some: bound to the DPoP key of its proof when it is bound; its client exists and is
    /// not disabled; its user (if any) exists and is not banned; the session it names (if any)
    /// is live and the user's.
    async fn client_of(
        &self,
        token: AccessToken,
        raw: &str,
        used_dpop: bool,
        headers: &HeaderMap,
        target: Option<&Target<'_>>,
        now: OffsetDateTime,
    ) -> Result<Client, ApiError> {
        self.check_dpop(&token, raw, used_dpop, headers, target)?;
        self.check_oauth_client(token.client_id()).await?;
        let user = match token.user_id() {
            Some(id) => {
                let user = self.load_user(id).await?;
                refuse_ban(&user, now)?;
                Some(user)
            }
            None => None,
        };
        if let Some(sid) = token.session_id() {
            // A session found gone is remembered for a minute, as for session JWTs: a client
            // that keeps sending a signed-out user's token costs no read each time.
            let session = if self.gone().session(sid) {
                None
            } else {
                let found = self.session(token.user_id(), sid).await?;
                if found.is_none() {
                    self.gone().session_gone(sid);
                }
                found
            };
            let owner = user.as_ref().map_or("", |u| u.id.as_str());
            live_session_of(session.as_deref(), owner, now)?;
        }
        Ok(Client { token, user })
    }

    /// The DPoP rules (RFC 9449 §7): a bound token (`cnf.jkt`) only with the DPoP scheme and a
    /// proof of its key for this request, seen for the first time; an unbound one only as
    /// Bearer, and not at all when `DPOP_REQUIRED`.
    fn check_dpop(
        &self,
        token: &AccessToken,
        raw: &str,
        used_dpop: bool,
        headers: &HeaderMap,
        target: Option<&Target<'_>>,
    ) -> Result<(), ApiError> {
        use crate::auth::oauth::dpop::{self, DpopError, Expected};
        let refusal = |e: DpopError| {
            if e.error_code() == "invalid_token" {
                ApiError::InvalidToken(e.to_string())
            } else {
                ApiError::InvalidDpopProof(e.to_string())
            }
        };
        if token.bound_otherwise() {
            return Err(ApiError::InvalidToken(
                "the access token is bound to its client by a method warden does not check (its confirmation has no jkt)"
                    .into(),
            ));
        }
        let jkt = match (token.jkt(), used_dpop) {
            (Some(jkt), true) => jkt,
            (Some(_), false) => {
                return Err(ApiError::InvalidToken(
                    "the access token is bound to a DPoP key: send it as `Authorization: DPoP <token>` with a DPoP proof"
                        .into(),
                ));
            }
            (None, true) => {
                return Err(ApiError::InvalidToken(
                    "the access token is not bound to a DPoP key: send it as `Authorization: Bearer <token>`"
                        .into(),
                ));
            }
            (None, false) if self.policy().oauth.dpop_required => {
                return Err(ApiError::InvalidToken(
                    "this resource takes DPoP-bound access tokens only".into(),
                ));
            }
            (None, false) => return Ok(()),
        };
        let mut proofs = headers.get_all("dpop").iter();
        let (Some(proof), None) = (proofs.next(), proofs.next()) else {
            return Err(ApiError::InvalidDpopProof(
                "send exactly one DPoP header with the DPoP-bound token".into(),
            ));
        };
        let proof = proof
            .to_str()
            .map_err(|_| ApiError::InvalidDpopProof("the DPoP header is not valid text".into()))?;
        let Some(target) = target else {
            return Err(ApiError::InvalidDpopProof(
                "this route cannot check a DPoP proof: the request's public URL is not known".into(),
            ));
        };
        let now = crate::auth::jwt::verify::now_secs();
        let expected = Expected {
            method: target.method,
            url: &target.url,
            access_token: Some(raw),
            jkt: Some(jkt),
        };
        let checked = dpop::check_proof(proof, &expected, self.dpop_settings(), now).map_err(refusal)?;
        self.dpop_replays().record(&checked, now).map_err(refusal)
    }

    /// The OAuth client must exist and not be disabled (the plugin's introspection says
    /// `active: false` otherwise): from the cache, else the database.
    async fn check_oauth_client(&self, client_id: &str) -> Result<(), ApiError> {
        let enabled = match self.rows().oauth_client(client_id) {
            Some(state) => state.enabled,
            None => {
                let ticket = self.rows().ticket(client_id);
                match crate::db::oauth_tokens::client_enabled(self.db(), client_id).await? {
                    Some(enabled) => {
                        self.rows().put_oauth_client(
                            client_id,
                            Arc::new(crate::cache::ClientState { enabled }),
                            ticket,
                        );
                        enabled
                    }
                    // Not cached: no trigger tells of a client's creation.
                    None => false,
                }
            }
        };
        if !enabled {
            return Err(ApiError::InvalidToken(
                "the OAuth client this token was issued to is disabled or gone".into(),
            ));
        }
        Ok(())
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
    /// remembered for a minute (`session::refused::Gone`), so its next requests are refused without a read.
    async fn prefetch_user_and_session(&self, proof: &Proof) -> Prefetched {
        let Proof::Jwt(claims) = proof else {
            return Prefetched::default();
        };
        let user = self.rows().user(&claims.sub);
        let sid = match claims.sid.as_deref() {
            Some(sid)
                if self.policy().session_check != SessionCheck::Off
                    && self.rows().trusted()
                    && self.session_store().in_table() =>
            {
                sid
            }
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
        match self.session_batcher().load(sid).await {
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

    /// Step 2: the user row, from the cache when it can be trusted, else from the primary. While
    /// the cache is trusted (its listener up, so the database answers), a cold user is read in
    /// one query with other requests' (`auth::batch`; a stock Better-Auth JWT names no session,
    /// so its user is all there is to read); otherwise, or when that was not possible, alone,
    /// which reports the database's state (503) as every query does. (Batching while the cache
    /// is untrusted would put every request, hot ones too, in the batch's queue, and in an
    /// outage each would wait for a failed batch before its own read failed.) A user found
    /// gone is remembered for a minute (`session::refused::Gone`).
    pub(crate) async fn load_user(&self, id: &str) -> Result<Arc<User>, ApiError> {
        if let Some(user) = self.rows().user(id) {
            return Ok(user);
        }
        if self.gone().user(id) {
            return Err(ApiError::UserNotFound);
        }
        let ticket = self.rows().ticket(id);
        let batched = if self.rows().trusted() {
            self.user_batcher().load(id).await
        } else {
            Err(())
        };
        let found = match batched {
            Ok(found) => found,
            Err(()) => users::find_by_id(self.db(), id).await?.map(Arc::new),
        };
        let Some(user) = found else {
            self.gone().user_gone(id);
            return Err(ApiError::UserNotFound);
        };
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
            Proof::ApiKey { key, .. } => Ok((None, Credential::ApiKey(key))),
            Proof::Access(_) => Err(ApiError::Internal(
                "an access token reached the session check".into(),
            )),
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
                                let found = self.session(Some(&claims.sub), sid).await?;
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

    /// A session by id: from the cache when it can be trusted, else from the primary; or,
    /// with sessions in Redis, from the session store (its own cache, kept by client
    /// tracking). `owner`: whose session the credential says it is (how Redis finds it).
    pub(crate) async fn session(
        &self,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<Arc<SessionRef>>, ApiError> {
        let store = self.session_store();
        if !store.in_table() {
            return Ok(store.by_id(self.db(), owner, id).await?.map(Arc::new));
        }
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

/// A user's API key standing in for its owner (`API_KEYS_AS_USERS`): the owner was loaded and
/// found not banned before the use was claimed (steps 2 and 3); there is no session. An
/// organization's key has no user to stand in for.
fn key_as_user(key: Arc<ApiKey>, owner: Option<Arc<User>>) -> Result<AuthUser, ApiError> {
    let Some(user) = owner else {
        return Err(ApiError::ApiKeyNotAccepted(
            "this route needs a user, and this API key belongs to an organization".into(),
        ));
    };
    Ok(AuthUser {
        user,
        session_id: None,
        impersonated_by: None,
        credential: Credential::ApiKey(key),
    })
}

/// The OAuth scope a route names (`route_layer(Extension(RouteScope("notes:read")))`): there
/// [`AuthUser`] (and the extractors built on it) also takes an access token of Better-Auth's
/// OAuth provider whose user granted that scope, standing in for the user
/// (`Credential::AccessToken`). warden's own routes each name one (README, "OAuth clients and
/// MCP servers"). Without it, a route takes people's own credentials only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteScope(pub &'static str);

/// A function naming the OAuth scope of a route by its method and path, for an app that names
/// them in one table rather than with a [`RouteScope`] on each route (warden's own routes);
/// `None`: the route takes people's own credentials only.
pub type RouteScopes = fn(&Method, &str) -> Option<&'static str>;

/// Which callers a route takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want<'a> {
    /// A person, by their own credential (`AuthUser`, warden's `/users` and `/admin`); on a
    /// request received (`Some`) whose route names a scope, also by an access token their user
    /// granted it.
    Person(Option<&'a Parts>),
    /// An OAuth client, by an access token (`Client`, `RequireScope`).
    Client,
    /// Either (forward auth, which answers for both).
    Either,
}

/// 403 `access_token_not_accepted`: an access token where a person's own credential is needed.
pub(crate) fn access_token_not_accepted() -> ApiError {
    ApiError::AccessTokenNotAccepted(
        "this route takes a person's own credential (a session, a session JWT or an API key); an OAuth access token is accepted only where a route names the scopes it needs"
            .into(),
    )
}

/// 401 `access_token_required`: a person's credential where an OAuth client's is needed.
pub(crate) fn access_token_required() -> ApiError {
    ApiError::AccessTokenRequired(
        "this route is for OAuth clients: send an access token from Better-Auth's OAuth provider".into(),
    )
}

/// The request a DPoP proof must name: its method, and its URL as clients see it (the public
/// origin from configuration, never from headers a client controls, and the request's path).
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The method, as sent.
    pub method: &'a str,
    /// The public URL, without query.
    pub url: String,
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

impl Auth {
    /// The request's API key, verified as Better-Auth's plugin verifies it (see
    /// [`crate::auth::api_key`]), with `permissions` asked of the key's own when given; one use
    /// is claimed. 401 `missing_api_key` when the request carries none.
    pub async fn verify_api_key(
        &self,
        parts: &Parts,
        permissions: Option<&Statements>,
    ) -> Result<ApiKey, ApiError> {
        let client = self.client_ips().client_ip(parts);
        let asked = Asked {
            permissions,
            owner: None,
        };
        self.verify_api_key_with_owner(&parts.headers, client, asked)
            .await
            .map(|(key, _)| key)
    }

    /// The same for a request described rather than received (forward auth): the key in
    /// `headers`, from `client`, with what the request `asked` of it (checked before a use is
    /// counted); with the fresh owner row when a user owns the key.
    pub(crate) async fn verify_api_key_with_owner(
        &self,
        headers: &HeaderMap,
        client: Option<IpAddr>,
        asked: Asked<'_>,
    ) -> Result<(ApiKey, Option<Arc<User>>), ApiError> {
        let Some(key) = credential::api_key(headers, &self.policy().api_keys)? else {
            return Err(ApiError::MissingApiKey);
        };
        match self.identify_key(key, asked, client).await? {
            Proof::ApiKey { key, owner } => Ok((Arc::unwrap_or_clone(key), owner)),
            _ => Err(ApiError::Internal("an API key proved something else".into())),
        }
    }
}

//! The extractors: the only way a handler learns who is calling.
//!
//! A handler that takes [`AuthUser`] cannot run for an unauthenticated caller; one that takes
//! [`Admin`] or [`RequireRole`] cannot run for a caller without the role; [`MaybeAuthUser`]
//! lets anonymous callers in but still refuses a bad credential (never silently anonymous).
//! Every decision is made on fresh database state (see [`crate::auth::request::authenticate`]).
//!
//! They work with any state `S` from which an [`Auth`] can be had (`Auth: FromRef<S>`, axum's
//! pattern for library authors), so an app keeps its own state type:
//!
//! ```
//! # use axum::extract::FromRef;
//! #[derive(Clone)]
//! struct App { auth: warden::Auth }
//! impl FromRef<App> for warden::Auth {
//!     fn from_ref(app: &App) -> Self { app.auth.clone() }
//! }
//! async fn me(user: warden::AuthUser) -> String { user.user.email.clone() }
//! let _routes: axum::Router<App> = axum::Router::new().route("/me", axum::routing::get(me));
//! ```

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::auth::Auth;
use crate::auth::api_key::ApiKey;
use crate::auth::api_key::verdict;
use crate::auth::jwt::verify::Claims;
use crate::db::users::User;
use crate::error::ApiError;

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A Better-Auth JWT (`Authorization: Bearer`), with its verified claims.
    Jwt(Arc<Claims>),
    /// A Better-Auth session token as a bearer credential (the bearer plugin's form).
    SessionToken,
    /// Better-Auth's session cookie (`COOKIE_AUTH=true`).
    Cookie,
    /// A user's API key standing in for its owner (`API_KEYS_AS_USERS=true`), with what the
    /// key is.
    ApiKey(Arc<ApiKey>),
    /// An OAuth access token its user granted the route's scope ([`crate::RouteScope`]),
    /// standing in for the user.
    AccessToken(crate::auth::oauth::token::AccessToken),
}

impl Credential {
    /// The kind's name, as `/auth/verify` answers it in `X-Auth-Credential`: `jwt`,
    /// `session-token`, `cookie`, `api-key` or `oauth-access-token`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Jwt(_) => "jwt",
            Self::SessionToken => "session-token",
            Self::Cookie => "cookie",
            Self::ApiKey(_) => "api-key",
            Self::AccessToken(_) => "oauth-access-token",
        }
    }
}

/// An OAuth client calling with an access token of Better-Auth's OAuth provider (a JWT,
/// `typ: at+jwt`, or an opaque token; as Bearer or DPoP-bound): the client, the user who granted
/// the token (none for `client_credentials`), its scopes. Checked on fresh state: a revoked
/// token, a disabled client, a banned user or an ended session is refused on the next request.
#[derive(Debug, Clone)]
pub struct Client {
    /// The token, verified.
    pub token: crate::auth::oauth::token::AccessToken,
    /// The user who granted it, fresh and not banned; `None` when the client acts for itself.
    pub user: Option<Arc<User>>,
}

impl Client {
    /// The OAuth client's id.
    pub fn client_id(&self) -> &str {
        self.token.client_id()
    }

    /// Whether the token holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.token.has_scope(scope)
    }
}

impl<S> FromRequestParts<S> for Client
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(client) = parts.extensions.get::<Client>() {
            return Ok(client.clone());
        }
        let client = Auth::from_ref(state).authenticate_client(parts).await?;
        // A DPoP proof is taken once: a second extractor of this request takes the client.
        parts.extensions.insert(client.clone());
        Ok(client)
    }
}

/// An OAuth client whose access token holds every scope of `S` (403 `insufficient_scope`
/// naming each one missing, with RFC 6750's challenge):
///
/// ```
/// struct NotesRead;
/// impl warden::Scopes for NotesRead {
///     const SCOPES: &'static [&'static str] = &["notes:read"];
/// }
/// async fn notes(caller: warden::RequireScope<NotesRead>) -> String {
///     format!("{} for {:?}", caller.client.client_id(), caller.client.user.as_ref().map(|u| &u.id))
/// }
/// # #[derive(Clone)] struct App { auth: warden::Auth }
/// # impl axum::extract::FromRef<App> for warden::Auth { fn from_ref(a: &App) -> Self { a.auth.clone() } }
/// let _routes: axum::Router<App> = axum::Router::new().route("/notes", axum::routing::get(notes));
/// ```
#[derive(Debug, Clone)]
pub struct RequireScope<S> {
    /// The client, whose token holds the scopes.
    pub client: Client,
    scopes: PhantomData<S>,
}

impl<St, S> FromRequestParts<St> for RequireScope<S>
where
    Auth: FromRef<St>,
    St: Send + Sync,
    S: crate::auth::oauth::scope::Scopes + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let client = Client::from_request_parts(parts, state).await?;
        Auth::from_ref(state).require_scopes(&client, S::SCOPES)?;
        Ok(Self {
            client,
            scopes: PhantomData,
        })
    }
}

/// Who called: a person, by their own credential, or an OAuth client, by an access token.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A person: a session, a session JWT, a cookie, or a user's API key.
    User(AuthUser),
    /// An OAuth client.
    Client(Client),
}

/// An authenticated caller whose account exists and is not banned.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The fresh user row (from the notification-invalidated cache or the database).
    pub user: Arc<User>,
    /// The Better-Auth session behind the credential, when known (`sid`, or the session token's).
    pub session_id: Option<String>,
    /// The admin acting as this user, when the session is an impersonation (Better-Auth's
    /// admin plugin sets `session.impersonated_by`). Known only when the session is: a JWT
    /// without `sid` (or with `SESSION_CHECK=off`) says nothing about it.
    pub impersonated_by: Option<String>,
    /// How the caller proved who they are.
    pub credential: Credential,
}

impl<S> FromRequestParts<S> for AuthUser
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        caller_of(&Auth::from_ref(state), parts).await
    }
}

/// A caller who may or may not be signed in: `MaybeAuthUser(None)` without any credential.
/// A credential that is present but bad (expired, forged, banned user) is still refused.
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<AuthUser>() {
            return Ok(Self(Some(caller.clone())));
        }
        let caller = Auth::from_ref(state).authenticate_optional(parts).await?;
        if let Some(caller) = &caller {
            remember(parts, caller);
        }
        Ok(Self(caller))
    }
}

/// An authenticated admin (Better-Auth's rules: an admin role, or an id in `ADMIN_USER_IDS`),
/// judged on the fresh user row.
#[derive(Debug, Clone)]
pub struct Admin(pub AuthUser);

impl<S> FromRequestParts<S> for Admin
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        let caller = caller_of(&auth, parts).await?;
        if !auth.is_admin(&caller.user) {
            return Err(ApiError::Forbidden("this route is for admins".into()));
        }
        Ok(Self(caller))
    }
}

/// A role a route can require: `RequireRole<Editor>` where `Editor: RoleName`.
pub trait RoleName {
    /// The role as it appears in the user's `role` column (one of the comma-joined names).
    const ROLE: &'static str;
}

/// An authenticated caller holding the role `R::ROLE` (from the fresh user row).
#[derive(Debug, Clone)]
pub struct RequireRole<R> {
    /// The caller, who holds the role.
    pub caller: AuthUser,
    role: PhantomData<R>,
}

impl<S, R> FromRequestParts<S> for RequireRole<R>
where
    Auth: FromRef<S>,
    S: Send + Sync,
    R: RoleName + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = caller_of(&Auth::from_ref(state), parts).await?;
        if !caller.user.holds_role(R::ROLE) {
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

/// A permission a route can require: admin-plugin statements, e.g.
///
/// ```
/// struct BanUsers;
/// impl warden::Permission for BanUsers {
///     const STATEMENTS: &'static [(&'static str, &'static [&'static str])] = &[("user", &["ban"])];
/// }
/// async fn ban(caller: warden::RequirePermission<BanUsers>) -> String { caller.caller.user.id.clone() }
/// ```
pub trait Permission {
    /// What is asked: `(resource, actions)` pairs, all required (Better-Auth's `AND`).
    const STATEMENTS: &'static [(&'static str, &'static [&'static str])];

    /// The statements as a request for `crate::auth::policy::access`.
    fn request() -> crate::auth::Statements {
        Self::STATEMENTS
            .iter()
            .map(|(resource, actions)| {
                (
                    (*resource).to_owned(),
                    actions.iter().map(|a| (*a).to_owned()).collect(),
                )
            })
            .collect()
    }

    /// `user:ban, session:revoke`: how a refusal names what was missing.
    fn describe() -> String {
        Self::STATEMENTS
            .iter()
            .flat_map(|(resource, actions)| actions.iter().map(move |a| format!("{resource}:{a}")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An authenticated caller whose roles grant `P` (Better-Auth's `userHasPermission`, on the
/// fresh user row; ids in `ADMIN_USER_IDS` pass). Refused with 403 `forbidden` naming the
/// permission.
#[derive(Debug, Clone)]
pub struct RequirePermission<P> {
    /// The caller.
    pub caller: AuthUser,
    permission: PhantomData<P>,
}

impl<P> RequirePermission<P> {
    /// The caller, for handlers that destructure less.
    pub fn into_caller(self) -> AuthUser {
        self.caller
    }
}

impl<S, P> FromRequestParts<S> for RequirePermission<P>
where
    Auth: FromRef<S>,
    S: Send + Sync,
    P: Permission + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        let caller = caller_of(&auth, parts).await?;
        require_permission::<P>(&auth, &caller.user)?;
        Ok(Self {
            caller,
            permission: PhantomData,
        })
    }
}

/// The request's caller. Authenticated by an API key or an access token, it is remembered in
/// the request: a second extractor of the same handler takes it instead of checking again, so
/// the key's use is counted once and a DPoP proof taken once. (Any other credential is checked
/// again, from the caches: that costs less than keeping it.)
pub(crate) async fn caller_of(auth: &Auth, parts: &mut Parts) -> Result<AuthUser, ApiError> {
    if let Some(caller) = parts.extensions.get::<AuthUser>() {
        return Ok(caller.clone());
    }
    let caller = auth.authenticate(parts).await?;
    remember(parts, &caller);
    Ok(caller)
}

/// Keeps a caller authenticated by an API key (its use is counted once) or an access token (a
/// DPoP proof is taken once) in the request for the next extractor.
fn remember(parts: &mut Parts, caller: &AuthUser) {
    if let Credential::ApiKey(_) | Credential::AccessToken(_) = &caller.credential {
        parts.extensions.insert(caller.clone());
    }
}

/// The API key this request was verified with already, by `ApiKey`,
/// `RequireApiKeyPermission` or a user's key standing in for its owner.
fn verified_key(parts: &Parts) -> Option<ApiKey> {
    if let Some(key) = parts.extensions.get::<ApiKey>() {
        return Some(key.clone());
    }
    match &parts.extensions.get::<AuthUser>()?.credential {
        Credential::ApiKey(key) => Some(ApiKey::clone(key)),
        _ => None,
    }
}

/// [`RequirePermission`]'s check: 403 `forbidden` naming `P` unless `user`'s roles grant it.
/// Asked again by every admin write, of the actor's row re-read inside its transaction.
pub(crate) fn require_permission<P: Permission>(auth: &Auth, user: &User) -> Result<(), ApiError> {
    if !auth.has_permission(user, &P::request(), crate::auth::Connector::And) {
        return Err(ApiError::Forbidden(format!(
            "this needs the permission {}",
            P::describe()
        )));
    }
    Ok(())
}

/// A verified API key as the caller (Better-Auth's api-key plugin), read from `x-api-key` (or
/// `API_KEY_HEADERS`) whatever else the request carries: decided as the plugin's
/// `verifyApiKey` decides it, one use claimed, its owner fresh (a banned or deleted user's
/// keys, or a deleted organization's, are refused). 401 `missing_api_key` without one.
impl<S> FromRequestParts<S> for ApiKey
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(key) = verified_key(parts) {
            return Ok(key);
        }
        let key = Auth::from_ref(state).verify_api_key(parts, None).await?;
        parts.extensions.insert(key.clone());
        Ok(key)
    }
}

/// An API key whose own `permissions` grant `P` (every action asked, as the plugin's
/// `verifyApiKey({ permissions })`), checked before its use is claimed: a key without them is
/// refused with 403 `forbidden` naming what is missing, and its quota is not touched.
///
/// ```
/// struct ReadFiles;
/// impl warden::Permission for ReadFiles {
///     const STATEMENTS: &'static [(&'static str, &'static [&'static str])] = &[("files", &["read"])];
/// }
/// // A key granted `{"files": ["read"]}`: its id and whose it is.
/// async fn files(key: warden::RequireApiKeyPermission<ReadFiles>) -> String {
///     format!("{} of {} {}", key.key.id, key.key.owner.kind(), key.key.owner.id())
/// }
/// // Any valid key.
/// async fn whoami(key: warden::ApiKey) -> String {
///     key.name.unwrap_or_default()
/// }
/// # #[derive(Clone)] struct App { auth: warden::Auth }
/// # impl axum::extract::FromRef<App> for warden::Auth { fn from_ref(a: &App) -> Self { a.auth.clone() } }
/// let _routes: axum::Router<App> = axum::Router::new()
///     .route("/files", axum::routing::get(files))
///     .route("/whoami", axum::routing::get(whoami));
/// ```
#[derive(Debug, Clone)]
pub struct RequireApiKeyPermission<P> {
    /// The key.
    pub key: ApiKey,
    permission: PhantomData<P>,
}

impl<S, P> FromRequestParts<S> for RequireApiKeyPermission<P>
where
    Auth: FromRef<S>,
    S: Send + Sync,
    P: Permission + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let asked = P::request();
        let key = match verified_key(parts) {
            // Verified (and counted) by another extractor of this request: only the
            // permissions are left to ask.
            Some(key) => {
                if !verdict::grants(key.permissions.as_ref(), &asked) {
                    return Err(ApiError::Forbidden(format!(
                        "this API key lacks the permission {}",
                        P::describe()
                    )));
                }
                key
            }
            None => {
                let key = Auth::from_ref(state).verify_api_key(parts, Some(&asked)).await?;
                parts.extensions.insert(key.clone());
                key
            }
        };
        Ok(Self {
            key,
            permission: PhantomData,
        })
    }
}

//! Authentication and authorisation: who is calling, and whether they may.
//!
//! [`Auth`] is the one handle everything here hangs off: the JWT verifier and its JWKS cache,
//! the policy, the user/session cache and its listener, the database pool, the per-client
//! limits. The extractors need only an `Auth` reachable from the app's state
//! (`Auth: FromRef<S>`), so any Axum app can use them; warden's own server is one such app.
//!
//! Layout, by part (each folder's module doc says more):
//! - [`jwt`]: the JWT machinery: keys, the JWKS cache, the signature and claims check, the
//!   verified-token cache, and [`Verifier`], the protocol over them.
//! - [`session`]: the session-token path: the token's form and HMAC, what was refused and is
//!   remembered.
//! - [`api_key`]: keys of Better-Auth's api-key plugin: their settings, their stored form, and
//!   the plugin's checks in its order (the reads and the claim are on the request side).
//! - `batch`: the rows of credentials seen for the first time (a JWT's session and user, or
//!   its user alone), read for several requests in one query.
//! - [`policy`]: who may do what: [`AuthPolicy`], access control by role, organizations.
//! - [`request`]: the request side: where the credential is and its kind, the client address,
//!   the failure limiter, step 1 per kind of credential (`request::identify`), the
//!   authentication steps and the extractors. A new kind of credential plugs in there.
//! - `builder`: [`AuthBuilder`].
//!
//! `impl Auth` is split by concern: the handle and its parts here, building in `builder`,
//! authenticating in [`request::authenticate`] (and `request::identify`), memberships in
//! [`policy::organization`], and building from the environment in `crate::config`.

pub mod api_key;
mod batch;
mod builder;
pub mod jwt;
pub mod oauth;
pub mod policy;
pub mod request;
pub mod session;

use std::sync::Arc;

use sqlx::PgPool;

pub use api_key::{ApiKey, ApiKeyOwner, ApiKeySettings, ApiKeyStorage};
pub use builder::{AuthBuilder, DEFAULT_BETTER_AUTH_URL, DEFAULT_LEEWAY_SECS};
pub use jwt::jwks::{DEFAULT_JWKS_GRACE_SECS, DEFAULT_JWKS_MAX_WAITERS, JwksSettings};
pub use jwt::{DEFAULT_TOKEN_CACHE_BYTES, Verifier};
pub use oauth::OAuthSettings;
pub use oauth::metadata::ResourceMetadata;
pub use oauth::scope::Scopes;
pub use oauth::token::AccessToken;
pub use policy::{AccessControl, AuthPolicy, Connector, SessionCheck, Statements};
pub use request::authenticate::{RouteScope, RouteScopes, Target};
pub use request::{
    Admin, AuthUser, Caller, Client, Credential, MaybeAuthUser, OrgMember, OrgPermission, Permission,
    RequireApiKeyPermission, RequireOrgPermission, RequirePermission, RequireRole, RequireScope, RoleName,
};
pub use session::store::{RedisStorage, SessionStorage};

use crate::cache::RowCache;
use crate::db::users::User;
use batch::{Batcher, SessionsWithUsers, Users};
use request::client_ip::TrustedProxies;
use request::throttle::FailureLimiter;
use session::refused::{Gone, UnknownTokens};

/// What warden's extractors need, in one cheap handle (one `Arc`): the JWT verifier with its
/// JWKS cache, the policy, the user/session cache, the database pool and the per-client limits.
///
/// Build it with [`Auth::from_env`] (the same variables as the `warden` server) or
/// [`Auth::builder`]. Building starts its background tasks (the JWKS refresh, the cache's
/// NOTIFY listener); they stop when the last clone is dropped. It installs no globals.
#[derive(Clone, Debug)]
pub struct Auth(Arc<Inner>);

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) db: PgPool,
    pub(super) verifier: Verifier,
    pub(super) policy: AuthPolicy,
    pub(super) rows: Arc<RowCache>,
    pub(super) client_ips: TrustedProxies,
    pub(super) failures: FailureLimiter,
    pub(super) unknown_sessions: UnknownTokens,
    pub(super) known_sessions: session::known::KnownTokens,
    pub(super) gone: Gone,
    pub(super) api_key_stamps: Arc<api_key::stamps::Stamps>,
    pub(super) known_api_keys: api_key::known::KnownKeys,
    pub(super) dpop_replays: oauth::dpop::ReplayCache,
    pub(super) dpop: oauth::dpop::DpopSettings,
    pub(super) route_scopes: Option<request::authenticate::RouteScopes>,
    pub(super) challenge: Arc<oauth::challenge::ChallengeParams>,
    pub(super) sessions: Batcher<SessionsWithUsers>,
    pub(super) session_store: session::store::SessionStore,
    pub(super) users: Batcher<Users>,
    pub(super) tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Auth {
    /// A builder for an `Auth` configured in code; `db` is the database Better-Auth writes.
    pub fn builder(db: PgPool) -> AuthBuilder {
        AuthBuilder::new(db)
    }

    /// The primary database pool (every authorisation decision reads it).
    pub fn db(&self) -> &PgPool {
        &self.0.db
    }

    /// Who is an admin, which roles can be assigned, and how credentials are read.
    pub fn policy(&self) -> &AuthPolicy {
        &self.0.policy
    }

    /// The JWT verifier, with its JWKS cache (key count and fetch health, for readiness).
    pub(crate) fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }

    /// The user/session cache (disabled unless `USER_CACHE` and the listener are up).
    pub(crate) fn rows(&self) -> &Arc<RowCache> {
        &self.0.rows
    }

    /// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`): how a request's
    /// client address is found.
    pub(crate) fn client_ips(&self) -> &TrustedProxies {
        &self.0.client_ips
    }

    pub(crate) fn failures(&self) -> &FailureLimiter {
        &self.0.failures
    }

    pub(crate) fn session_batcher(&self) -> &Batcher<SessionsWithUsers> {
        &self.0.sessions
    }

    /// Where sessions are found and ended (the table, or Redis: `SESSION_STORE`).
    pub(crate) fn session_store(&self) -> &session::store::SessionStore {
        &self.0.session_store
    }

    /// Whether sessions are kept in Redis and it is connected: `None` when they are in the
    /// database (readiness).
    pub fn session_store_connected(&self) -> Option<bool> {
        self.0
            .session_store
            .redis()
            .map(crate::redis::sessions::RedisSessions::connected)
    }

    pub(crate) fn user_batcher(&self) -> &Batcher<Users> {
        &self.0.users
    }

    pub(crate) fn unknown_sessions(&self) -> &UnknownTokens {
        &self.0.unknown_sessions
    }

    pub(crate) fn known_sessions(&self) -> &session::known::KnownTokens {
        &self.0.known_sessions
    }

    pub(crate) fn gone(&self) -> &Gone {
        &self.0.gone
    }

    pub(crate) fn api_key_stamps(&self) -> &api_key::stamps::Stamps {
        &self.0.api_key_stamps
    }

    pub(crate) fn known_api_keys(&self) -> &api_key::known::KnownKeys {
        &self.0.known_api_keys
    }

    pub(crate) fn dpop_replays(&self) -> &oauth::dpop::ReplayCache {
        &self.0.dpop_replays
    }

    pub(crate) fn dpop_settings(&self) -> &oauth::dpop::DpopSettings {
        &self.0.dpop
    }

    pub(crate) fn route_scopes(&self) -> Option<request::authenticate::RouteScopes> {
        self.0.route_scopes
    }

    /// This resource's challenge parameters, for a refusal's `WWW-Authenticate`; `None`
    /// unless access tokens are accepted.
    pub(crate) fn challenge_context(&self, used_dpop: bool) -> Option<oauth::challenge::Context> {
        self.0.policy.oauth.enabled().then(|| oauth::challenge::Context {
            params: Arc::clone(&self.0.challenge),
            used_dpop,
        })
    }

    /// This resource's protected-resource metadata (RFC 9728), to serve at
    /// [`oauth::METADATA_PATH`] (with the resource's path appended); `None` unless access
    /// tokens are accepted (`RESOURCE_URL`).
    pub fn resource_metadata(&self) -> Option<oauth::metadata::ResourceMetadata> {
        oauth::metadata::ResourceMetadata::of(&self.0.policy.oauth)
    }

    /// 403 `insufficient_scope` (RFC 6750, naming every scope of `scopes` the token lacks, with
    /// this resource's challenge) unless `client`'s token holds them all: for scopes decided
    /// at run time (an MCP tool's), where [`RequireScope`] takes them from a type.
    pub fn require_scopes(&self, client: &Client, scopes: &[&str]) -> Result<(), crate::error::ApiError> {
        let missing: Vec<String> = oauth::scope::missing(&client.token.scope(), scopes.iter().copied())
            .into_iter()
            .map(str::to_owned)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(self.challenged(
            crate::error::ApiError::insufficient_scope(missing, scopes.join(" ")),
            client.token.jkt().is_some(),
        ))
    }

    /// `err`, its challenges naming this OAuth resource when access tokens are accepted.
    pub(crate) fn challenged(&self, err: crate::error::ApiError, used_dpop: bool) -> crate::error::ApiError {
        match self.challenge_context(used_dpop) {
            Some(context) => err.challenged(context),
            None => err,
        }
    }

    /// The client's address for this request: the socket's peer (from `ConnectInfo`), or what
    /// a proxy in `TRUSTED_PROXIES` reports; `None` when the app serves without `ConnectInfo`.
    /// What [`Auth::authenticate_request`] takes as `client` (the failure limiter counts by it).
    pub fn client_ip(&self, parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
        self.0.client_ips.client_ip(parts)
    }

    /// How many of Better-Auth's signing keys are loaded: none means no JWT can be verified
    /// yet (an app's readiness check, as warden's `/readyz`).
    pub fn jwks_keys(&self) -> usize {
        self.0.verifier.jwks.keys().len()
    }

    /// Whether the last fetch of Better-Auth's JWKS succeeded.
    pub fn jwks_fetch_ok(&self) -> bool {
        self.0.verifier.jwks.last_fetch_ok()
    }

    /// Whether `user` is an admin by Better-Auth's rule (`adminRoles`, `adminUserIds`).
    pub fn is_admin(&self, user: &User) -> bool {
        self.0.policy.is_admin(user)
    }

    /// Whether `user` holds `permissions` (admin-plugin statements), as Better-Auth's
    /// `userHasPermission` decides.
    pub fn has_permission(&self, user: &User, permissions: &Statements, connector: Connector) -> bool {
        self.0.policy.user_has_permission(user, permissions, connector)
    }
}

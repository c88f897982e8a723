//! warden: put any API behind Better-Auth.
//!
//! Better-Auth (Node) signs people in; warden verifies its JWTs (all five algorithms it signs
//! with: EdDSA, RS256, PS256, ES256, ES512) and session tokens against fresh database state, so
//! a ban, a role change or a sign-out takes effect on the next request. It is two things:
//!
//! - **a library** for your own Axum app: [`Auth`] and the extractors [`AuthUser`],
//!   [`MaybeAuthUser`], [`Admin`], [`RequireRole`], [`RequirePermission`], [`OrgMember`],
//!   [`RequireOrgPermission`], and for Better-Auth's API keys [`ApiKey`] and
//!   [`RequireApiKeyPermission`], for OAuth clients of Better-Auth's OAuth provider [`Client`]
//!   and [`RequireScope`], with any state type of yours; what they hand you ([`User`],
//!   [`Claims`], [`Credential`]) and their rejection, [`ApiError`]. `warden = {
//!   default-features = false }` builds just this;
//! - **the `warden` server** (feature `server`, on by default; the `server` module), built on that same
//!   library: `/users/me`, `/admin`, forward auth (`/auth/verify`) for nginx, Traefik and
//!   Caddy, the auth proxy, the console, OpenAPI docs and metrics.
//!
#![doc = include_str!("../docs/embedding.md")]
//!
//! Layout (dependencies point down this list, never up):
//! - `server` (feature `server`): the HTTP API, its state, `warden check`, admin writes, the
//!   connection handling and the layers around every route.
//! - [`config`]: every environment variable, validated once at start; builds an [`Auth`].
//! - `auth`: [`Auth`], its builder and the extractors; the JWT machinery (`jwt/`), the
//!   session-token path (`session/`), the policy (`policy/`) and the request side (`request/`:
//!   where the credential is and what kind, the failure limiter, one identify step per kind,
//!   the authentication steps, the extractors).
//! - `cache`: user and session rows kept fresh by PostgreSQL notifications.
//! - `error`: [`ApiError`], the rejection of every extractor; [`StartupError`].
//! - `db`: all SQL, one module per table; migrations in `migrations/`. `redis`, beside it:
//!   sessions, and the api-key plugin's keys, in Better-Auth's secondary storage
//!   (`SESSION_STORE=redis`, `API_KEY_STORAGE=secondary-storage`).
//! - `secret`: [`Secret`], a string never printed.
//!
//! Outside that order, `testing` (feature `testing`) sees everything: helpers, and the
//! internals the crate's own tests, benchmarks, examples and fuzz targets reach; not part of
//! the library's surface.
#![warn(missing_docs)]

mod auth;
mod cache;
pub mod config;
mod db;
mod error;
mod redis;
mod secret;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "testing")]
pub mod testing;

pub use auth::jwt::verify::{Audience, Claims};
pub use auth::policy::access::{AccessControlError, Role};
pub use auth::{
    AccessControl, AccessToken, Admin, ApiKey, ApiKeyOwner, ApiKeySettings, ApiKeyStorage, Auth, AuthBuilder,
    AuthPolicy, AuthUser, Caller, Client, Connector, Credential, JwksSettings, MaybeAuthUser, OAuthSettings,
    OrgMember, OrgPermission, Permission, RedisStorage, RequireApiKeyPermission, RequireOrgPermission,
    RequirePermission, RequireRole, RequireScope, ResourceMetadata, RoleName, RouteScope, RouteScopes,
    Scopes, SessionCheck, SessionStorage, Statements, Target,
};
/// The path of the protected-resource metadata document (RFC 9728): serve
/// [`Auth::resource_metadata`] there, with the resource's own path appended.
pub const OAUTH_METADATA_PATH: &str = auth::oauth::METADATA_PATH;
pub use cache::RowCacheSettings;
pub use db::ConnectError;
pub use db::organizations::Membership;
pub use db::users::User;
pub use error::{ApiError, StartupError};
pub use secret::Secret;

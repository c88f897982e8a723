//! The request side: from an HTTP request to an [`AuthUser`], and the extractors handlers use.
//!
//! - [`credential`]: where the credential is and what kind ([`credential::Presented`]: a JWT,
//!   a session token, the session cookie), and the cookie's cross-site rule.
//! - [`client_ip`]: the caller's address (the socket, or what a trusted proxy reports).
//! - [`throttle`]: the per-client limit on refused credentials, and its tickets.
//! - `identify`: step 1, whose credential it is, one step per kind.
//! - [`authenticate`]: the entry points and steps 2 to 4 (the fresh user, bans, the session).
//! - [`extract`]: [`AuthUser`], [`MaybeAuthUser`], [`Admin`], [`RequireRole`],
//!   [`RequirePermission`], and for API keys `ApiKey` itself and [`RequireApiKeyPermission`].
//! - [`organization`]: [`OrgMember`], [`RequireOrgPermission`].

pub mod authenticate;
pub mod client_ip;
pub mod credential;
pub mod extract;
pub(crate) mod identify;
pub mod organization;
pub mod throttle;

pub use extract::{
    Admin, AuthUser, Caller, Client, Credential, MaybeAuthUser, Permission, RequireApiKeyPermission,
    RequirePermission, RequireRole, RequireScope, RoleName,
};
pub use organization::{OrgMember, OrgPermission, RequireOrgPermission};

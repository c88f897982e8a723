//! Who may do what, decided as Better-Auth decides it.
//!
//! - here: [`AuthPolicy`], the rules of one deployment: admin membership (the admin plugin's
//!   `adminRoles`/`adminUserIds`), assignable roles, how strictly a JWT is tied to its session,
//!   and how cookies are read; the role-splitting rule itself is the user row's
//!   ([`crate::db::users::role_names`]);
//! - [`access`]: permissions by role (Better-Auth's access control, admin and organization
//!   plugins);
//! - [`organization`]: organization membership and what a member's roles allow (the
//!   extractors are on the request side).

pub mod access;
pub mod organization;

use std::sync::Arc;

use crate::auth::api_key::ApiKeySettings;
use crate::db::users::User;
use crate::secret::Secret;
pub use access::{AccessControl, Connector, Statements};

/// Better-Auth's session cookie name unless configured otherwise (`advanced.cookiePrefix`
/// `better-auth`, cookie `session_token`).
pub const DEFAULT_SESSION_COOKIE: &str = "better-auth.session_token";

/// How a JWT is tied to its Better-Auth session (`SESSION_CHECK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// The `sid` claim is ignored.
    Off,
    /// When the JWT carries `sid`, that session must exist and not be expired.
    Auto,
    /// Every JWT must carry `sid`, and its session must exist and not be expired.
    Required,
}

/// Who may do what, and how credentials are read. Built once, from the configuration or in code.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// A user holding any of these roles is an admin (Better-Auth's `adminRoles`).
    pub admin_roles: Vec<String>,
    /// Users who are admins whatever their roles (Better-Auth's `adminUserIds`).
    pub admin_user_ids: Vec<String>,
    /// The roles an admin may assign.
    pub assignable_roles: Vec<String>,
    /// Whether a JWT's `sid` must name a live session (`SESSION_CHECK`).
    pub session_check: SessionCheck,
    /// Better-Auth's secret: checks signed session tokens and session cookies.
    pub better_auth_secret: Option<Secret>,
    /// Refuse unsigned session tokens (Better-Auth bearer plugin's `requireSignature`).
    pub require_signed_session_tokens: bool,
    /// Accept Better-Auth's session cookie as a credential (`COOKIE_AUTH`).
    pub cookie_auth: bool,
    /// Origins a cookie-borne change may come from (`TRUSTED_ORIGINS`).
    pub trusted_origins: Vec<String>,
    /// The session cookie's name, without the `__Secure-` prefix (`SESSION_COOKIE_NAME`;
    /// Better-Auth's `advanced.cookiePrefix` + `.session_token`, or its
    /// `advanced.cookies.session_token.name`).
    pub session_cookie: String,
    /// Whether Better-Auth names its cookies with the `__Secure-` prefix (`SECURE_COOKIES`, its
    /// `advanced.useSecureCookies`; by default when its URL is https). Only that form is read,
    /// as Better-Auth reads only that form: the other one, planted by a sibling subdomain,
    /// would sign a browser in to warden alone.
    pub secure_cookies: bool,
    /// The roles' permissions (`ACCESS_CONTROL_FILE`, or Better-Auth's defaults).
    pub access: Arc<AccessControl>,
    /// How API keys (Better-Auth's api-key plugin) are read and decided (`API_KEY*`).
    pub api_keys: ApiKeySettings,
    /// warden as an OAuth resource server: which access tokens it takes (`RESOURCE_URL`,
    /// `OAUTH_*`, `DPOP_*`); off by default.
    pub oauth: crate::auth::oauth::OAuthSettings,
}

impl Default for AuthPolicy {
    /// Better-Auth's defaults: role `admin` is the admin role, `admin` and `user` can be
    /// assigned, a JWT's `sid` is checked when present, no cookies.
    fn default() -> Self {
        Self {
            admin_roles: vec!["admin".into()],
            admin_user_ids: Vec::new(),
            assignable_roles: vec!["admin".into(), "user".into()],
            session_check: SessionCheck::Auto,
            better_auth_secret: None,
            require_signed_session_tokens: false,
            cookie_auth: false,
            trusted_origins: Vec::new(),
            session_cookie: DEFAULT_SESSION_COOKIE.to_owned(),
            secure_cookies: false,
            access: Arc::new(AccessControl::default()),
            api_keys: ApiKeySettings::default(),
            oauth: crate::auth::oauth::OAuthSettings::default(),
        }
    }
}

impl AuthPolicy {
    /// Like Better-Auth: admin when any role is an admin role, or the id is listed.
    pub fn is_admin(&self, user: &User) -> bool {
        self.admin_user_ids.contains(&user.id)
            || user.role_names().any(|r| self.admin_roles.iter().any(|a| a == r))
    }

    /// The same rule for user `id` holding `roles`: for roles not written yet (would this
    /// role change leave the user an admin?).
    pub fn is_admin_with_roles(&self, id: &str, roles: &[String]) -> bool {
        self.admin_user_ids.iter().any(|a| a == id) || roles.iter().any(|r| self.admin_roles.contains(r))
    }

    /// Better-Auth's `userHasPermission` for `user`, on the fresh row.
    pub fn user_has_permission(&self, user: &User, request: &Statements, connector: Connector) -> bool {
        self.access.user_has_permission(
            &user.id,
            user.role.as_deref(),
            &self.admin_user_ids,
            request,
            connector,
        )
    }
}

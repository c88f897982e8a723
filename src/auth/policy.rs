//! Who may do what: admin membership (Better-Auth's admin plugin rules), assignable roles,
//! and how strictly a JWT is tied to its session. Built once from the configuration.

use crate::config::{Config, Secret, SessionCheck};
use crate::db::users::User;

#[derive(Debug, Clone)]
pub struct AuthPolicy {
    pub admin_roles: Vec<String>,
    pub admin_user_ids: Vec<String>,
    pub assignable_roles: Vec<String>,
    pub session_check: SessionCheck,
    pub better_auth_secret: Option<Secret>,
    /// Refuse unsigned session tokens (Better-Auth bearer plugin's `requireSignature`).
    pub require_signed_session_tokens: bool,
}

impl AuthPolicy {
    pub fn from_config(config: &Config) -> Self {
        Self {
            admin_roles: config.admin_roles.clone(),
            admin_user_ids: config.admin_user_ids.clone(),
            assignable_roles: config.roles.clone(),
            session_check: config.session_check,
            better_auth_secret: config.better_auth_secret.clone(),
            require_signed_session_tokens: config.require_signed_session_tokens,
        }
    }

    /// Like Better-Auth: admin when any role is an admin role, or the id is listed.
    pub fn is_admin(&self, user: &User) -> bool {
        self.is_admin_with_roles(&user.id, &user.roles())
    }

    pub fn is_admin_with_roles(&self, id: &str, roles: &[String]) -> bool {
        self.admin_user_ids.iter().any(|a| a == id) || roles.iter().any(|r| self.admin_roles.contains(r))
    }
}

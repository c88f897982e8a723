//! The roles group: `ROLES`, `ADMIN_ROLES`, `ADMIN_USER_IDS` and `ACCESS_CONTROL_FILE`.

use std::sync::Arc;

use super::env::{Env, invalid};
use crate::auth::AccessControl;
use crate::error::ConfigError;

/// Who is an admin, and which roles exist and may be assigned.
#[derive(Debug, Clone)]
pub struct RoleConfig {
    /// `ROLES` (default: the roles of `ACCESS_CONTROL_FILE`, else `admin,user`): the roles an
    /// admin may assign.
    pub roles: Vec<String>,
    /// `ADMIN_ROLES` (default `admin`): a user holding any of these roles is an admin.
    pub admin_roles: Vec<String>,
    /// `ADMIN_USER_IDS` (default empty): users who are admins whatever their roles.
    pub admin_user_ids: Vec<String>,
    /// `ACCESS_CONTROL_FILE` (default unset: Better-Auth's default roles): the roles'
    /// permissions, in Better-Auth's shape, shared with the auth server.
    pub access_control: Arc<AccessControl>,
}

impl RoleConfig {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let access_control = match env.get("ACCESS_CONTROL_FILE") {
            None => AccessControl::default(),
            Some(path) => AccessControl::from_file(std::path::Path::new(&path))
                .map_err(|e| invalid("ACCESS_CONTROL_FILE", e.to_string()))?,
        };
        let defined: Vec<&str> = access_control.roles.keys().map(String::as_str).collect();
        let parts = Self {
            roles: env.list("ROLES", &defined.join(",")),
            admin_roles: env.list("ADMIN_ROLES", "admin"),
            admin_user_ids: env.list("ADMIN_USER_IDS", ""),
            access_control: Arc::new(access_control),
        };
        for (var, roles) in [("ROLES", &parts.roles), ("ADMIN_ROLES", &parts.admin_roles)] {
            if roles.is_empty() {
                return Err(invalid(var, "names no role"));
            }
            if let Some(role) = roles.iter().find(|r| !valid_role_name(r)) {
                return Err(invalid(
                    var,
                    format!("role {role:?} may only use letters, digits, _ - :"),
                ));
            }
        }
        Ok(parts)
    }
}

/// Role names go into comma-joined strings and URLs: keep them plain.
fn valid_role_name(role: &str) -> bool {
    !role.is_empty()
        && role.len() <= 64
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, config};

    #[test]
    fn defaults() {
        let c = config(&[("DATABASE_URL", "postgres://localhost/db")]).unwrap();
        assert_eq!(c.roles.roles, vec!["admin", "user"]);
        assert_eq!(c.roles.admin_roles, vec!["admin"]);
        assert!(c.roles.admin_user_ids.is_empty());
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        assert_each_refused(&[("ROLES", " , "), ("ADMIN_ROLES", "admin;drop")]);
    }
}

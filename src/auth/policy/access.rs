//! Who may do what, decided exactly as Better-Auth decides it: roles are sets of permission
//! statements (`resource → actions`), as Better-Auth's `createAccessControl` makes them.
//!
//! Two vocabularies, one engine:
//! - the **admin plugin**'s (`user`, `session`, plus warden's `audit`), for what a user may do
//!   across the whole app. Better-Auth's `userHasPermission`: an id in `ADMIN_USER_IDS` passes;
//!   otherwise the user's `role` column (split on `,`, exactly as Better-Auth splits it, no
//!   trimming; the default role `user` when empty) names roles, and the check passes if *one*
//!   role grants everything asked.
//! - the **organization plugin**'s (`organization`, `member`, `invitation`, `team`, `ac`), for
//!   what a member may do in one organization. Roles come from the member row (trimmed, empty
//!   names dropped), each role's statements merged with the organization's dynamic roles of the
//!   same name (the `organization_role` table), which may also define new roles.
//!
//! [`Role::authorize`] is Better-Auth's `role.authorize(request, connector)`: with `AND` (the
//! default) every requested resource must be known and grant every requested action; with
//! `OR` one resource granting all its requested actions is enough and unknown resources are
//! skipped; a resource asked with no actions is never granted.
//!
//! Roles are defined once, in `access-control.json` (`ACCESS_CONTROL_FILE`), read by warden
//! and by the auth server alike; without a file, Better-Auth's defaults apply.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// `resource → actions`, the shape of a role and of a permission request.
pub type Statements = BTreeMap<String, Vec<String>>;

/// `files:read, files:write`: how a refusal names the permissions asked.
pub fn describe(statements: &Statements) -> String {
    statements
        .iter()
        .flat_map(|(resource, actions)| actions.iter().map(move |a| format!("{resource}:{a}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The admin plugin's resources and actions (Better-Auth 1.7.25), plus warden's `audit`.
pub const ADMIN_STATEMENTS: &[(&str, &[&str])] = &[
    (
        "user",
        &[
            "create",
            "list",
            "set-role",
            "ban",
            "impersonate",
            "impersonate-admins",
            "delete",
            "set-password",
            "set-email",
            "set-phone",
            "get",
            "update",
        ],
    ),
    ("session", &["list", "revoke", "delete"]),
    ("audit", &["list"]),
];

/// The organization plugin's resources and actions (Better-Auth 1.7.25).
pub const ORGANIZATION_STATEMENTS: &[(&str, &[&str])] = &[
    ("organization", &["update", "delete"]),
    ("member", &["create", "update", "delete"]),
    ("invitation", &["create", "cancel"]),
    ("team", &["create", "update", "delete"]),
    ("ac", &["create", "read", "update", "delete"]),
];

/// How the resources of a request combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub enum Connector {
    /// Every requested resource must grant every requested action.
    #[default]
    #[serde(rename = "AND")]
    And,
    /// One requested resource granting all its requested actions is enough.
    #[serde(rename = "OR")]
    Or,
}

/// One role: what it grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role(Statements);

impl Role {
    /// A role granting `statements`.
    pub fn new(statements: Statements) -> Self {
        Self(statements)
    }

    /// What the role grants.
    pub fn statements(&self) -> &Statements {
        &self.0
    }

    /// Better-Auth's `role.authorize(request, connector)`, as a yes or no.
    pub fn authorize(&self, request: &Statements, connector: Connector) -> bool {
        let mut granted_any = false;
        for (resource, wanted) in request {
            let Some(allowed) = self.0.get(resource) else {
                if connector == Connector::And {
                    return false;
                }
                continue;
            };
            let granted = !wanted.is_empty() && wanted.iter().all(|action| allowed.contains(action));
            match (granted, connector) {
                (true, Connector::Or) => return true,
                (true, Connector::And) => granted_any = true,
                (false, Connector::And) => return false,
                (false, Connector::Or) => {}
            }
        }
        granted_any
    }

    /// This role with `extra` added (a dynamic role merged into the static one of its name).
    fn merged(&self, extra: &Statements) -> Self {
        let mut statements = self.0.clone();
        for (resource, actions) in extra {
            let entry = statements.entry(resource.clone()).or_default();
            for action in actions {
                if !entry.contains(action) {
                    entry.push(action.clone());
                }
            }
        }
        Self(statements)
    }
}

/// The roles of both vocabularies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessControl {
    /// Admin-plugin roles by name (`admin`, `user`, and any the file defines).
    pub roles: BTreeMap<String, Role>,
    /// Organization roles by name (`owner`, `admin`, `member`, and any the file defines).
    pub organization: BTreeMap<String, Role>,
}

impl Default for AccessControl {
    /// Better-Auth's default roles; warden's `audit: [list]` is granted to `admin`.
    fn default() -> Self {
        let statements = |pairs: &[(&str, &[&str])]| -> Statements {
            pairs
                .iter()
                .map(|(r, a)| ((*r).to_owned(), a.iter().map(|s| (*s).to_owned()).collect()))
                .collect()
        };
        let admin = statements(&[
            (
                "user",
                &[
                    "create",
                    "list",
                    "set-role",
                    "ban",
                    "impersonate",
                    "delete",
                    "set-password",
                    "set-email",
                    "set-phone",
                    "get",
                    "update",
                ],
            ),
            ("session", &["list", "revoke", "delete"]),
            ("audit", &["list"]),
        ]);
        let user = statements(&[("user", &[]), ("session", &[])]);
        let owner = statements(ORGANIZATION_STATEMENTS);
        let org_admin = statements(&[
            ("organization", &["update"]),
            ("invitation", &["create", "cancel"]),
            ("member", &["create", "update", "delete"]),
            ("team", &["create", "update", "delete"]),
            ("ac", &["create", "read", "update", "delete"]),
        ]);
        let member = statements(&[
            ("organization", &[]),
            ("member", &[]),
            ("invitation", &[]),
            ("team", &[]),
            ("ac", &["read"]),
        ]);
        Self {
            roles: [("admin", admin), ("user", user)]
                .into_iter()
                .map(|(n, s)| (n.to_owned(), Role(s)))
                .collect(),
            organization: [("owner", owner), ("admin", org_admin), ("member", member)]
                .into_iter()
                .map(|(n, s)| (n.to_owned(), Role(s)))
                .collect(),
        }
    }
}

/// Why `access-control.json` cannot be used. Every message names the file and the entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessControlError {
    /// The file cannot be read.
    #[error("{file}: cannot read it: {reason}")]
    Unreadable {
        /// The file.
        file: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not JSON of the expected shape.
    #[error("{file}: {reason}")]
    Malformed {
        /// The file.
        file: String,
        /// What is wrong, with its line and column.
        reason: String,
    },
    /// A role grants a resource or an action its plugin does not have.
    #[error("{file}: role {role:?}: {entry}")]
    Unknown {
        /// The file.
        file: String,
        /// The role (`organization.<name>` for organization roles).
        role: String,
        /// The unknown resource or action.
        entry: String,
    },
}

impl AccessControl {
    /// Reads `access-control.json`: admin-plugin roles at the top level, organization roles
    /// under `"organization"`, each in Better-Auth's shape (`{"user": ["list", "get"]}`). A role
    /// set given in the file replaces Better-Auth's defaults for its plugin, as Better-Auth's
    /// own `roles` option does.
    pub fn from_file(path: &Path) -> Result<Self, AccessControlError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| AccessControlError::Unreadable {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        Self::from_json(&file, &text)
    }

    /// Parses and checks the file's text (`file` names it in errors).
    pub fn from_json(file: &str, text: &str) -> Result<Self, AccessControlError> {
        let malformed = |reason: String| AccessControlError::Malformed {
            file: file.to_owned(),
            reason,
        };
        let mut top: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| malformed(format!("not a JSON object of roles: {e}")))?;
        let organization = match top.remove("organization") {
            None => None,
            Some(value) => Some(
                serde_json::from_value::<BTreeMap<String, Statements>>(value).map_err(|e| {
                    malformed(format!(
                        "\"organization\" must map role names to {{\"resource\": [\"action\", ...]}}: {e}"
                    ))
                })?,
            ),
        };
        let mut roles = BTreeMap::new();
        for (name, value) in top {
            let statements: Statements = serde_json::from_value(value).map_err(|e| {
                malformed(format!(
                    "role {name:?} must map resources to lists of actions: {e}"
                ))
            })?;
            check(file, &name, &statements, ADMIN_STATEMENTS)?;
            roles.insert(name, Role(statements));
        }
        let defaults = Self::default();
        let organization = match organization {
            None => defaults.organization,
            Some(org) => {
                let mut checked = BTreeMap::new();
                for (name, statements) in org {
                    check(
                        file,
                        &format!("organization.{name}"),
                        &statements,
                        ORGANIZATION_STATEMENTS,
                    )?;
                    checked.insert(name, Role(statements));
                }
                checked
            }
        };
        if roles.is_empty() {
            roles = defaults.roles;
        }
        Ok(Self { roles, organization })
    }

    /// Better-Auth's `userHasPermission` (admin plugin).
    pub fn user_has_permission(
        &self,
        user_id: &str,
        role: Option<&str>,
        admin_user_ids: &[String],
        request: &Statements,
        connector: Connector,
    ) -> bool {
        if admin_user_ids.iter().any(|id| id == user_id) {
            return true;
        }
        crate::db::users::role_names(role).any(|name| {
            self.roles
                .get(name)
                .is_some_and(|r| r.authorize(request, connector))
        })
    }

    /// Better-Auth's organization `hasPermission`: the member's roles, each merged with the
    /// organization's dynamic role of that name.
    pub fn member_has_permission(
        &self,
        member_role: &str,
        dynamic: &[(String, Statements)],
        request: &Statements,
        connector: Connector,
    ) -> bool {
        parse_role_list(member_role).any(|name| {
            self.organization_role(name, dynamic)
                .is_some_and(|r| r.authorize(request, connector))
        })
    }

    /// An organization role as it stands in one organization (static, merged with dynamic).
    pub fn organization_role(&self, name: &str, dynamic: &[(String, Statements)]) -> Option<Role> {
        let mut role = self.organization.get(name).cloned();
        for (dynamic_name, statements) in dynamic {
            if dynamic_name == name {
                role = Some(role.unwrap_or_default().merged(statements));
            }
        }
        role
    }

    /// Whether `role` is defined (assignable through `PUT /admin/users/{id}/role`).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }
}

/// The organization plugin's role list: split on `,`, trimmed, empty names dropped.
pub fn parse_role_list(roles: &str) -> impl Iterator<Item = &str> {
    roles.split(',').map(str::trim).filter(|r| !r.is_empty())
}

fn check(
    file: &str,
    role: &str,
    statements: &Statements,
    known: &[(&str, &[&str])],
) -> Result<(), AccessControlError> {
    let unknown = |entry: String| AccessControlError::Unknown {
        file: file.to_owned(),
        role: role.to_owned(),
        entry,
    };
    for (resource, actions) in statements {
        let Some((_, allowed)) = known.iter().find(|(r, _)| r == resource) else {
            let names: Vec<&str> = known.iter().map(|(r, _)| *r).collect();
            return Err(unknown(format!(
                "unknown resource {resource:?} (known: {})",
                names.join(", ")
            )));
        };
        if let Some(action) = actions.iter().find(|a| !allowed.contains(&a.as_str())) {
            return Err(unknown(format!(
                "unknown action {action:?} of {resource:?} (known: {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(&str, &[&str])]) -> Statements {
        pairs
            .iter()
            .map(|(r, a)| ((*r).to_owned(), a.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    const FILE: &str = r#"{
        "admin": {"user": ["list", "get", "set-role", "ban", "delete"], "session": ["list", "revoke"], "audit": ["list"]},
        "user": {"user": [], "session": []},
        "support": {"user": ["list", "get"], "session": ["list", "revoke"]},
        "moderator": {"user": ["list", "get", "ban"]},
        "organization": {
            "owner": {"organization": ["update", "delete"], "member": ["create", "update", "delete"]},
            "member": {"ac": ["read"]},
            "editor": {"team": ["create", "update"]}
        }
    }"#;

    /// Better-Auth's `role.authorize`, case by case (read from `access.ts` and checked against
    /// the real server by the e2e agreement grid).
    #[test]
    fn authorize_is_better_auths() {
        let role = Role::new(req(&[("user", &["list", "get"]), ("session", &["list"])]));
        let and = Connector::And;
        let or = Connector::Or;
        for (request, connector, expected) in [
            (req(&[("user", &["list"])]), and, true),
            (req(&[("user", &["list", "get"])]), and, true),
            (req(&[("user", &["list", "ban"])]), and, false),
            (req(&[("user", &["list"]), ("session", &["list"])]), and, true),
            (req(&[("user", &["list"]), ("session", &["revoke"])]), and, false),
            (req(&[("user", &["list"]), ("session", &["revoke"])]), or, true),
            (req(&[("user", &["ban"]), ("session", &["revoke"])]), or, false),
            (req(&[("nope", &["x"])]), and, false),
            (req(&[("nope", &["x"]), ("user", &["get"])]), and, false),
            (req(&[("nope", &["x"]), ("user", &["get"])]), or, true),
            (req(&[("user", &[])]), and, false),
            (req(&[("user", &[])]), or, false),
            (req(&[]), and, false),
            (req(&[]), or, false),
        ] {
            assert_eq!(
                role.authorize(&request, connector),
                expected,
                "{request:?} {connector:?}"
            );
        }
    }

    #[test]
    fn users_pass_when_one_role_grants_everything() {
        let ac = AccessControl::from_json("access-control.json", FILE).unwrap();
        let ids = vec!["root".to_owned()];
        let check = |id: &str, role: Option<&str>, request: Statements| {
            ac.user_has_permission(id, role, &ids, &request, Connector::And)
        };
        assert!(check(
            "root",
            Some("user"),
            req(&[("user", &["impersonate-admins"])])
        ));
        assert!(check("a", Some("admin"), req(&[("user", &["ban"])])));
        assert!(check("s", Some("support"), req(&[("session", &["revoke"])])));
        assert!(!check("s", Some("support"), req(&[("user", &["ban"])])));
        assert!(check("m", Some("moderator"), req(&[("user", &["ban"])])));
        // "user,support": support alone grants both, so it passes; no role grants ban+revoke.
        assert!(check(
            "x",
            Some("user,support"),
            req(&[("user", &["list"]), ("session", &["revoke"])])
        ));
        assert!(!check(
            "x",
            Some("support,moderator"),
            req(&[("user", &["ban"]), ("session", &["revoke"])])
        ));
        // Better-Auth splits on "," without trimming: " support" is no role.
        assert!(!check("x", Some("user, support"), req(&[("user", &["list"])])));
        // No role: the default role, `user`, which grants nothing.
        assert!(!check("x", None, req(&[("user", &["list"])])));
        assert!(!check("x", Some(""), req(&[("user", &["list"])])));
        assert!(!check("x", Some("ghost"), req(&[("user", &["list"])])));
    }

    #[test]
    fn members_merge_static_and_dynamic_roles() {
        let ac = AccessControl::from_json("access-control.json", FILE).unwrap();
        let dynamic = vec![
            ("member".to_owned(), req(&[("invitation", &["create"])])),
            (
                "auditor".to_owned(),
                req(&[("ac", &["read"]), ("member", &["update"])]),
            ),
        ];
        let can = |role: &str, request: Statements| {
            ac.member_has_permission(role, &dynamic, &request, Connector::And)
        };
        assert!(can("owner", req(&[("organization", &["delete"])])));
        assert!(!can("member", req(&[("organization", &["delete"])])));
        // A dynamic role adds to the static one of its name...
        assert!(can(
            "member",
            req(&[("invitation", &["create"]), ("ac", &["read"])])
        ));
        // ...or defines a new one.
        assert!(can("auditor", req(&[("member", &["update"])])));
        assert!(!can("auditor", req(&[("member", &["delete"])])));
        // The organization plugin trims role names.
        assert!(can(" member , editor", req(&[("team", &["create"])])));
        assert!(!can("", req(&[("ac", &["read"])])));
    }

    #[test]
    fn defaults_are_better_auths() {
        let ac = AccessControl::default();
        let admin = ac.roles["admin"].statements();
        assert!(!admin["user"].contains(&"impersonate-admins".to_owned()));
        assert_eq!(admin["audit"], vec!["list"]);
        assert!(ac.roles["user"].statements().values().all(Vec::is_empty));
        let org = &ac.organization;
        assert!(org["owner"].authorize(&req(&[("organization", &["delete"])]), Connector::And));
        assert!(!org["admin"].authorize(&req(&[("organization", &["delete"])]), Connector::And));
        assert!(org["member"].authorize(&req(&[("ac", &["read"])]), Connector::And));
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../../access-control.example.json");
        let ac = AccessControl::from_json("access-control.example.json", text).unwrap();
        assert!(ac.roles.contains_key("support") && ac.organization.contains_key("owner"));
    }

    #[test]
    fn a_bad_file_names_the_file_the_role_and_the_entry() {
        let err = |text: &str| AccessControl::from_json("ac.json", text).unwrap_err().to_string();
        assert!(err("[1, 2]").starts_with("ac.json: not a JSON object of roles"));
        assert!(err("{\"admin\": {\"user\": \"list\"}}").contains("role \"admin\" must map resources"));
        let e = err("{\"support\": {\"users\": [\"list\"]}}");
        assert!(
            e.contains("ac.json: role \"support\": unknown resource \"users\""),
            "{e}"
        );
        let e = err("{\"support\": {\"user\": [\"lsit\"]}}");
        assert!(
            e.contains("role \"support\": unknown action \"lsit\" of \"user\""),
            "{e}"
        );
        let e = err("{\"organization\": {\"owner\": {\"user\": [\"list\"]}}}");
        assert!(
            e.contains("role \"organization.owner\": unknown resource \"user\""),
            "{e}"
        );
        let e = AccessControl::from_file(Path::new("/nonexistent/ac.json"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/ac.json: cannot read it"), "{e}");
        // Without organization roles, Better-Auth's defaults.
        let ac = AccessControl::from_json("ac.json", "{\"support\": {\"user\": [\"list\"]}}").unwrap();
        assert!(ac.organization.contains_key("owner"));
        assert_eq!(ac.roles.keys().collect::<Vec<_>>(), vec!["support"]);
    }
}

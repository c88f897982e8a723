//! One rule for "which roles does this user hold", Better-Auth's admin plugin's:
//! `(user.role || defaultRole || "user").split(",")`. The `role` column is split on commas and
//! nothing else: no trimming, no case folding, so `"user, admin"` holds `user` and `" admin"`,
//! and `" admin"` is not `admin`. An empty or missing role is the default role, `user`.
//!
//! Every check that asks whether a user holds a role goes through [`role_names`]: the admin
//! rule (`ADMIN_ROLES`), `RequireRole`, permissions, `/auth/verify?role=`, the `X-Auth-User-Role`
//! header. SQL asks through `warden_role_names(role)` (migration `..._role_names_function`), the
//! same rule, for the last-admin count and the admin listing's `?role=` filter, so a role
//! string written by hand (`"ad min"`, `" admin"`) cannot count as an admin in one place and
//! not in another.
//!
//! The organization plugin splits member roles differently (trimmed, empty names dropped):
//! that rule is [`super::access::parse_role_list`], used for organization roles only.

/// Better-Auth's admin plugin's `defaultRole`: the role of a user whose `role` is empty.
pub const DEFAULT_ROLE: &str = "user";

/// The roles a user's `role` column names, as Better-Auth's admin plugin reads it.
pub fn role_names(role: Option<&str>) -> std::str::Split<'_, char> {
    role.filter(|r| !r.is_empty()).unwrap_or(DEFAULT_ROLE).split(',')
}

/// Whether the `role` column names `wanted` (by [`role_names`]).
pub fn holds(role: Option<&str>, wanted: &str) -> bool {
    role_names(role).any(|name| name == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_on_commas_only_and_empty_is_the_default_role() {
        let names = |role: Option<&'static str>| role_names(role).collect::<Vec<_>>();
        assert_eq!(names(Some("admin")), ["admin"]);
        assert_eq!(names(Some("user,admin")), ["user", "admin"]);
        assert_eq!(names(Some("user, admin")), ["user", " admin"]);
        assert_eq!(names(Some("ad min")), ["ad min"]);
        assert_eq!(names(Some("admin,")), ["admin", ""]);
        assert_eq!(names(Some("")), ["user"]);
        assert_eq!(names(None), ["user"]);
        assert!(holds(Some("user,admin"), "admin"));
        assert!(!holds(Some("user, admin"), "admin"));
        assert!(!holds(Some(" admin"), "admin"));
        assert!(!holds(Some("Admin"), "admin"));
        assert!(holds(None, "user"));
    }
}

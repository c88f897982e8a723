//! User management below HTTP: what each admin action asks, and the one way an admin write is
//! made. `/admin` (`routes::admin`) extracts, validates and shapes answers; the rules live
//! here, the same as Better-Auth's admin plugin, so an admin switching between the two sees
//! one behaviour.
//!
//! Boundaries: nothing here knows of requests or responses (the route turns the request into
//! an audit context and the result into JSON). Of [`crate::auth`] it uses the [`crate::Auth`]
//! handle (pool, policy, row cache) and the two checks every request passes, the ban and the
//! permission, asked again inside the write's transaction; all SQL is in [`crate::db`].
//!
//! Layout:
//! - here: the permission markers (`ListUsers`, `SetRole`, `BanUsers`, ...), what each admin
//!   route asks, as Better-Auth's admin plugin asks it (warden adds `audit:list`).
//! - `write`: `AdminWrite`, an admin write from start to finish (begin, lock, re-check the
//!   actor, write, audit, commit, then invalidate exactly the cached rows it touched), one
//!   method per operation: set role, ban, unban, remove, revoke a user's sessions, revoke one.

mod write;

pub(crate) use write::{AdminWrite, Ban};

use crate::auth::Permission;

macro_rules! permission {
    ($name:ident, $resource:literal, $action:literal) => {
        #[doc = concat!("`", $resource, ":", $action, "`")]
        pub(crate) struct $name;
        impl Permission for $name {
            const STATEMENTS: &'static [(&'static str, &'static [&'static str])] = &[($resource, &[$action])];
        }
    };
}
permission!(ListUsers, "user", "list");
permission!(GetUser, "user", "get");
permission!(SetRole, "user", "set-role");
permission!(BanUsers, "user", "ban");
permission!(DeleteUsers, "user", "delete");
permission!(ListSessions, "session", "list");
permission!(RevokeSessions, "session", "revoke");
permission!(ReadAudit, "audit", "list");

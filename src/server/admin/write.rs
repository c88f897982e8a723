//! [`AdminWrite`]: one admin write, start to finish. Every operation runs the same steps:
//!
//! 1. begin a transaction and take the admin-write lock, so writes whose rules read other rows
//!    (the last usable admin, the actor's own standing) run one at a time;
//! 2. read the actor again in it and refuse them as the request path would: gone (401
//!    `user_not_found`), banned (403 `banned`), no longer holding the permission (403
//!    `forbidden`), when another admin's write committed since their request was let in;
//! 3. apply the operation's rules and make the change;
//! 4. record the audit entry, with the request's context, in the same transaction;
//! 5. commit, and only then drop from the row cache exactly the rows the write changed or
//!    deleted ([`Touched`]), so the next request reads them fresh without waiting for their
//!    notifications. A write refused or failed at any step before has changed nothing in the
//!    database and drops nothing from the cache.
//!
//! The operation a write may perform is fixed by its type: an `AdminWrite<P>` is made from the
//! `RequirePermission<P>` the route extracted, and only `P`'s operations exist on it (`SetRole`:
//! set role; `BanUsers`: ban, unban; `DeleteUsers`: remove; `RevokeSessions`: revoke a user's
//! sessions, revoke one), so the permission re-checked is the one the request was let in with.

use std::marker::PhantomData;

use serde_json::{Value, json};
use sqlx::{PgConnection, Postgres, Transaction};
use time::OffsetDateTime;

use super::{BanUsers, DeleteUsers, RevokeSessions, SetRole};
use crate::auth::request::authenticate::refuse_ban;
use crate::auth::request::extract::require_permission;
use crate::auth::{Auth, AuthPolicy, AuthUser, Permission, RequirePermission};
use crate::cache::RowCache;
use crate::db::audit::{self, AuditContext, NewAuditEntry};
use crate::db::users::{self, User};
use crate::error::ApiError;

/// One admin write by the caller of one request, allowed `P`. Each operation consumes it.
pub(crate) struct AdminWrite<'a, P> {
    auth: &'a Auth,
    actor: &'a AuthUser,
    /// Recorded beside the write: the caller's session, their impersonator, address, request id.
    context: AuditContext,
    permission: PhantomData<P>,
}

/// A ban as asked, already validated: the reason recorded, and seconds until it lifts (`None`:
/// forever).
#[derive(Debug)]
pub(crate) struct Ban {
    pub(crate) reason: String,
    pub(crate) expires_in: Option<i64>,
}

/// What a finished write records in the audit trail, and the cached rows it touched.
struct Done<'a> {
    action: &'static str,
    target_user: &'a str,
    target_session: Option<&'a str>,
    details: Value,
    touched: Touched<'a>,
}

/// The rows a write changed or deleted, dropped from the row cache once it has committed.
#[derive(Debug, Default)]
struct Touched<'a> {
    user: Option<&'a str>,
    sessions: Vec<String>,
}

impl Touched<'_> {
    fn invalidate(&self, rows: &RowCache) {
        if let Some(id) = self.user {
            rows.invalidate_user(id);
        }
        rows.invalidate_sessions(&self.sessions);
    }
}

impl<'a, P: Permission> AdminWrite<'a, P> {
    /// A write by `caller`, whom the extractor allowed `P`; `context` is recorded beside it.
    pub(crate) fn new(auth: &'a Auth, caller: &'a RequirePermission<P>, context: AuditContext) -> Self {
        Self {
            auth,
            actor: &caller.caller,
            context,
            permission: PhantomData,
        }
    }

    /// Steps 1 and 2: the transaction, serialised with every other admin write, in which the
    /// actor is read again and judged by the request path's own ban and permission checks.
    async fn begin(&self) -> Result<Transaction<'static, Postgres>, ApiError> {
        let mut tx = self.auth.db().begin().await?;
        users::lock_admin_changes(&mut tx).await?;
        let fresh = users::find_by_id(&mut *tx, &self.actor.user.id)
            .await?
            .ok_or(ApiError::UserNotFound)?;
        refuse_ban(&fresh, OffsetDateTime::now_utc())?;
        require_permission::<P>(self.auth, &fresh)?;
        Ok(tx)
    }

    /// Steps 4 and 5: the audit entry, the commit, then (only then) the cache.
    async fn commit(self, mut tx: Transaction<'static, Postgres>, done: Done<'_>) -> Result<(), ApiError> {
        let entry = NewAuditEntry {
            actor_id: &self.actor.user.id,
            action: done.action,
            target_user_id: Some(done.target_user),
            target_session_id: done.target_session,
            details: done.details,
            context: &self.context,
        };
        audit::record(&mut tx, entry).await?;
        tx.commit().await?;
        done.touched.invalidate(self.auth.rows());
        Ok(())
    }

    /// Refuses the actor acting on themselves (422 `self_action`).
    fn not_yourself(&self, user_id: &str, what: &str) -> Result<(), ApiError> {
        if user_id == self.actor.user.id {
            return Err(ApiError::SelfAction(format!("you cannot {what} yourself")));
        }
        Ok(())
    }
}

impl AdminWrite<'_, SetRole> {
    /// Sets `user_id`'s roles (stored comma-joined, as Better-Auth does); `roles` are already
    /// validated. Demoting the last usable admin is refused (409 `last_admin`).
    pub(crate) async fn set_role(self, user_id: &str, roles: &[String]) -> Result<User, ApiError> {
        let mut tx = self.begin().await?;
        let target = locked_user(&mut tx, user_id).await?;
        if !self.auth.policy().is_admin_with_roles(&target.id, roles) {
            ensure_another_admin(self.auth.policy(), &mut tx, &target).await?;
        }
        let joined = roles.join(",");
        let updated = users::set_role(&mut tx, user_id, &joined).await?;
        let done = Done {
            action: "user.set_role",
            target_user: user_id,
            target_session: None,
            details: json!({ "from": target.role, "to": joined }),
            touched: Touched {
                user: Some(user_id),
                ..Touched::default()
            },
        };
        self.commit(tx, done).await?;
        Ok(updated)
    }
}

impl AdminWrite<'_, BanUsers> {
    /// Bans `user_id` and deletes all their sessions (Better-Auth's rules). Not yourself (422
    /// `self_action`), not the last usable admin (409 `last_admin`).
    pub(crate) async fn ban(self, user_id: &str, ban: Ban) -> Result<User, ApiError> {
        self.not_yourself(user_id, "ban")?;
        let mut tx = self.begin().await?;
        let target = locked_user(&mut tx, user_id).await?;
        ensure_another_admin(self.auth.policy(), &mut tx, &target).await?;
        let banned = users::ban(&mut tx, user_id, &ban.reason, ban.expires_in).await?;
        // Like Better-Auth: a ban signs the user out everywhere.
        let revoked = self.auth.session_store().end_all(&mut tx, user_id).await?;
        let expires = banned
            .ban_expires
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
        let done = Done {
            action: "user.ban",
            target_user: user_id,
            target_session: None,
            details: json!({ "reason": ban.reason, "expiresAt": expires, "sessionsRevoked": revoked.len() }),
            touched: Touched {
                user: Some(user_id),
                sessions: revoked,
            },
        };
        self.commit(tx, done).await?;
        Ok(banned)
    }

    /// Lifts `user_id`'s ban: clears `banned`, `banReason` and `banExpires`.
    pub(crate) async fn unban(self, user_id: &str) -> Result<User, ApiError> {
        let mut tx = self.begin().await?;
        let before = locked_user(&mut tx, user_id).await?;
        let user = users::unban(&mut tx, user_id).await?;
        let done = Done {
            action: "user.unban",
            target_user: user_id,
            target_session: None,
            details: json!({ "previousReason": before.ban_reason, "wasBanned": before.banned.unwrap_or(false) }),
            touched: Touched {
                user: Some(user_id),
                ..Touched::default()
            },
        };
        self.commit(tx, done).await?;
        Ok(user)
    }
}

impl AdminWrite<'_, DeleteUsers> {
    /// Removes `user_id`; their sessions and accounts go by cascade. Not yourself (422
    /// `self_action`), not the last usable admin (409 `last_admin`).
    pub(crate) async fn remove(self, user_id: &str) -> Result<(), ApiError> {
        self.not_yourself(user_id, "remove")?;
        let mut tx = self.begin().await?;
        let target = locked_user(&mut tx, user_id).await?;
        ensure_another_admin(self.auth.policy(), &mut tx, &target).await?;
        // Better-Auth's removeUser ends the sessions first (in Redis: the revoked-before mark);
        // in the table they would go by cascade anyway.
        if !self.auth.session_store().in_table() {
            self.auth.session_store().end_all(&mut tx, user_id).await?;
        }
        users::delete(&mut tx, user_id).await?;
        let done = Done {
            action: "user.remove",
            target_user: user_id,
            target_session: None,
            details: json!({ "email": target.email, "role": target.role }),
            // Its sessions went by cascade; without the user row they are refused anyway.
            touched: Touched {
                user: Some(user_id),
                ..Touched::default()
            },
        };
        self.commit(tx, done).await
    }
}

impl AdminWrite<'_, RevokeSessions> {
    /// Revokes all of `user_id`'s sessions (an admin revoking their own keeps the one they are
    /// using); returns how many went.
    pub(crate) async fn revoke_sessions(self, user_id: &str) -> Result<u64, ApiError> {
        let mut tx = self.begin().await?;
        locked_user(&mut tx, user_id).await?;
        let keep = if user_id == self.actor.user.id {
            self.actor.session_id.as_deref()
        } else {
            None
        };
        let store = self.auth.session_store();
        let revoked = match keep {
            Some(_) => store.end_others(&mut tx, user_id, keep).await?,
            None => store.end_all(&mut tx, user_id).await?,
        };
        let count = revoked.len() as u64;
        let done = Done {
            action: "user.revoke_sessions",
            target_user: user_id,
            target_session: None,
            details: json!({ "sessionsRevoked": count }),
            touched: Touched {
                user: None,
                sessions: revoked,
            },
        };
        self.commit(tx, done).await?;
        Ok(count)
    }

    /// Revokes one session, whoever's it is (404 when there is none).
    pub(crate) async fn revoke_session(self, session_id: &str) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let owner = self
            .auth
            .session_store()
            .end_by_id(&mut tx, session_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let done = Done {
            action: "session.revoke",
            target_user: &owner,
            target_session: Some(session_id),
            details: json!({}),
            touched: Touched {
                user: None,
                sessions: vec![session_id.to_owned()],
            },
        };
        self.commit(tx, done).await
    }
}

/// The target, locked for the rest of the write (404 when there is none).
async fn locked_user(conn: &mut PgConnection, id: &str) -> Result<User, ApiError> {
    users::find_for_update(conn, id).await?.ok_or(ApiError::NotFound)
}

/// Refuses a change that would leave no usable admin (an admin with no active ban): 409
/// `last_admin`. Asked inside the write's transaction, under its lock.
async fn ensure_another_admin(
    policy: &AuthPolicy,
    conn: &mut PgConnection,
    target: &User,
) -> Result<(), ApiError> {
    if !policy.is_admin(target) || target.ban_is_active(OffsetDateTime::now_utc()) {
        return Ok(());
    }
    let others =
        users::count_other_admins(conn, &target.id, &policy.admin_roles, &policy.admin_user_ids).await?;
    if others == 0 {
        return Err(ApiError::LastAdmin(format!("{} is the last admin", target.id)));
    }
    Ok(())
}

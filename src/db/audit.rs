//! warden's own `warden_audit_log` table: one row per admin write, inserted in the same
//! transaction as the write itself, so the trail and the data never disagree. Admin writes
//! that reach Better-Auth through the auth proxy are recorded too, after Better-Auth said yes.
//!
//! Each row says who acted (`actor_id`, the user of the session the write came through) and,
//! through its [`AuditContext`], how: that session, the admin behind it when it is an
//! impersonation, the client's address and the request id, so an impersonating admin's writes
//! are never attributed to the impersonated user alone.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

/// One admin write, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Increasing: a later entry has a higher id.
    pub id: i64,
    /// When the write was made.
    pub at: OffsetDateTime,
    /// The admin who made it (a user id; that user may be gone since).
    pub actor_id: String,
    /// What was done: `user.set_role`, `user.ban`, `user.unban`, `user.revoke_sessions`,
    /// `user.remove` or `session.revoke`.
    pub action: String,
    /// The user it was done to, if any.
    pub target_user_id: Option<String>,
    /// The session it was done to (`session.revoke`).
    pub target_session_id: Option<String>,
    /// What changed, as the action describes it (e.g. `{"from": "user", "to": "admin"}`).
    pub details: serde_json::Value,
    /// The session the write was made in, when known.
    pub session_id: Option<String>,
    /// The admin impersonating the actor in that session, when it is an impersonation.
    pub impersonated_by: Option<String>,
    /// The client's address, as warden resolved it (`TRUSTED_PROXIES` considered).
    pub client_ip: Option<String>,
    /// The request's `x-request-id`, as its response carried it.
    pub request_id: Option<String>,
}

/// The request an admin write came in: recorded beside the write, on every row. Built once
/// per request by the route (from the caller and the request); everything is optional, since
/// an embedding app may know less (no socket address, no request id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    /// The session the write was made in (`sid`, the session token's, the cookie's).
    pub session_id: Option<String>,
    /// The admin acting as the caller, when that session is an impersonation
    /// (`session.impersonated_by`).
    pub impersonated_by: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
    /// The request id the response carries (`x-request-id`).
    pub request_id: Option<String>,
}

/// One admin action to record.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    /// The admin making the write.
    pub actor_id: &'a str,
    /// What is done, e.g. `user.ban`.
    pub action: &'a str,
    /// The user it is done to, if any.
    pub target_user_id: Option<&'a str>,
    /// The session it is done to, if any.
    pub target_session_id: Option<&'a str>,
    /// What changes, for whoever reads the trail.
    pub details: serde_json::Value,
    /// The request it is done in.
    pub context: &'a AuditContext,
}

/// Records `entry` on `conn`: inside the transaction of the write it records, so both commit
/// or neither does.
pub async fn record(conn: &mut PgConnection, entry: NewAuditEntry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO warden_audit_log (actor_id, action, target_user_id, target_session_id, details,
                                         session_id, impersonated_by, client_ip, request_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
        entry.actor_id,
        entry.action,
        entry.target_user_id,
        entry.target_session_id,
        entry.details,
        entry.context.session_id,
        entry.context.impersonated_by,
        entry.context.client_ip,
        entry.context.request_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Newest first, optionally only one actor's (the admin who acted: the session's user, or the
/// admin impersonating them) or one target's entries.
pub async fn list(
    pool: &PgPool,
    actor: Option<&str>,
    target: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AuditEntry>, i64), sqlx::Error> {
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM warden_audit_log
           WHERE ($1::text IS NULL OR actor_id = $1 OR impersonated_by = $1)
             AND ($2::text IS NULL OR target_user_id = $2)"#,
        actor,
        target
    )
    .fetch_one(pool)
    .await?;
    let entries = sqlx::query_as!(
        AuditEntry,
        r#"SELECT id, at, actor_id, action, target_user_id, target_session_id, details,
                  session_id, impersonated_by, client_ip, request_id
           FROM warden_audit_log
           WHERE ($1::text IS NULL OR actor_id = $1 OR impersonated_by = $1)
             AND ($2::text IS NULL OR target_user_id = $2)
           ORDER BY id DESC LIMIT $3 OFFSET $4"#,
        actor,
        target,
        limit,
        offset
    )
    .fetch_all(pool)
    .await?;
    Ok((entries, total))
}

//! warden's own `warden_audit_log` table: one row per admin write, inserted in the same
//! transaction as the write itself, so the trail and the data never disagree.

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
}

impl<'a> NewAuditEntry<'a> {
    /// An action on one user.
    pub fn on_user(
        actor_id: &'a str,
        action: &'a str,
        target_user_id: &'a str,
        details: serde_json::Value,
    ) -> Self {
        Self {
            actor_id,
            action,
            target_user_id: Some(target_user_id),
            target_session_id: None,
            details,
        }
    }
}

/// Records `entry` on `conn`: inside the transaction of the write it records, so both commit
/// or neither does.
pub async fn record(conn: &mut PgConnection, entry: NewAuditEntry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO warden_audit_log (actor_id, action, target_user_id, target_session_id, details)
           VALUES ($1, $2, $3, $4, $5)"#,
        entry.actor_id,
        entry.action,
        entry.target_user_id,
        entry.target_session_id,
        entry.details
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Newest first, optionally only one actor's or one target's entries.
pub async fn list(
    pool: &PgPool,
    actor: Option<&str>,
    target: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AuditEntry>, i64), sqlx::Error> {
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM warden_audit_log
           WHERE ($1::text IS NULL OR actor_id = $1) AND ($2::text IS NULL OR target_user_id = $2)"#,
        actor,
        target
    )
    .fetch_one(pool)
    .await?;
    let entries = sqlx::query_as!(
        AuditEntry,
        r#"SELECT id, at, actor_id, action, target_user_id, target_session_id, details
           FROM warden_audit_log
           WHERE ($1::text IS NULL OR actor_id = $1) AND ($2::text IS NULL OR target_user_id = $2)
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

//! warden's own `warden_audit_log` table: one row per admin write, inserted in the same
//! transaction as the write itself, so the trail and the data never disagree.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: OffsetDateTime,
    pub actor_id: String,
    pub action: String,
    pub target_user_id: Option<String>,
    pub target_session_id: Option<String>,
    pub details: serde_json::Value,
}

/// One admin action to record.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    pub actor_id: &'a str,
    pub action: &'a str,
    pub target_user_id: Option<&'a str>,
    pub target_session_id: Option<&'a str>,
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

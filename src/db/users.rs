//! The shared `"user"` table (Better-Auth's, with the admin plugin's columns).

use sqlx::PgPool;
use time::OffsetDateTime;

/// One row of `"user"`. Better-Auth writes it; warden reads it fresh on each request.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub image: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Comma-joined roles, as Better-Auth's admin plugin stores them.
    pub role: Option<String>,
    pub banned: Option<bool>,
    pub ban_reason: Option<String>,
    pub ban_expires: Option<OffsetDateTime>,
}

impl User {
    /// A ban applies while `banned` is set and it has no expiry or the expiry is ahead
    /// (Better-Auth's admin plugin ignores an expired ban the same way).
    pub fn ban_is_active(&self, now: OffsetDateTime) -> bool {
        self.banned == Some(true) && self.ban_expires.is_none_or(|until| until > now)
    }

    /// The roles, split on commas, trimmed, empty ones dropped.
    pub fn roles(&self) -> Vec<String> {
        self.role
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

pub async fn find_by_id(pool: &PgPool, id: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"SELECT id, name, email, email_verified, image, created_at, updated_at,
                  role, banned, ban_reason, ban_expires
           FROM "user" WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await
}

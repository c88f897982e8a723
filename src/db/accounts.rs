//! The shared `account` table (Better-Auth's linked providers). Only the non-secret columns
//! are ever selected: access/refresh/id tokens and the password hash stay in the database.

use sqlx::PgPool;
use time::OffsetDateTime;

/// A provider linked to a user, without its tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// The row's id.
    pub id: String,
    /// The provider: `credential` for email and password, else the OAuth provider's id.
    pub provider_id: String,
    /// The user's id at that provider.
    pub account_id: String,
    /// The granted scopes, as Better-Auth stores them (separated by commas or spaces).
    pub scope: Option<String>,
    /// When the provider was linked.
    pub created_at: OffsetDateTime,
    /// When the row last changed.
    pub updated_at: OffsetDateTime,
}

/// The user's linked providers, oldest first.
pub async fn list_for_user(pool: &PgPool, user_id: &str) -> Result<Vec<Account>, sqlx::Error> {
    sqlx::query_as!(
        Account,
        r#"SELECT id, provider_id, account_id, scope, created_at, updated_at
           FROM account WHERE user_id = $1 ORDER BY created_at, id"#,
        user_id
    )
    .fetch_all(pool)
    .await
}

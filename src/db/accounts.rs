//! The shared `account` table (Better-Auth's linked providers). Only the non-secret columns
//! are ever selected: access/refresh/id tokens and the password hash stay in the database.

use sqlx::PgPool;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub provider_id: String,
    pub account_id: String,
    pub scope: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

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

//! `/users/me`: the signed-in user's own profile.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use time::OffsetDateTime;

use crate::AppState;
use crate::auth::extract::AuthUser;
use crate::db::users::User;

pub fn router() -> Router<AppState> {
    Router::new().route("/users/me", get(me))
}

/// A user as the frontend sees it: camelCase like Better-Auth's own user object, ISO dates,
/// and the roles both as Better-Auth's comma-joined string and as an array.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub image: Option<String>,
    pub role: Option<String>,
    pub roles: Vec<String>,
    pub banned: bool,
    pub ban_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ban_expires: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<User> for UserProfile {
    fn from(user: User) -> Self {
        Self {
            roles: user.roles(),
            id: user.id,
            email: user.email,
            email_verified: user.email_verified,
            name: user.name,
            image: user.image,
            role: user.role,
            banned: user.banned.unwrap_or(false),
            ban_reason: user.ban_reason,
            ban_expires: user.ban_expires,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

async fn me(auth: AuthUser) -> Json<UserProfile> {
    Json(auth.user.into())
}

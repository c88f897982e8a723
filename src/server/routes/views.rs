//! JSON shapes of the API: camelCase like Better-Auth's own objects, ISO 8601 dates, and
//! never a secret (session tokens, account tokens and password hashes are not even selected).

use serde::Serialize;
use time::OffsetDateTime;

use crate::db::accounts::Account;
use crate::db::audit::AuditEntry;
use crate::db::sessions::Session;
use crate::db::users::User;

/// A user as the frontend sees it, with the roles both as Better-Auth's comma-joined string
/// and as an array.
// Borrows the row: the JSON is written straight from it, nothing is copied.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserProfile<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub email_verified: bool,
    pub name: &'a str,
    pub image: Option<&'a str>,
    /// Comma-joined, as Better-Auth stores it.
    pub role: Option<&'a str>,
    /// The same roles, split.
    #[schema(value_type = Vec<String>)]
    pub roles: Roles<'a>,
    pub banned: bool,
    pub ban_reason: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ban_expires: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl<'a> From<&'a User> for UserProfile<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            id: &user.id,
            email: &user.email,
            email_verified: user.email_verified,
            name: &user.name,
            image: user.image.as_deref(),
            role: user.role.as_deref(),
            roles: Roles(user.role.as_deref()),
            banned: user.banned.unwrap_or(false),
            ban_reason: user.ban_reason.as_deref(),
            ban_expires: user.ban_expires,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// A user as a JSON response, serialised straight from the row.
pub(crate) fn profile(user: &User) -> axum::response::Response {
    axum::response::IntoResponse::into_response(axum::Json(UserProfile::from(user)))
}

/// Better-Auth's comma-joined role string, serialised as an array without building one, by
/// the one rule every check follows (`db::users::role_names`): `"user, admin"` is `["user", " admin"]`,
/// so what a client shows is what warden and Better-Auth decide.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Roles<'a>(pub Option<&'a str>);

impl Serialize for Roles<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(crate::db::users::role_names(self.0))
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionView {
    pub id: String,
    pub user_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub impersonated_by: Option<String>,
    /// The session the request itself came with.
    pub current: bool,
}

impl SessionView {
    /// The view of `session`; `current` is the id of the session the request came with.
    pub(crate) fn new(session: Session, current: Option<&str>) -> Self {
        Self {
            current: current == Some(session.id.as_str()),
            id: session.id,
            user_id: session.user_id,
            created_at: session.created_at,
            updated_at: session.updated_at,
            expires_at: session.expires_at,
            // Better-Auth writes "" when it saw no address or agent: that is "unknown", null.
            ip_address: session.ip_address.filter(|v| !v.is_empty()),
            user_agent: session.user_agent.filter(|v| !v.is_empty()),
            impersonated_by: session.impersonated_by,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountView {
    pub id: String,
    pub provider_id: String,
    pub account_id: String,
    /// The granted scopes, split on commas or spaces (Better-Auth stores them joined).
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        Self {
            scopes: a
                .scope
                .as_deref()
                .unwrap_or_default()
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            id: a.id,
            provider_id: a.provider_id,
            account_id: a.account_id,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuditView {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor_id: String,
    pub action: String,
    pub target_user_id: Option<String>,
    pub target_session_id: Option<String>,
    /// What changed: e.g. `{"from": "user", "to": "admin"}`, `{"reason": "spam", "expiresAt": ...}`.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The session the write was made in (null when unknown, and on entries older than this field).
    pub session_id: Option<String>,
    /// The admin impersonating the actor in that session (Better-Auth's admin plugin): who
    /// really acted. Null when the session is not an impersonation.
    pub impersonated_by: Option<String>,
    /// The client's address (the socket's, or what a `TRUSTED_PROXIES` proxy reported).
    pub client_ip: Option<String>,
    /// The request's `x-request-id`, as its response carried it and its log lines name it.
    pub request_id: Option<String>,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor_id: e.actor_id,
            action: e.action,
            target_user_id: e.target_user_id,
            target_session_id: e.target_session_id,
            details: e.details,
            session_id: e.session_id,
            impersonated_by: e.impersonated_by,
            client_ip: e.client_ip,
            request_id: e.request_id,
        }
    }
}

/// A page of users, shaped like Better-Auth's `listUsers` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserList<'a> {
    pub users: Vec<UserProfile<'a>>,
    /// How many users match, over all pages; when `totalExact` is false (`countLimit` reached),
    /// at least this many.
    pub total: i64,
    /// Whether `total` is exact: `false` when counting stopped at `countLimit` (more match).
    pub total_exact: bool,
    pub limit: i64,
    pub offset: i64,
    /// Where the next page starts (pass it as `cursor`), when this one is full and more
    /// follow; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A page of the audit trail, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AuditList {
    pub entries: Vec<AuditView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// How many sessions a revocation removed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Revoked {
    pub revoked: u64,
}

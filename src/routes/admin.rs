//! `/admin`: user management with the same rules as Better-Auth's admin plugin, so an admin
//! switching between the two sees one behaviour. Every route asks the permission Better-Auth
//! would ask (a `RequirePermission` extractor: `user:list`, `user:ban`, ...; warden adds
//! `audit:list`), judged on the caller's fresh row and again inside every write's transaction;
//! every write runs in one transaction together with its audit-trail row, which records the
//! caller's session, the admin impersonating them in it (if any), the client's address and the
//! request id ([`RequestOrigin`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use sqlx::{PgConnection, Postgres, Transaction};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{AuthErrors, BadBody, Invalid, LastAdmin, NotFound};
use super::extract::{AppJson, AppQuery, IdPath, MAX_ID_LEN, RequestOrigin, checked_text};
use super::views::{AuditList, AuditView, Revoked, SessionView, UserList, UserProfile, profile};
use crate::auth::{AuthUser, Connector, Permission, RequirePermission};
use crate::db::audit::{self, NewAuditEntry};
use crate::db::users::{SearchField, SearchOperator, SortBy, SortDirection, User, UserQuery};
use crate::db::{sessions, users};
use crate::error::ApiError;
use crate::state::AppState;
use axum::response::{IntoResponse, Response};

/// The `/admin` routes.
/// What each route asks, as Better-Auth's admin plugin asks it (warden adds `audit:list`).
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

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(get_user, remove_user))
        .routes(routes!(set_role))
        .routes(routes!(ban_user))
        .routes(routes!(unban_user))
        .routes(routes!(user_sessions, revoke_user_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(audit_log))
}

/// The largest page a listing returns.
pub(crate) const MAX_LIMIT: i64 = 200;
/// The page size when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: i64 = 50;
const MAX_SEARCH_CHARS: usize = 256;
/// Past this many `warden_user_count` rows summed for a total, a listing folds them into one.
const COMPACT_USER_COUNT_ROWS: i64 = 256;
const MAX_REASON_CHARS: usize = 500;
/// Ten years: longer bans are forever bans (omit `expiresIn`).
const MAX_BAN_SECS: i64 = 10 * 365 * 24 * 3600;

fn page_bounds(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::ValidationFailed(format!(
            "`limit` must be 1 to {MAX_LIMIT}"
        )));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::ValidationFailed("`offset` cannot be negative".into()));
    }
    Ok((limit, offset))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Text to look for (case-insensitive; `%` and `_` match themselves). At most 256 characters.
    search: Option<String>,
    /// Where to search (default `email`).
    search_field: Option<SearchField>,
    /// How to match (default `contains`).
    search_operator: Option<SearchOperator>,
    /// Only users holding this role.
    role: Option<String>,
    /// Only banned (`true`) or not banned (`false`) users.
    banned: Option<bool>,
    /// Sort key (default `createdAt`, newest first).
    sort_by: Option<SortBy>,
    /// Sort direction (default `asc` when `sortBy` is given).
    sort_direction: Option<SortDirection>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Users to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

impl ListParams {
    fn validate(self) -> Result<UserQuery, ApiError> {
        let (limit, offset) = page_bounds(self.limit, self.offset)?;
        let search = match self.search {
            Some(text) if !text.is_empty() => {
                checked_text("search", &text, MAX_SEARCH_CHARS)?;
                Some((
                    self.search_field.unwrap_or(SearchField::Email),
                    self.search_operator.unwrap_or(SearchOperator::Contains),
                    text,
                ))
            }
            _ => None,
        };
        if let Some(role) = &self.role {
            checked_text("role", role, MAX_ID_LEN)?;
        }
        // Newest first unless a sort is asked for.
        let (sort_by, direction) = match (self.sort_by, self.sort_direction) {
            (None, None) => (SortBy::CreatedAt, SortDirection::Desc),
            (by, dir) => (by.unwrap_or(SortBy::CreatedAt), dir.unwrap_or(SortDirection::Asc)),
        };
        Ok(UserQuery {
            search,
            role: self.role.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()),
            banned: self.banned,
            sort_by,
            direction,
            limit,
            offset,
        })
    }
}

/// Search, filter, sort and page through users, like Better-Auth's `listUsers`.
#[utoipa::path(
    get, path = "/admin/users", tag = "admin", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "A page of users", body = UserList), AuthErrors, Invalid)
)]
async fn list_users(
    State(state): State<AppState>,
    _caller: RequirePermission<ListUsers>,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<Response, ApiError> {
    let query = params.validate()?;
    // A replica may lag a moment behind; a listing can afford that, authorisation cannot.
    let page = users::list_page(&state.read_db, &query).await?;
    if page.count_rows > COMPACT_USER_COUNT_ROWS {
        // The primary folds the delta rows; the answer does not wait for it.
        let db = state.db().clone();
        tokio::spawn(async move {
            if let Err(error) = users::compact_user_count(&db).await {
                tracing::warn!(%error, "could not fold the user count");
            }
        });
    }
    Ok(Json(UserList {
        users: page.users.iter().map(UserProfile::from).collect(),
        total: page.total,
        limit: query.limit,
        offset: query.offset,
    })
    .into_response())
}

/// One user.
#[utoipa::path(
    get, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The user", body = UserProfile), AuthErrors, NotFound)
)]
async fn get_user(
    State(state): State<AppState>,
    _caller: RequirePermission<GetUser>,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let user = users::find_by_id(state.db(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(profile(&user))
}

async fn locked_user(conn: &mut PgConnection, id: &str) -> Result<User, ApiError> {
    users::find_for_update(conn, id).await?.ok_or(ApiError::NotFound)
}

/// Begins an admin write: one transaction, serialised with every other admin write, in which
/// the actor is read again. An admin banned, demoted or removed since their request was
/// authenticated (by another admin's write that committed first) is refused here.
async fn begin_admin_write<P: Permission>(
    state: &AppState,
    actor: &AuthUser,
) -> Result<Transaction<'static, Postgres>, ApiError> {
    let mut tx = state.db().begin().await?;
    users::lock_admin_changes(&mut tx).await?;
    let fresh = users::find_by_id(&mut *tx, &actor.user.id)
        .await?
        .ok_or(ApiError::UserNotFound)?;
    if fresh.ban_is_active(OffsetDateTime::now_utc()) {
        return Err(ApiError::Banned {
            reason: fresh.ban_reason,
            expires: fresh.ban_expires,
        });
    }
    if !state.auth.has_permission(&fresh, &P::request(), Connector::And) {
        return Err(ApiError::Forbidden(format!(
            "this needs the permission {}",
            P::describe()
        )));
    }
    Ok(tx)
}

/// Refuses a change that would leave no usable admin (an admin with no active ban). Call
/// inside [`begin_admin_write`]'s transaction.
async fn ensure_another_admin(
    state: &AppState,
    conn: &mut PgConnection,
    target: &User,
) -> Result<(), ApiError> {
    let policy = state.auth.policy();
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

/// `{"role": "admin"}` or `{"roles": ["admin", "user"]}`: exactly one of the two; every role
/// must be one of `ROLES`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleChange {
    #[schema(example = "admin")]
    role: Option<String>,
    #[schema(example = json!(["admin", "user"]))]
    roles: Option<Vec<String>>,
}

impl RoleChange {
    fn validate(self, assignable: &[String]) -> Result<Vec<String>, ApiError> {
        let requested = match (self.role, self.roles) {
            (Some(role), None) => vec![role],
            (None, Some(roles)) => roles,
            _ => {
                return Err(ApiError::ValidationFailed(
                    "send exactly one of `role` and `roles`".into(),
                ));
            }
        };
        let mut roles: Vec<String> = Vec::new();
        for role in requested {
            let role = role.trim().to_owned();
            if !assignable.contains(&role) {
                return Err(ApiError::ValidationFailed(format!(
                    "unknown role {role:?}; assignable roles are {}",
                    assignable.join(", ")
                )));
            }
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        if roles.is_empty() {
            return Err(ApiError::ValidationFailed("give at least one role".into()));
        }
        Ok(roles)
    }
}

/// Sets a user's roles (stored comma-joined, as Better-Auth does). Demoting the last admin is refused.
#[utoipa::path(
    put, path = "/admin/users/{id}/role", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "User id")), request_body = RoleChange,
    responses((status = 200, description = "The updated user", body = UserProfile), AuthErrors, NotFound, Invalid, LastAdmin, BadBody)
)]
async fn set_role(
    State(state): State<AppState>,
    RequirePermission { caller: admin, .. }: RequirePermission<SetRole>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
    AppJson(change): AppJson<RoleChange>,
) -> Result<Response, ApiError> {
    let roles = change.validate(&state.auth.policy().assignable_roles)?;
    let mut tx = begin_admin_write::<SetRole>(&state, &admin).await?;
    let target = locked_user(&mut tx, &id).await?;
    if !state.auth.policy().is_admin_with_roles(&target.id, &roles) {
        ensure_another_admin(&state, &mut tx, &target).await?;
    }
    let joined = roles.join(",");
    let updated = users::set_role(&mut tx, &id, &joined).await?;
    let context = origin.audit_context(&admin);
    audit::record(
        &mut tx,
        NewAuditEntry::on_user(
            &context,
            &admin.user.id,
            "user.set_role",
            &id,
            json!({ "from": target.role, "to": joined }),
        ),
    )
    .await?;
    tx.commit().await?;
    state.auth.rows().invalidate_user(&id);
    Ok(profile(&updated))
}

/// The whole body is optional: no body bans forever with the reason "No reason".
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BanRequest {
    /// 1 to 500 characters (default "No reason").
    #[schema(example = "spam", min_length = 1, max_length = 500)]
    reason: Option<String>,
    /// Seconds until the ban lifts (1 to ten years); omit for a permanent ban.
    #[schema(example = 86400, minimum = 1, maximum = 315360000)]
    expires_in: Option<i64>,
}

/// A JSON body that may be left out entirely (`POST .../ban` with no body bans with defaults).
fn optional_json<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::ValidationFailed(e.to_string()),
        _ => ApiError::InvalidJson(e.to_string()),
    })
}

/// Bans a user and deletes all their sessions (Better-Auth's rules). Not yourself.
#[utoipa::path(
    post, path = "/admin/users/{id}/ban", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "User id")),
    request_body(content = Option<BanRequest>, description = "Optional"),
    responses((status = 200, description = "The banned user", body = UserProfile), AuthErrors, NotFound, Invalid, BadBody)
)]
async fn ban_user(
    State(state): State<AppState>,
    RequirePermission { caller: admin, .. }: RequirePermission<BanUsers>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: BanRequest = optional_json(&body)?;
    let reason = match request.reason.map(|r| r.trim().to_owned()) {
        None => "No reason".to_owned(),
        Some(r) if r.is_empty() || r.chars().count() > MAX_REASON_CHARS => {
            return Err(ApiError::ValidationFailed(format!(
                "`reason` must be 1 to {MAX_REASON_CHARS} characters"
            )));
        }
        Some(r) => {
            checked_text("reason", &r, MAX_REASON_CHARS)?;
            r
        }
    };
    if let Some(secs) = request.expires_in
        && !(1..=MAX_BAN_SECS).contains(&secs)
    {
        return Err(ApiError::ValidationFailed(format!(
            "`expiresIn` must be 1 to {MAX_BAN_SECS} seconds; omit it for a permanent ban"
        )));
    }
    if id == admin.user.id {
        return Err(ApiError::SelfAction("you cannot ban yourself".into()));
    }
    let mut tx = begin_admin_write::<BanUsers>(&state, &admin).await?;
    let target = locked_user(&mut tx, &id).await?;
    ensure_another_admin(&state, &mut tx, &target).await?;
    let banned = users::ban(&mut tx, &id, &reason, request.expires_in).await?;
    // Like Better-Auth: a ban signs the user out everywhere.
    let revoked_ids = sessions::delete_all_for_user(&mut tx, &id, None).await?;
    let revoked = revoked_ids.len();
    let expires = banned
        .ban_expires
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
    let context = origin.audit_context(&admin);
    audit::record(
        &mut tx,
        NewAuditEntry::on_user(
            &context,
            &admin.user.id,
            "user.ban",
            &id,
            json!({ "reason": reason, "expiresAt": expires, "sessionsRevoked": revoked }),
        ),
    )
    .await?;
    tx.commit().await?;
    state.auth.rows().invalidate_user(&id);
    state.auth.rows().invalidate_sessions(&revoked_ids);
    Ok(profile(&banned))
}

/// Lifts a ban: clears `banned`, `banReason` and `banExpires`.
#[utoipa::path(
    post, path = "/admin/users/{id}/unban", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The user", body = UserProfile), AuthErrors, NotFound)
)]
async fn unban_user(
    State(state): State<AppState>,
    RequirePermission { caller: admin, .. }: RequirePermission<BanUsers>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let mut tx = begin_admin_write::<BanUsers>(&state, &admin).await?;
    let before = locked_user(&mut tx, &id).await?;
    let user = users::unban(&mut tx, &id).await?;
    let context = origin.audit_context(&admin);
    audit::record(
        &mut tx,
        NewAuditEntry::on_user(
            &context,
            &admin.user.id,
            "user.unban",
            &id,
            json!({ "previousReason": before.ban_reason, "wasBanned": before.banned.unwrap_or(false) }),
        ),
    )
    .await?;
    tx.commit().await?;
    state.auth.rows().invalidate_user(&id);
    Ok(profile(&user))
}

/// A user's live sessions.
#[utoipa::path(
    get, path = "/admin/users/{id}/sessions", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "Live sessions, newest first", body = [SessionView]), AuthErrors, NotFound)
)]
async fn user_sessions(
    State(state): State<AppState>,
    RequirePermission { caller: admin, .. }: RequirePermission<ListSessions>,
    IdPath(id): IdPath,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    users::find_by_id(state.db(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let list = sessions::list_live_for_user(state.db(), &id).await?;
    let current = admin.session_id.as_deref();
    Ok(Json(
        list.into_iter().map(|s| SessionView::new(s, current)).collect(),
    ))
}

/// Revokes all of a user's sessions (your own: all but the one in use).
#[utoipa::path(
    delete, path = "/admin/users/{id}/sessions", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "How many sessions were revoked", body = Revoked), AuthErrors, NotFound)
)]
async fn revoke_user_sessions(
    State(state): State<AppState>,
    RequirePermission { caller: admin, .. }: RequirePermission<RevokeSessions>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
) -> Result<Json<Revoked>, ApiError> {
    let mut tx = begin_admin_write::<RevokeSessions>(&state, &admin).await?;
    locked_user(&mut tx, &id).await?;
    // An admin revoking their own sessions keeps the one they are using.
    let keep = if id == admin.user.id {
        admin.session_id.as_deref()
    } else {
        None
    };
    let revoked_ids = sessions::delete_all_for_user(&mut tx, &id, keep).await?;
    let revoked = revoked_ids.len() as u64;
    let context = origin.audit_context(&admin);
    audit::record(
        &mut tx,
        NewAuditEntry::on_user(
            &context,
            &admin.user.id,
            "user.revoke_sessions",
            &id,
            json!({ "sessionsRevoked": revoked }),
        ),
    )
    .await?;
    tx.commit().await?;
    state.auth.rows().invalidate_sessions(&revoked_ids);
    Ok(Json(Revoked { revoked }))
}

/// Revokes one session.
#[utoipa::path(
    delete, path = "/admin/sessions/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"), AuthErrors, NotFound)
)]
async fn revoke_session(
    State(state): State<AppState>,
    RequirePermission { caller: admin, .. }: RequirePermission<RevokeSessions>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    let mut tx = begin_admin_write::<RevokeSessions>(&state, &admin).await?;
    let owner = sessions::delete_by_id(&mut tx, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let context = origin.audit_context(&admin);
    audit::record(
        &mut tx,
        NewAuditEntry {
            actor_id: &admin.user.id,
            action: "session.revoke",
            target_user_id: Some(&owner),
            target_session_id: Some(&id),
            details: json!({}),
            context: &context,
        },
    )
    .await?;
    tx.commit().await?;
    state.auth.rows().invalidate_session(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a user; their sessions and accounts go by cascade. Not yourself, not the last admin.
#[utoipa::path(
    delete, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Removed"), AuthErrors, NotFound, Invalid, LastAdmin)
)]
async fn remove_user(
    State(state): State<AppState>,
    RequirePermission { caller: admin, .. }: RequirePermission<DeleteUsers>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    if id == admin.user.id {
        return Err(ApiError::SelfAction("you cannot remove yourself".into()));
    }
    let mut tx = begin_admin_write::<DeleteUsers>(&state, &admin).await?;
    let target = locked_user(&mut tx, &id).await?;
    ensure_another_admin(&state, &mut tx, &target).await?;
    users::delete(&mut tx, &id).await?;
    let context = origin.audit_context(&admin);
    audit::record(
        &mut tx,
        NewAuditEntry::on_user(
            &context,
            &admin.user.id,
            "user.remove",
            &id,
            json!({ "email": target.email, "role": target.role }),
        ),
    )
    .await?;
    tx.commit().await?;
    // Its sessions went by cascade; without the user row they are refused anyway.
    state.auth.rows().invalidate_user(&id);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Only entries by this admin (user id): as the session's user, or impersonating someone.
    actor: Option<String>,
    /// Only entries about this user (user id).
    target: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    #[param(minimum = 0)]
    offset: Option<i64>,
}

/// Every admin write, newest first.
#[utoipa::path(
    get, path = "/admin/audit", tag = "admin", security(("bearer" = [])), params(AuditParams),
    responses((status = 200, description = "A page of the audit trail", body = AuditList), AuthErrors, Invalid)
)]
async fn audit_log(
    State(state): State<AppState>,
    _caller: RequirePermission<ReadAudit>,
    AppQuery(params): AppQuery<AuditParams>,
) -> Result<Json<AuditList>, ApiError> {
    let (limit, offset) = page_bounds(params.limit, params.offset)?;
    for (name, value) in [("actor", &params.actor), ("target", &params.target)] {
        if let Some(value) = value {
            checked_text(name, value, MAX_ID_LEN)?;
        }
    }
    let (entries, total) = audit::list(
        &state.read_db,
        params.actor.as_deref(),
        params.target.as_deref(),
        limit,
        offset,
    )
    .await?;
    Ok(Json(AuditList {
        entries: entries.into_iter().map(AuditView::from).collect(),
        total,
        limit,
        offset,
    }))
}

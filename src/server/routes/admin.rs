//! `/admin`: user management with the same rules as Better-Auth's admin plugin, so an admin
//! switching between the two sees one behaviour. Every route asks the permission Better-Auth
//! would ask (a `RequirePermission` extractor: `user:list`, `user:ban`, ...; warden adds
//! `audit:list`), judged on the caller's fresh row. The routes here are HTTP only: extract,
//! validate the input into typed values, read, or hand the write to `crate::server::admin` (which
//! re-checks the caller inside the write's transaction, applies the rules, records the audit
//! entry and refreshes the cache), and shape the answer. The audit entry records the caller's
//! session, the admin impersonating them in it (if any), the client's address and the request
//! id ([`RequestOrigin`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{AuthErrors, BadBody, Invalid, LastAdmin, NotFound};
use super::extract::{AppJson, AppQuery, IdPath, MAX_ID_LEN, RequestOrigin, checked_text};
use super::views::{AuditList, AuditView, Revoked, SessionView, UserList, UserProfile, profile};
use crate::auth::{Permission, RequirePermission};
use crate::db::audit;
use crate::db::users;
use crate::db::users::{SearchField, SearchOperator, SortBy, SortDirection, UserQuery};
use crate::error::ApiError;
use crate::server::admin::{
    AdminWrite, Ban, BanUsers, DeleteUsers, GetUser, ListSessions, ListUsers, ReadAudit, RevokeSessions,
    SetRole,
};
use crate::server::state::AppState;
use axum::response::{IntoResponse, Response};

/// The `/admin` routes.
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

/// The largest `countLimit`.
const MAX_COUNT_LIMIT: i64 = 1_000_000;

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
    /// Keyset paging: the `nextCursor` of the page before, in the same order (then no
    /// `offset`). Every page then costs the same, however deep.
    cursor: Option<String>,
    /// Count a search's matches only up to this many (1 to 1,000,000): past it `totalExact` is
    /// false and `total` a lower bound (this number, or the users up to the page's last). An
    /// exact count of a broad search reads every match; listings without `search` are exact.
    #[param(minimum = 1, maximum = 1000000)]
    count_limit: Option<i64>,
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
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(_) if offset > 0 => {
                return Err(ApiError::ValidationFailed(
                    "`cursor` and `offset` cannot both place the page".into(),
                ));
            }
            Some(cursor) => Some(super::cursor::decode(cursor, sort_by, direction)?),
        };
        if self
            .count_limit
            .is_some_and(|n| !(1..=MAX_COUNT_LIMIT).contains(&n))
        {
            return Err(ApiError::ValidationFailed(format!(
                "`countLimit` must be 1 to {MAX_COUNT_LIMIT}"
            )));
        }
        Ok(UserQuery {
            search,
            role: self.role.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()),
            banned: self.banned,
            sort_by,
            direction,
            limit,
            offset,
            after,
            count_limit: self.count_limit,
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
        total_exact: page.total_exact,
        limit: query.limit,
        offset: query.offset,
        next_cursor: page
            .next
            .as_ref()
            .map(|after| super::cursor::encode(after, query.sort_by, query.direction)),
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

/// The write `caller` makes in this request, recording where the request came from.
fn admin_write<'a, P: Permission>(
    state: &'a AppState,
    caller: &'a RequirePermission<P>,
    origin: RequestOrigin,
) -> AdminWrite<'a, P> {
    AdminWrite::new(&state.auth, caller, origin.audit_context(&caller.caller))
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
    caller: RequirePermission<SetRole>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
    AppJson(change): AppJson<RoleChange>,
) -> Result<Response, ApiError> {
    let roles = change.validate(&state.auth.policy().assignable_roles)?;
    let updated = admin_write(&state, &caller, origin).set_role(&id, &roles).await?;
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

impl BanRequest {
    fn validate(self) -> Result<Ban, ApiError> {
        let reason = match self.reason.map(|r| r.trim().to_owned()) {
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
        if let Some(secs) = self.expires_in
            && !(1..=MAX_BAN_SECS).contains(&secs)
        {
            return Err(ApiError::ValidationFailed(format!(
                "`expiresIn` must be 1 to {MAX_BAN_SECS} seconds; omit it for a permanent ban"
            )));
        }
        Ok(Ban {
            reason,
            expires_in: self.expires_in,
        })
    }
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
    caller: RequirePermission<BanUsers>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ban = optional_json::<BanRequest>(&body)?.validate()?;
    let banned = admin_write(&state, &caller, origin).ban(&id, ban).await?;
    Ok(profile(&banned))
}

/// Lifts a ban: clears `banned`, `banReason` and `banExpires`.
#[utoipa::path(
    post, path = "/admin/users/{id}/unban", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The user", body = UserProfile), AuthErrors, NotFound)
)]
async fn unban_user(
    State(state): State<AppState>,
    caller: RequirePermission<BanUsers>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let user = admin_write(&state, &caller, origin).unban(&id).await?;
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
    let list = state.auth.session_store().list_live(state.db(), &id).await?;
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
    caller: RequirePermission<RevokeSessions>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
) -> Result<Json<Revoked>, ApiError> {
    let revoked = admin_write(&state, &caller, origin).revoke_sessions(&id).await?;
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
    caller: RequirePermission<RevokeSessions>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    admin_write(&state, &caller, origin).revoke_session(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a user; their sessions and accounts go by cascade. Not yourself, not the last admin.
#[utoipa::path(
    delete, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Removed"), AuthErrors, NotFound, Invalid, LastAdmin)
)]
async fn remove_user(
    State(state): State<AppState>,
    caller: RequirePermission<DeleteUsers>,
    origin: RequestOrigin,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    admin_write(&state, &caller, origin).remove(&id).await?;
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

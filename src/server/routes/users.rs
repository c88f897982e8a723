//! `/users/me`: the signed-in user's own profile, sessions and linked accounts.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{AuthErrors, BadBody, Invalid, NotFound};
use super::extract::{AppJson, IdPath};
use super::views::{AccountView, Revoked, SessionView, UserProfile, profile};
use crate::auth::{AuthUser, Connector, Statements};
use crate::db::users::ProfileChange;
use crate::db::{accounts, users};
use crate::error::ApiError;
use crate::server::state::AppState;
use axum::response::Response;

/// The `/users/me` routes.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, update_me))
        .routes(routes!(my_sessions, revoke_my_other_sessions))
        .routes(routes!(revoke_my_session))
        .routes(routes!(my_accounts))
        .routes(routes!(has_permission))
}

/// The caller's own profile, read fresh from the database.
#[utoipa::path(
    get, path = "/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The caller's profile", body = UserProfile), AuthErrors)
)]
async fn me(auth: AuthUser) -> Response {
    profile(&auth.user)
}

/// `PATCH /users/me`: only `name` and `image`; an absent field stays as it is.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfilePatch {
    /// 1 to 100 characters (trimmed); cannot be null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100, example = "Ada Lovelace")]
    name: Option<Option<String>>,
    /// An http(s) URL of at most 2048 characters, or null to remove the picture.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2048, example = "https://example.com/ada.png")]
    image: Option<Option<String>>,
}

/// Tells `"field": null` (Some(None)) from an absent field (None).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The longest display name, in characters (after trimming).
pub(crate) const MAX_NAME_CHARS: usize = 100;
/// The longest picture URL, in bytes.
pub(crate) const MAX_IMAGE_URL_LEN: usize = 2048;

impl ProfilePatch {
    fn validate(self) -> Result<ProfileChange, ApiError> {
        if self.name.is_none() && self.image.is_none() {
            return Err(ApiError::ValidationFailed(
                "send at least one of `name` and `image`".into(),
            ));
        }
        let name = match self.name {
            None => None,
            Some(None) => return Err(ApiError::ValidationFailed("`name` cannot be null".into())),
            Some(Some(name)) => {
                let name = name.trim().to_owned();
                let chars = name.chars().count();
                if chars == 0 || chars > MAX_NAME_CHARS {
                    return Err(ApiError::ValidationFailed(format!(
                        "`name` must be 1 to {MAX_NAME_CHARS} characters"
                    )));
                }
                if name.chars().any(char::is_control) {
                    return Err(ApiError::ValidationFailed(
                        "`name` cannot contain control characters".into(),
                    ));
                }
                Some(name)
            }
        };
        let image = match self.image {
            Some(Some(url)) => Some(Some(validate_image_url(url)?)),
            other => other,
        };
        Ok(ProfileChange { name, image })
    }
}

fn validate_image_url(url: String) -> Result<String, ApiError> {
    let bad = || {
        ApiError::ValidationFailed(format!(
            "`image` must be an http(s) URL of at most {MAX_IMAGE_URL_LEN} characters, or null"
        ))
    };
    if url.len() > MAX_IMAGE_URL_LEN || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let parsed = reqwest::Url::parse(&url).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(url)
}

/// Changes the caller's `name` and/or `image`; nothing else can be changed here.
#[utoipa::path(
    patch, path = "/users/me", tag = "users", security(("bearer" = [])), request_body = ProfilePatch,
    responses((status = 200, description = "The updated profile", body = UserProfile), AuthErrors, Invalid, BadBody)
)]
async fn update_me(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(patch): AppJson<ProfilePatch>,
) -> Result<Response, ApiError> {
    let change = patch.validate()?;
    let mut conn = state.db().acquire().await?;
    let user = users::update_profile(&mut conn, &auth.user.id, &change)
        .await?
        .ok_or(ApiError::UserNotFound)?;
    // The change notification follows in milliseconds; a read right after must not wait for it.
    state.auth.rows().invalidate_user(&user.id);
    Ok(profile(&user))
}

/// The caller's live sessions; `current` marks the one this request came with.
#[utoipa::path(
    get, path = "/users/me/sessions", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "Live sessions, newest first", body = [SessionView]), AuthErrors)
)]
async fn my_sessions(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let list = state
        .auth
        .session_store()
        .list_live(state.db(), &auth.user.id)
        .await?;
    let current = auth.session_id.as_deref();
    Ok(Json(
        list.into_iter().map(|s| SessionView::new(s, current)).collect(),
    ))
}

/// Revokes one of the caller's own sessions. Another user's session id answers 404, the same
/// as an unknown id, so ids of other users' sessions cannot be probed.
#[utoipa::path(
    delete, path = "/users/me/sessions/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"), AuthErrors, NotFound)
)]
async fn revoke_my_session(
    State(state): State<AppState>,
    auth: AuthUser,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    // One transaction: with sessions in Redis too, a Redis error leaves the row as it was.
    let mut tx = state.db().begin().await?;
    if state
        .auth
        .session_store()
        .end_one(&mut tx, &auth.user.id, &id)
        .await?
    {
        tx.commit().await?;
        state.auth.rows().invalidate_session(&id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Signs the caller out everywhere else: every session but the current one.
#[utoipa::path(
    delete, path = "/users/me/sessions", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "How many sessions were revoked", body = Revoked), AuthErrors)
)]
async fn revoke_my_other_sessions(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Revoked>, ApiError> {
    let mut tx = state.db().begin().await?;
    let ids = state
        .auth
        .session_store()
        .end_others(&mut tx, &auth.user.id, auth.session_id.as_deref())
        .await?;
    tx.commit().await?;
    state.auth.rows().invalidate_sessions(&ids);
    Ok(Json(Revoked {
        revoked: ids.len() as u64,
    }))
}

/// The providers linked to the caller's account; never tokens or the password hash.
#[utoipa::path(
    get, path = "/users/me/accounts", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "Linked accounts", body = [AccountView]), AuthErrors)
)]
async fn my_accounts(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    let list = accounts::list_for_user(state.db(), &auth.user.id).await?;
    Ok(Json(list.into_iter().map(AccountView::from).collect()))
}

/// `POST /users/me/has-permission`: Better-Auth's body, `{"permissions": {"user": ["list"]}}`
/// (or `"permission"`), plus an optional `"connector"`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PermissionCheck {
    /// Resource → actions wanted, e.g. `{"user": ["list", "get"], "session": ["revoke"]}`.
    #[schema(value_type = Option<Object>, example = json!({"user": ["list"]}))]
    permissions: Option<Statements>,
    /// The same, under Better-Auth's other name for it (send one of the two).
    #[schema(value_type = Option<Object>)]
    permission: Option<Statements>,
    /// `AND` (default): everything asked; `OR`: one resource's actions are enough.
    connector: Option<Connector>,
}

/// Better-Auth's answer shape: `{"error": null, "success": true}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct PermissionAnswer {
    /// Always null (Better-Auth's shape; a refusal is `success: false`).
    error: Option<String>,
    /// Whether the caller's roles grant what was asked.
    success: bool,
}

const MAX_PERMISSION_ENTRIES: usize = 64;

impl PermissionCheck {
    /// The statements asked (`permissions` or `permission`, exactly one) and the connector.
    pub(crate) fn validate(self) -> Result<(Statements, Connector), ApiError> {
        let permissions = match (self.permissions, self.permission) {
            (Some(p), None) | (None, Some(p)) => p,
            _ => {
                return Err(ApiError::ValidationFailed(
                    "send exactly one of `permissions` and `permission`".into(),
                ));
            }
        };
        let entries: usize = permissions.values().map(|a| a.len().max(1)).sum();
        if entries > MAX_PERMISSION_ENTRIES {
            return Err(ApiError::ValidationFailed(format!(
                "ask at most {MAX_PERMISSION_ENTRIES} actions at once"
            )));
        }
        Ok((permissions, self.connector.unwrap_or_default()))
    }
}

impl PermissionAnswer {
    pub(crate) fn new(success: bool) -> Self {
        Self { error: None, success }
    }
}

/// Whether the caller may do something, decided as Better-Auth's
/// `POST /api/auth/admin/has-permission` decides it (the fresh row's roles; `ADMIN_USER_IDS`
/// pass), so a frontend can show or hide its buttons with the same call on either server.
#[utoipa::path(
    post, path = "/users/me/has-permission", tag = "users", security(("bearer" = [])), request_body = PermissionCheck,
    responses((status = 200, description = "Whether the caller has the permissions", body = PermissionAnswer), AuthErrors, Invalid, BadBody)
)]
async fn has_permission(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(check): AppJson<PermissionCheck>,
) -> Result<Json<PermissionAnswer>, ApiError> {
    let (permissions, connector) = check.validate()?;
    let success = state.auth.has_permission(&auth.user, &permissions, connector);
    Ok(Json(PermissionAnswer::new(success)))
}

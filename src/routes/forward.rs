//! `GET /auth/verify`: forward auth, so any backend (Python, Go, Node, ...) can sit behind
//! warden without linking anything. nginx (`auth_request`), Traefik (`forwardAuth`) and Caddy
//! (`forward_auth`) send each incoming request's headers here first:
//!
//! - a good credential → 200, empty body, and `X-Auth-User-Id`, `X-Auth-User-Email`,
//!   `X-Auth-User-Role` (the roles, comma-joined), `X-Auth-Session-Id` (when known), and for
//!   the session's active organization `X-Auth-Org-Id` and `X-Auth-Org-Role` (when the caller
//!   is a member), which the proxy copies onto the request it forwards;
//! - otherwise exactly the 401/403 problem+json (with `WWW-Authenticate`) `/users/me` gives.
//!
//! `?role=<role>` (one of `ROLES` or `ADMIN_ROLES`) also requires the role: 403 `forbidden`
//! without it (for an admin role, Better-Auth's admin rule decides, `ADMIN_USER_IDS` included).
//! The original method and URI come from `X-Forwarded-Method`/`X-Forwarded-Uri` (Traefik,
//! Caddy) or `X-Original-Method`/`X-Original-URI` (nginx): the method decides the cookie rule
//! (`COOKIE_AUTH`), and both are logged (the path only; a query string can hold secrets).

use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{AuthErrors, Invalid};
use super::extract::{AppQuery, checked_text};
use crate::auth::AuthUser;
use crate::db::organizations::Membership;
use crate::error::ApiError;
use crate::state::AppState;

/// The caller's user id.
pub(crate) const X_AUTH_USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
/// The caller's email address.
pub(crate) const X_AUTH_USER_EMAIL: HeaderName = HeaderName::from_static("x-auth-user-email");
/// The caller's roles, comma-joined.
pub(crate) const X_AUTH_USER_ROLE: HeaderName = HeaderName::from_static("x-auth-user-role");
/// The session behind the credential, when known.
pub(crate) const X_AUTH_SESSION_ID: HeaderName = HeaderName::from_static("x-auth-session-id");
/// The session's active organization, when the caller is a member of it.
pub(crate) const X_AUTH_ORG_ID: HeaderName = HeaderName::from_static("x-auth-org-id");
/// The caller's roles in that organization, comma-joined.
pub(crate) const X_AUTH_ORG_ROLE: HeaderName = HeaderName::from_static("x-auth-org-role");

/// The `/auth/verify` route.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VerifyParams {
    /// Also require this role (one of `ROLES` or `ADMIN_ROLES`).
    role: Option<String>,
}

/// Forward auth: 200 with `X-Auth-*` headers for a good credential, else the same 401/403 as
/// `/users/me`.
#[utoipa::path(
    get, path = "/auth/verify", tag = "forward-auth", security(("bearer" = [])), params(VerifyParams),
    responses(
        (status = 200, description = "Signed in; the headers name the caller", headers(
            ("x-auth-user-id" = String, description = "The user's id"),
            ("x-auth-user-email" = String, description = "The user's email"),
            ("x-auth-user-role" = String, description = "The user's roles, comma-joined"),
            ("x-auth-session-id" = String, description = "The session behind the credential, when known"),
            ("x-auth-org-id" = String, description = "The session's active organization, when the caller is a member"),
            ("x-auth-org-role" = String, description = "The caller's roles in that organization, comma-joined"),
        )),
        AuthErrors, Invalid
    )
)]
async fn verify(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<VerifyParams>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let (method, uri) = original_request(&parts.headers);
    tracing::debug!(original_method = %method, original_path = %uri, "forward auth");
    if let Some(role) = &params.role {
        checked_text("role", role, 64)?;
        let policy = state.auth.policy();
        if !policy.assignable_roles.contains(role) && !policy.admin_roles.contains(role) {
            return Err(ApiError::ValidationFailed(format!("unknown role {role:?}")));
        }
    }
    let client = state.auth.client_ips().client_ip(&parts);
    let caller = state
        .auth
        .authenticate_request(&method, &parts.headers, client)
        .await?
        .ok_or(ApiError::MissingToken)?;
    if let Some(role) = &params.role {
        let has = if state.auth.policy().admin_roles.contains(role) {
            state.auth.is_admin(&caller.user)
        } else {
            caller.user.roles().iter().any(|r| r == role)
        };
        if !has {
            return Err(ApiError::Forbidden(format!("this requires the role {role:?}")));
        }
    }
    let membership = state.auth.active_membership(&caller).await?;
    Ok(identity_response(&caller, membership.as_ref()))
}

/// The original request's method and path, as the proxy reports them.
fn original_request(headers: &HeaderMap) -> (Method, String) {
    let header = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| headers.get(*n).and_then(|v| v.to_str().ok()))
            .map(str::to_owned)
    };
    let method = header(["x-forwarded-method", "x-original-method"])
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .unwrap_or(Method::GET);
    let path: String = header(["x-forwarded-uri", "x-original-uri"])
        .map(|u| {
            u.split('?')
                .next()
                .unwrap_or_default()
                .chars()
                .take(256)
                .collect()
        })
        .unwrap_or_default();
    (method, path)
}

fn identity_response(caller: &AuthUser, membership: Option<&Membership>) -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let user = &caller.user;
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
            headers.insert(name, value);
        }
    };
    set(X_AUTH_USER_ID, &user.id);
    set(X_AUTH_USER_EMAIL, &user.email);
    set(X_AUTH_USER_ROLE, &user.roles().join(","));
    if let Some(session) = &caller.session_id {
        set(X_AUTH_SESSION_ID, session);
    }
    if let Some(membership) = membership {
        set(X_AUTH_ORG_ID, &membership.organization_id);
        set(X_AUTH_ORG_ROLE, &membership.role);
    }
    response
}

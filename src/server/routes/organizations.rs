//! Organizations (Better-Auth's organization plugin), as their members see them:
//! `GET /users/me/organizations` (mine, the session's active one marked), and, for members
//! only, `GET /orgs/{orgId}` and `GET /orgs/{orgId}/members`. Anyone else gets 404
//! `not_found`: an organization's existence is not revealed to outsiders.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{AuthErrors, BadBody, Invalid, NotFound};
use super::extract::AppJson;
use super::users::{PermissionAnswer, PermissionCheck};
use crate::auth::policy::access::parse_role_list;
use crate::auth::{AuthUser, OrgMember};
use crate::db::organizations;
use crate::error::ApiError;
use crate::server::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_organizations))
        .routes(routes!(organization))
        .routes(routes!(members))
        .routes(routes!(member_has_permission))
}

fn roles(role: &str) -> Vec<String> {
    parse_role_list(role).map(str::to_owned).collect()
}

/// One of the caller's organizations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MyOrganizationView {
    id: String,
    name: String,
    slug: String,
    logo: Option<String>,
    /// The caller's roles in it, comma-joined as Better-Auth stores them.
    role: String,
    /// The same roles, split.
    roles: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    joined_at: OffsetDateTime,
    /// Whether it is the active organization of the session this request came with.
    active: bool,
}

/// The caller's organizations, oldest membership first.
#[utoipa::path(
    get, path = "/users/me/organizations", tag = "organizations", security(("bearer" = [])),
    responses((status = 200, description = "The caller's memberships", body = [MyOrganizationView]), AuthErrors)
)]
async fn my_organizations(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<Vec<MyOrganizationView>>, ApiError> {
    let active = state
        .auth
        .active_membership(&caller)
        .await?
        .map(|m| m.organization_id);
    let list = organizations::list_for_user(state.db(), &caller.user.id).await?;
    Ok(Json(
        list.into_iter()
            .map(|o| MyOrganizationView {
                active: active.as_deref() == Some(o.id.as_str()),
                roles: roles(&o.role),
                id: o.id,
                name: o.name,
                slug: o.slug,
                logo: o.logo,
                role: o.role,
                joined_at: o.joined_at,
            })
            .collect(),
    ))
}

/// An organization, to one of its members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrganizationView {
    id: String,
    name: String,
    slug: String,
    logo: Option<String>,
    /// Better-Auth's free-form metadata (text, usually JSON).
    metadata: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// The caller's roles in it, comma-joined.
    role: String,
}

/// One organization; members only.
#[utoipa::path(
    get, path = "/orgs/{orgId}", tag = "organizations", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organization id")),
    responses((status = 200, description = "The organization", body = OrganizationView), AuthErrors, NotFound)
)]
async fn organization(
    State(state): State<AppState>,
    member: OrgMember,
) -> Result<Json<OrganizationView>, ApiError> {
    let org = organizations::find(state.db(), &member.membership.organization_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(OrganizationView {
        id: org.id,
        name: org.name,
        slug: org.slug,
        logo: org.logo,
        metadata: org.metadata,
        created_at: org.created_at,
        role: member.membership.role,
    }))
}

/// A member of an organization.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MemberView {
    /// The member row's id.
    id: String,
    user_id: String,
    name: String,
    email: String,
    image: Option<String>,
    /// Comma-joined roles.
    role: String,
    /// The same roles, split.
    roles: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    joined_at: OffsetDateTime,
}

/// An organization's members, oldest first; members only.
#[utoipa::path(
    get, path = "/orgs/{orgId}/members", tag = "organizations", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organization id")),
    responses((status = 200, description = "The members", body = [MemberView]), AuthErrors, NotFound)
)]
async fn members(
    State(state): State<AppState>,
    member: OrgMember,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    let list = organizations::members(state.db(), &member.membership.organization_id).await?;
    Ok(Json(
        list.into_iter()
            .map(|m| MemberView {
                roles: roles(&m.role),
                id: m.id,
                user_id: m.user_id,
                name: m.name,
                email: m.email,
                image: m.image,
                role: m.role,
                joined_at: m.joined_at,
            })
            .collect(),
    ))
}

/// Whether the caller may do something in this organization, decided as Better-Auth's
/// `POST /api/auth/organization/has-permission` decides it: the member's roles, with the
/// organization's dynamic roles merged in. Members only.
#[utoipa::path(
    post, path = "/orgs/{orgId}/has-permission", tag = "organizations", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organization id")), request_body = PermissionCheck,
    responses((status = 200, description = "Whether the member has the permissions", body = PermissionAnswer), AuthErrors, NotFound, Invalid, BadBody)
)]
async fn member_has_permission(
    State(state): State<AppState>,
    member: OrgMember,
    AppJson(check): AppJson<PermissionCheck>,
) -> Result<Json<PermissionAnswer>, ApiError> {
    let (permissions, connector) = check.validate()?;
    let success = state
        .auth
        .member_has_permission(&member.membership, &permissions, connector)
        .await?;
    Ok(Json(PermissionAnswer::new(success)))
}

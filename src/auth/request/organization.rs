//! The organization extractors (Better-Auth's organization plugin), decided by
//! [`crate::auth::policy::organization`]:
//!
//! - [`OrgMember`]: a signed-in member of the organization the route names (`{orgId}`), or
//!   else of the session's active organization (Better-Auth's `set-active`). Anyone else gets
//!   404 `not_found`: an organization's existence is not revealed to outsiders.
//! - [`RequireOrgPermission`]: a member whose roles grant organization statements
//!   ([`OrgPermission`]), with the organization's dynamic roles (`organization_role`) merged
//!   in; 403 `forbidden` naming the permission otherwise.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts, RawPathParams};
use axum::http::request::Parts;

use crate::auth::policy::access::{Connector, Statements};
use crate::auth::{Auth, AuthUser};
use crate::db::organizations::Membership;
use crate::error::ApiError;

/// The route parameter naming an organization.
pub const ORG_ID_PARAM: &str = "orgId";

impl Auth {
    /// The organization the caller's session has made active, when the caller is (still) a
    /// member of it; with that membership.
    pub async fn active_membership(&self, caller: &AuthUser) -> Result<Option<Membership>, ApiError> {
        let Some(session_id) = &caller.session_id else {
            return Ok(None);
        };
        let Some(session) = self.session(Some(&caller.user.id), session_id).await? else {
            return Ok(None);
        };
        let Some(active) = &session.active_organization_id else {
            return Ok(None);
        };
        let memberships = self.memberships(&caller.user.id).await?;
        Ok(memberships.iter().find(|m| m.organization_id == *active).cloned())
    }
}

/// A signed-in member of an organization: the route's `{orgId}`, else the session's active one.
#[derive(Debug, Clone)]
pub struct OrgMember {
    /// The caller.
    pub caller: AuthUser,
    /// The organization and the caller's membership in it.
    pub membership: Membership,
}

impl<S> FromRequestParts<S> for OrgMember
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        let caller = super::extract::caller_of(&auth, parts).await?;
        let named = RawPathParams::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .find(|(key, _)| *key == ORG_ID_PARAM)
                    .map(|(_, value)| value.to_owned())
            });
        let membership = match named {
            Some(organization_id) => auth
                .memberships(&caller.user.id)
                .await?
                .iter()
                .find(|m| m.organization_id == organization_id)
                .cloned(),
            None => auth.active_membership(&caller).await?,
        };
        // Not a member, no such organization, or no active one: all look the same.
        let membership = membership.ok_or(ApiError::NotFound)?;
        Ok(Self { caller, membership })
    }
}

/// Organization statements a route can require, e.g. `[("member", &["create"])]`.
pub trait OrgPermission {
    /// What is asked: `(resource, actions)` pairs, all required.
    const STATEMENTS: &'static [(&'static str, &'static [&'static str])];
}

/// A member whose roles in the organization (with its dynamic roles) grant `P`.
#[derive(Debug, Clone)]
pub struct RequireOrgPermission<P> {
    /// The member.
    pub member: OrgMember,
    permission: PhantomData<P>,
}

impl<S, P> FromRequestParts<S> for RequireOrgPermission<P>
where
    Auth: FromRef<S>,
    S: Send + Sync,
    P: OrgPermission + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let member = OrgMember::from_request_parts(parts, state).await?;
        let auth = Auth::from_ref(state);
        let request: Statements = P::STATEMENTS
            .iter()
            .map(|(r, a)| ((*r).to_owned(), a.iter().map(|s| (*s).to_owned()).collect()))
            .collect();
        if !auth
            .member_has_permission(&member.membership, &request, Connector::And)
            .await?
        {
            let wanted: Vec<String> = P::STATEMENTS
                .iter()
                .flat_map(|(r, a)| a.iter().map(move |a| format!("{r}:{a}")))
                .collect();
            return Err(ApiError::Forbidden(format!(
                "this needs the organization permission {}",
                wanted.join(", ")
            )));
        }
        Ok(Self {
            member,
            permission: PhantomData,
        })
    }
}

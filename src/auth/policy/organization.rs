//! Organizations (Better-Auth's organization plugin): who belongs to which, with which roles,
//! and what those roles allow, decided as the plugin decides it. The extractors that ask it
//! (`OrgMember`, `RequireOrgPermission`) are on the request side,
//! [`crate::auth::request::organization`].
//!
//! Memberships and dynamic roles are read fresh, or from the user cache that PostgreSQL's
//! notifications keep current (a role change or a removal is seen on the next request).

use std::sync::Arc;

use crate::auth::Auth;
use crate::auth::policy::access::{Connector, Statements};
use crate::db::organizations::{self, Membership};
use crate::error::ApiError;

impl Auth {
    /// Every organization membership of `user_id`.
    pub async fn memberships(&self, user_id: &str) -> Result<Arc<Vec<Membership>>, ApiError> {
        if let Some(list) = self.rows().memberships(user_id) {
            return Ok(list);
        }
        let ticket = self.rows().ticket(user_id);
        let list = Arc::new(organizations::memberships_of(self.db(), user_id).await?);
        self.rows().put_memberships(user_id, Arc::clone(&list), ticket);
        Ok(list)
    }

    /// The dynamic roles (`organization_role`) of an organization.
    pub async fn organization_roles(
        &self,
        organization_id: &str,
    ) -> Result<Arc<Vec<(String, Statements)>>, ApiError> {
        if let Some(roles) = self.rows().org_roles(organization_id) {
            return Ok(roles);
        }
        let ticket = self.rows().ticket(organization_id);
        let roles = Arc::new(organizations::dynamic_roles(self.db(), organization_id).await?);
        self.rows()
            .put_org_roles(organization_id, Arc::clone(&roles), ticket);
        Ok(roles)
    }

    /// Whether `member` holds `permissions` (organization statements) in their organization,
    /// as Better-Auth's organization `hasPermission` decides.
    pub async fn member_has_permission(
        &self,
        member: &Membership,
        permissions: &Statements,
        connector: Connector,
    ) -> Result<bool, ApiError> {
        let dynamic = self.organization_roles(&member.organization_id).await?;
        Ok(self
            .policy()
            .access
            .member_has_permission(&member.role, &dynamic, permissions, connector))
    }
}

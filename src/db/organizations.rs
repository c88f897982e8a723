//! Better-Auth's organization plugin tables: `organization`, `member`, `organization_role`
//! (its dynamic roles). warden reads them to decide organization permissions; Better-Auth
//! writes them.

use std::collections::BTreeMap;

use sqlx::PgPool;
use time::OffsetDateTime;

/// A role's statements as Better-Auth stores them: `{"resource": ["action", ...]}`.
pub type RoleStatements = BTreeMap<String, Vec<String>>;

/// What authorisation needs of one membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The organization.
    pub organization_id: String,
    /// The member row's id.
    pub member_id: String,
    /// The member's roles, comma-joined as Better-Auth stores them (`owner`, `admin,member`).
    pub role: String,
}

/// One organization a user belongs to, as the user's own list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MyOrganization {
    /// The organization's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its unique slug.
    pub slug: String,
    /// Its logo URL, if any.
    pub logo: Option<String>,
    /// The user's roles in it, comma-joined.
    pub role: String,
    /// When the user joined.
    pub joined_at: OffsetDateTime,
}

/// An organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its unique slug.
    pub slug: String,
    /// Its logo URL, if any.
    pub logo: Option<String>,
    /// Free-form metadata Better-Auth stores as text (usually JSON).
    pub metadata: Option<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// A member as the organization's member list shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The member row's id.
    pub id: String,
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub name: String,
    /// The user's email.
    pub email: String,
    /// The user's picture, if any.
    pub image: Option<String>,
    /// The member's roles, comma-joined.
    pub role: String,
    /// When they joined.
    pub joined_at: OffsetDateTime,
}

/// Every membership of a user (what the organization guards decide on).
pub async fn memberships_of(pool: &PgPool, user_id: &str) -> Result<Vec<Membership>, sqlx::Error> {
    sqlx::query_as!(
        Membership,
        r#"SELECT organization_id, id AS member_id, role FROM member
           WHERE user_id = $1 ORDER BY created_at, id"#,
        user_id
    )
    .fetch_all(pool)
    .await
}

/// The user's organizations with their names, oldest membership first.
pub async fn list_for_user(pool: &PgPool, user_id: &str) -> Result<Vec<MyOrganization>, sqlx::Error> {
    sqlx::query_as!(
        MyOrganization,
        r#"SELECT o.id, o.name, o.slug, o.logo, m.role, m.created_at AS joined_at
           FROM member m JOIN organization o ON o.id = m.organization_id
           WHERE m.user_id = $1 ORDER BY m.created_at, o.id"#,
        user_id
    )
    .fetch_all(pool)
    .await
}

/// One organization.
pub async fn find(pool: &PgPool, id: &str) -> Result<Option<Organization>, sqlx::Error> {
    sqlx::query_as!(
        Organization,
        "SELECT id, name, slug, logo, metadata, created_at FROM organization WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await
}

/// An organization's members, oldest first.
pub async fn members(pool: &PgPool, organization_id: &str) -> Result<Vec<Member>, sqlx::Error> {
    sqlx::query_as!(
        Member,
        r#"SELECT m.id, m.user_id, u.name, u.email, u.image, m.role, m.created_at AS joined_at
           FROM member m JOIN "user" u ON u.id = m.user_id
           WHERE m.organization_id = $1 ORDER BY m.created_at, m.id"#,
        organization_id
    )
    .fetch_all(pool)
    .await
}

/// An organization's dynamic roles (`organization_role`): each role's name and statements.
/// A row whose `permission` is not Better-Auth's JSON shape is skipped (Better-Auth itself
/// refuses to use it) and logged.
pub async fn dynamic_roles(
    pool: &PgPool,
    organization_id: &str,
) -> Result<Vec<(String, RoleStatements)>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT role, permission FROM organization_role WHERE organization_id = $1 ORDER BY created_at, id",
        organization_id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match serde_json::from_str::<RoleStatements>(&row.permission) {
            Ok(statements) => Some((row.role, statements)),
            Err(err) => {
                tracing::warn!(organization_id, role = row.role, error = %err, "ignoring a dynamic role whose permissions are not Better-Auth's shape");
                None
            }
        })
        .collect())
}

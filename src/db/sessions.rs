//! The shared `session` table (Better-Auth's). The `token` column is read only to find a
//! session by a bearer session token; it is never returned.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use super::users::User;

/// A session as listed to its owner or an admin (no token).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The session's id (not its token).
    pub id: String,
    /// Whose session it is.
    pub user_id: String,
    /// When it began (the sign-in).
    pub created_at: OffsetDateTime,
    /// When the row last changed.
    pub updated_at: OffsetDateTime,
    /// When it stops being valid.
    pub expires_at: OffsetDateTime,
    /// The address it was created from, as Better-Auth saw it (may be empty).
    pub ip_address: Option<String>,
    /// The `User-Agent` it was created with (may be empty).
    pub user_agent: Option<String>,
    /// The admin impersonating the user in this session (Better-Auth's admin plugin).
    pub impersonated_by: Option<String>,
}

/// What authentication needs of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRef {
    /// The session's id (not its token).
    pub id: String,
    /// Whose session it is.
    pub user_id: String,
    /// When it stops being valid.
    pub expires_at: OffsetDateTime,
    /// The organization the user made active in this session (Better-Auth's organization
    /// plugin, `set-active`).
    pub active_organization_id: Option<String>,
    /// The admin impersonating the user in this session (Better-Auth's admin plugin), so what
    /// is done in it can be attributed to the person actually acting.
    pub impersonated_by: Option<String>,
}

/// The session with this id, expired or not.
pub async fn find_ref_by_id(pool: &PgPool, id: &str) -> Result<Option<SessionRef>, sqlx::Error> {
    sqlx::query_as!(
        SessionRef,
        "SELECT id, user_id, expires_at, active_organization_id, impersonated_by FROM session WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await
}

/// Sessions and their users, read in one round trip: the cold path of JWTs naming their
/// sessions, several requests' lookups at once (see `auth::batch`). Unknown ids are left out.
pub async fn find_refs_with_users(
    pool: &PgPool,
    ids: &[String],
) -> Result<Vec<(SessionRef, User)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT s.id AS session_id, s.user_id, s.expires_at AS session_expires_at, s.active_organization_id, s.impersonated_by,
                  u.name, u.email, u.email_verified, u.image, u.created_at, u.updated_at,
                  u.role, u.banned, u.ban_reason, u.ban_expires
           FROM session s JOIN "user" u ON u.id = s.user_id WHERE s.id = ANY($1::text[])"#,
        ids
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                SessionRef {
                    id: r.session_id,
                    user_id: r.user_id.clone(),
                    expires_at: r.session_expires_at,
                    active_organization_id: r.active_organization_id,
                    impersonated_by: r.impersonated_by,
                },
                User {
                    id: r.user_id,
                    name: r.name,
                    email: r.email,
                    email_verified: r.email_verified,
                    image: r.image,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                    role: r.role,
                    banned: r.banned,
                    ban_reason: r.ban_reason,
                    ban_expires: r.ban_expires,
                },
            )
        })
        .collect())
}

/// The session with this token (the raw token, not the signed form), expired or not.
pub async fn find_ref_by_token(pool: &PgPool, token: &str) -> Result<Option<SessionRef>, sqlx::Error> {
    sqlx::query_as!(
        SessionRef,
        "SELECT id, user_id, expires_at, active_organization_id, impersonated_by FROM session WHERE token = $1",
        token
    )
    .fetch_optional(pool)
    .await
}

/// The user's sessions that have not expired, newest first.
pub async fn list_live_for_user(pool: &PgPool, user_id: &str) -> Result<Vec<Session>, sqlx::Error> {
    sqlx::query_as!(
        Session,
        r#"SELECT id, user_id, created_at, updated_at, expires_at, ip_address, user_agent, impersonated_by
           FROM session WHERE user_id = $1 AND expires_at > now()
           ORDER BY created_at DESC, id"#,
        user_id
    )
    .fetch_all(pool)
    .await
}

// Deleting a session the way Better-Auth does: its OAuth provider plugin, on a session's
// deletion, revokes the access tokens granted from it and the refresh tokens without
// `offline_access` (its back-channel logout plan; the foreign key alone would only clear their
// `session_id`, leaving opaque tokens active). warden's deletions do the same in the same
// statement, so a session revoked through warden ends its OAuth tokens as one revoked through
// Better-Auth does. (Better-Auth's own deletion also posts back-channel logout tokens to
// clients that registered for them; warden does not.)

/// Deletes one session of one user; `false` when that user has no such session.
pub async fn delete_for_user(conn: &mut PgConnection, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let gone = sqlx::query_scalar!(
        r#"WITH gone AS (DELETE FROM session WHERE id = $1 AND user_id = $2 RETURNING id),
                access AS (UPDATE oauth_access_token SET revoked = now()
                           WHERE session_id IN (SELECT id FROM gone) AND revoked IS NULL),
                refresh AS (UPDATE oauth_refresh_token SET revoked = now()
                            WHERE session_id IN (SELECT id FROM gone) AND revoked IS NULL
                              AND NOT (scopes ? 'offline_access'))
           SELECT id AS "id!" FROM gone"#,
        id,
        user_id
    )
    .fetch_all(conn)
    .await?;
    Ok(gone.len() == 1)
}

/// Deletes all the user's sessions but `keep` (the caller's own); returns the ids that went.
pub async fn delete_all_for_user(
    conn: &mut PgConnection,
    user_id: &str,
    keep: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"WITH gone AS (DELETE FROM session WHERE user_id = $1 AND ($2::text IS NULL OR id <> $2) RETURNING id),
                access AS (UPDATE oauth_access_token SET revoked = now()
                           WHERE session_id IN (SELECT id FROM gone) AND revoked IS NULL),
                refresh AS (UPDATE oauth_refresh_token SET revoked = now()
                            WHERE session_id IN (SELECT id FROM gone) AND revoked IS NULL
                              AND NOT (scopes ? 'offline_access'))
           SELECT id AS "id!" FROM gone"#,
        user_id,
        keep
    )
    .fetch_all(conn)
    .await
}

/// Deletes a session by id; returns its owner when it existed.
pub async fn delete_by_id(conn: &mut PgConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"WITH gone AS (DELETE FROM session WHERE id = $1 RETURNING id, user_id),
                access AS (UPDATE oauth_access_token SET revoked = now()
                           WHERE session_id IN (SELECT id FROM gone) AND revoked IS NULL),
                refresh AS (UPDATE oauth_refresh_token SET revoked = now()
                            WHERE session_id IN (SELECT id FROM gone) AND revoked IS NULL
                              AND NOT (scopes ? 'offline_access'))
           SELECT user_id AS "user_id!" FROM gone"#,
        id
    )
    .fetch_optional(conn)
    .await
}

//! The shared `session` table (Better-Auth's). The `token` column is read to find a session by
//! a bearer session token, and returned only to the session store (sessions in Redis are
//! keyed by it); never to a client.

use sqlx::{PgConnection, PgExecutor, PgPool};
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
pub async fn find_ref_by_id(db: impl PgExecutor<'_>, id: &str) -> Result<Option<SessionRef>, sqlx::Error> {
    sqlx::query_as!(
        SessionRef,
        "SELECT id, user_id, expires_at, active_organization_id, impersonated_by FROM session WHERE id = $1",
        id
    )
    .fetch_optional(db)
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
pub async fn find_ref_by_token(
    db: impl PgExecutor<'_>,
    token: &str,
) -> Result<Option<SessionRef>, sqlx::Error> {
    sqlx::query_as!(
        SessionRef,
        "SELECT id, user_id, expires_at, active_organization_id, impersonated_by FROM session WHERE token = $1",
        token
    )
    .fetch_optional(db)
    .await
}

/// The user's sessions that have not expired, newest first.
pub async fn list_live_for_user(db: impl PgExecutor<'_>, user_id: &str) -> Result<Vec<Session>, sqlx::Error> {
    sqlx::query_as!(
        Session,
        r#"SELECT id, user_id, created_at, updated_at, expires_at, ip_address, user_agent, impersonated_by
           FROM session WHERE user_id = $1 AND expires_at > now()
           ORDER BY created_at DESC, id"#,
        user_id
    )
    .fetch_all(db)
    .await
}

// Ending a session the way Better-Auth does: deleting its row, or with
// `preserveSessionInDatabase` (sessions in secondary storage, rows kept) moving a live row's
// `expires_at` to now. Its OAuth provider plugin, on a session's end, revokes the access tokens
// granted from it and the refresh tokens without `offline_access` (its back-channel logout
// plan; the foreign key alone would only clear their `session_id`, leaving opaque tokens
// active). warden's statements do the same in the same statement, so a session revoked through
// warden ends its OAuth tokens as one revoked through Better-Auth does. (Better-Auth's own
// deletion also posts back-channel logout tokens to clients that registered for them; warden
// does not.)

/// A session that was ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    /// Its id.
    pub id: String,
    /// Whose it was.
    pub user_id: String,
    /// Its token (sessions in secondary storage are keyed by it).
    pub token: String,
}

/// Ends `user_id`'s session `id` (deletes it, or with `preserve` moves a live row's end to
/// now); `None` when that user has no such session (live, with `preserve`).
pub async fn end_for_user(
    conn: &mut PgConnection,
    user_id: &str,
    id: &str,
    preserve: bool,
) -> Result<Option<Ended>, sqlx::Error> {
    Ok(end_where(conn, Some(user_id), Some(id), None, preserve)
        .await?
        .pop())
}

/// Ends all `user_id`'s sessions but `keep` (the caller's own).
pub async fn end_all_for_user(
    conn: &mut PgConnection,
    user_id: &str,
    keep: Option<&str>,
    preserve: bool,
) -> Result<Vec<Ended>, sqlx::Error> {
    end_where(conn, Some(user_id), None, keep, preserve).await
}

/// Ends session `id`, whoever's it is.
pub async fn end_by_id(
    conn: &mut PgConnection,
    id: &str,
    preserve: bool,
) -> Result<Option<Ended>, sqlx::Error> {
    Ok(end_where(conn, None, Some(id), None, preserve).await?.pop())
}

/// The one statement behind the three above: the sessions of `user_id` (any user when `None`),
/// `id` (any when `None`; the callers always name one or the other), but `keep`.
async fn end_where(
    conn: &mut PgConnection,
    user_id: Option<&str>,
    id: Option<&str>,
    keep: Option<&str>,
    preserve: bool,
) -> Result<Vec<Ended>, sqlx::Error> {
    sqlx::query_as!(
        Ended,
        r#"WITH deleted AS (DELETE FROM session
                            WHERE NOT $4 AND ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR id = $2)
                              AND ($3::text IS NULL OR id <> $3)
                            RETURNING id, user_id, token),
                ended AS (UPDATE session SET expires_at = now(), updated_at = now()
                          WHERE $4 AND expires_at > now() AND ($1::text IS NULL OR user_id = $1)
                            AND ($2::text IS NULL OR id = $2) AND ($3::text IS NULL OR id <> $3)
                          RETURNING id, user_id, token),
                gone AS (SELECT * FROM deleted UNION ALL SELECT * FROM ended),
                access AS (UPDATE oauth_access_token SET revoked = now()
                           WHERE session_id IN (SELECT id FROM gone) AND revoked IS NULL),
                refresh AS (UPDATE oauth_refresh_token SET revoked = now()
                            WHERE session_id IN (SELECT id FROM gone) AND revoked IS NULL
                              AND NOT (scopes ? 'offline_access'))
           SELECT id AS "id!", user_id AS "user_id!", token AS "token!" FROM gone"#,
        user_id,
        id,
        keep,
        preserve
    )
    .fetch_all(conn)
    .await
}

/// The owner and token of session `id` (expired or not).
pub async fn token_by_id(db: impl PgExecutor<'_>, id: &str) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query!("SELECT user_id, token FROM session WHERE id = $1", id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| (r.user_id, r.token)))
}

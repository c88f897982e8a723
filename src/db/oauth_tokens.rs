//! The OAuth provider plugin's tables as a resource server reads them
//! (`@better-auth/oauth-provider`): an opaque access token by its stored form in
//! `oauth_access_token`, and whether a client is disabled in `oauth_client`. Better-Auth
//! writes both; warden only reads, as the plugin's introspection reads them.

use sqlx::PgPool;
use sqlx::types::Json;
use time::OffsetDateTime;

/// One opaque access token, as its row says (the plugin's `oauthAccessToken`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccessToken {
    /// The client it was issued to.
    pub client_id: String,
    /// The user who granted it; `None` for `client_credentials`.
    pub user_id: Option<String>,
    /// The session it was granted from; Better-Auth sets it to `NULL` when that session is
    /// deleted.
    pub session_id: Option<String>,
    /// The resources it is for (RFC 8707); empty when none was named.
    pub resources: Vec<String>,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// Revoked (through the plugin's `/oauth2/revoke`).
    pub revoked: bool,
    /// The DPoP key it is bound to (`confirmation.jkt`).
    pub jkt: Option<String>,
    /// A confirmation without `jkt`: bound by another method.
    pub bound_otherwise: bool,
}

/// The token stored as `stored` (base64url of its SHA-256); the plugin's
/// `findOne({token})`.
pub async fn find_by_token(pool: &PgPool, stored: &str) -> Result<Option<StoredAccessToken>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT client_id, user_id, session_id, resources AS "resources: Json<Vec<String>>",
                  scopes AS "scopes!: Json<Vec<String>>", expires_at, revoked IS NOT NULL AS "revoked!",
                  confirmation->>'jkt' AS jkt,
                  (confirmation IS NOT NULL AND confirmation <> 'null'::jsonb AND confirmation->>'jkt' IS NULL) AS "bound_otherwise!"
           FROM oauth_access_token WHERE token = $1 LIMIT 1"#,
        stored
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| StoredAccessToken {
        client_id: r.client_id,
        user_id: r.user_id,
        session_id: r.session_id,
        resources: r.resources.map(|Json(v)| v).unwrap_or_default(),
        scopes: r.scopes.0,
        expires_at: r.expires_at,
        revoked: r.revoked,
        jkt: r.jkt,
        bound_otherwise: r.bound_otherwise,
    }))
}

/// Whether the client `client_id` may be served: `Some(true)` when it exists and is not
/// disabled, `Some(false)` when disabled, `None` when there is no such client.
pub async fn client_enabled(pool: &PgPool, client_id: &str) -> Result<Option<bool>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT disabled FROM oauth_client WHERE client_id = $1 LIMIT 1",
        client_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.disabled != Some(true)))
}

//! The shared `jwks` table, read only as a fallback when Better-Auth's JWKS endpoint is
//! unreachable. Only `public_key` is read: the (encrypted) private key is never selected.

use std::time::Duration;

use sqlx::PgPool;

/// One row of `jwks`, without the private key.
#[derive(Debug)]
pub(crate) struct JwkRow {
    /// The key's id (the JWK has none of its own).
    pub id: String,
    /// The public JWK, as JSON text.
    pub public_key: String,
    /// The algorithm, when Better-Auth recorded it.
    pub alg: Option<String>,
}

impl JwkRow {
    /// The row as a JWK: Better-Auth stores the public JWK without `kid` (the row id is the
    /// kid) and keeps `alg` in its own column.
    pub fn into_jwk(self) -> Option<serde_json::Value> {
        let mut jwk: serde_json::Value = serde_json::from_str(&self.public_key).ok()?;
        let object = jwk.as_object_mut()?;
        object.insert("kid".into(), self.id.into());
        if let Some(alg) = self.alg {
            object.entry("alg").or_insert(alg.into());
        }
        Some(jwk)
    }
}

/// Public keys that have not expired, or expired less than `grace` ago.
pub(crate) async fn usable_public_keys(pool: &PgPool, grace: Duration) -> Result<Vec<JwkRow>, sqlx::Error> {
    sqlx::query_as!(
        JwkRow,
        r#"SELECT id, public_key, alg FROM jwks
           WHERE expires_at IS NULL OR expires_at > now() - make_interval(secs => $1)
           ORDER BY created_at DESC
           LIMIT 100"#,
        grace.as_secs_f64()
    )
    .fetch_all(pool)
    .await
}

//! [`AccessToken`]: what an OAuth access token of Better-Auth's provider proves, in either of
//! its forms. A JWT's claims were checked by the verifier (`typ: at+jwt`, issuer, resource,
//! expiry); an opaque token's row was found by its hash, not revoked, not expired. Whether its
//! user and session are still live is the request side's to check.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::auth::jwt::verify::Claims;
use crate::db::oauth_tokens::StoredAccessToken;

/// An OAuth access token, verified: its client, its user (none for `client_credentials`),
/// its scopes, its DPoP key.
#[derive(Debug, Clone)]
pub enum AccessToken {
    /// A JWT access token (`typ: at+jwt`) and its verified claims.
    Jwt(Arc<Claims>),
    /// An opaque access token and its row in `oauth_access_token`.
    Opaque(Arc<StoredAccessToken>),
}

impl AccessToken {
    /// `jwt` or `opaque`.
    pub fn format(&self) -> &'static str {
        match self {
            Self::Jwt(_) => "jwt",
            Self::Opaque(_) => "opaque",
        }
    }

    /// The OAuth client the token was issued to.
    pub fn client_id(&self) -> &str {
        match self {
            Self::Jwt(claims) => claims.client().unwrap_or_default(),
            Self::Opaque(row) => &row.client_id,
        }
    }

    /// The user who granted it; `None` for a client acting for itself (`client_credentials`,
    /// whose JWT names the client as `sub` and no session).
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::Jwt(claims) => {
                let for_itself = claims.sid.is_none() && Some(claims.sub.as_str()) == claims.client();
                (!for_itself).then_some(claims.sub.as_str())
            }
            Self::Opaque(row) => row.user_id.as_deref(),
        }
    }

    /// The session the user granted it from, when the token names one: revoking that session
    /// revokes the token.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Self::Jwt(claims) => claims.sid.as_deref(),
            Self::Opaque(row) => row.session_id.as_deref(),
        }
    }

    /// Whether the token holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|held| held == scope)
    }

    /// Its scopes.
    pub fn scopes(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Self::Jwt(claims) => Box::new(
                claims
                    .scope
                    .as_deref()
                    .unwrap_or_default()
                    .split_ascii_whitespace(),
            ),
            Self::Opaque(row) => Box::new(row.scopes.iter().map(String::as_str)),
        }
    }

    /// Its scopes, space-separated, as `scope` is written (a JWT's own claim, not copied).
    pub fn scope(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Jwt(claims) => std::borrow::Cow::Borrowed(claims.scope.as_deref().unwrap_or_default()),
            Self::Opaque(row) => std::borrow::Cow::Owned(row.scopes.join(" ")),
        }
    }

    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`), if it is bound.
    pub fn jkt(&self) -> Option<&str> {
        match self {
            Self::Jwt(claims) => claims.jkt(),
            Self::Opaque(row) => row.jkt.as_deref(),
        }
    }

    /// Bound by a method other than DPoP (a confirmation without `jkt`): refused, since warden
    /// cannot check it.
    pub fn bound_otherwise(&self) -> bool {
        match self {
            Self::Jwt(claims) => claims.bound_otherwise(),
            Self::Opaque(row) => row.bound_otherwise,
        }
    }

    /// When it expires.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        match self {
            Self::Jwt(claims) => OffsetDateTime::from_unix_timestamp(claims.exp as i64).ok(),
            Self::Opaque(row) => Some(row.expires_at),
        }
    }
}

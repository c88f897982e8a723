//! OAuth 2.1 resource server for Better-Auth's OAuth provider (`@better-auth/oauth-provider`):
//! what an access token is, its scopes, the challenges a refusal carries, the metadata a client
//! reads to find the authorization server, and DPoP proofs.
//!
//! Better-Auth issues two forms of access token: a JWT (`typ: at+jwt`, signed with the same
//! JWKS as its session JWTs, when the client names a `resource`) and an opaque string stored
//! hashed in `oauth_access_token`. Both prove the same thing, a [`token::AccessToken`]: a
//! client, maybe a user and the session they granted it from, scopes, maybe a DPoP key.
//!
//! - [`token`]: [`token::AccessToken`] and what it holds, in either form.
//! - [`scope`]: scopes asked by a route and what a token lacks of them.
//! - [`challenge`]: the `WWW-Authenticate` parameters of this resource (RFC 6750, RFC 9728,
//!   RFC 9449).
//! - [`metadata`]: the protected-resource metadata document (RFC 9728).
//! - [`dpop`]: RFC 9449 proofs: parsed, checked against the request and the token, their `jti`
//!   never taken twice within the window (a full replay cache shrinks the window rather than
//!   forget a proof that could still be replayed).
//!
//! Nothing here reads the database or a request: `request::identify` does, with these rules.

pub mod challenge;
pub mod dpop;
pub mod metadata;
pub mod scope;
pub mod token;

use crate::auth::jwt::verify::AccessTokenRules;

/// The path of the protected-resource metadata document (RFC 9728 §3).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// warden as an OAuth resource server (`RESOURCE_URL` and friends). Off (`resource` empty):
/// no access token is accepted, and no metadata is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// This resource's identifier (`RESOURCE_URL`): what clients name in RFC 8707 `resource`
    /// and Better-Auth's provider writes in a JWT access token's `aud`. `None`: off.
    pub resource: Option<String>,
    /// The authorization server's issuer (`OAUTH_ISSUER`, default
    /// `<BETTER_AUTH_URL>/api/auth`): a JWT access token's `iss`, and the metadata's
    /// `authorization_servers`.
    pub issuer: String,
    /// The scopes this resource understands (`OAUTH_SCOPES`), published as `scopes_supported`.
    pub scopes_supported: Vec<String>,
    /// The public origin requests reach this server by (`PUBLIC_URL`, default the origin of
    /// `RESOURCE_URL`): a DPoP proof's `htu` is checked against it and the request's path,
    /// never against what a client's headers claim the host to be.
    pub public_url: String,
    /// Take opaque access tokens (`OAUTH_OPAQUE_TOKENS`, default on). The provider issues one
    /// whenever a client names no `resource`, so an opaque token names no audience: any of the
    /// provider's clients' tokens passes here if its scopes do. Off: JWT access tokens only,
    /// which name this resource.
    pub opaque_tokens: bool,
    /// Refuse access tokens not bound to a DPoP key (`DPOP_REQUIRED`, default off).
    pub dpop_required: bool,
    /// How far a DPoP proof's `iat` may lie in the past, in seconds (`DPOP_WINDOW_SECS`,
    /// default 300); its `jti` is remembered that long.
    pub dpop_window_secs: u64,
}

impl Default for OAuthSettings {
    /// Off; Better-Auth's issuer at its default URL, the default DPoP window.
    fn default() -> Self {
        Self {
            resource: None,
            issuer: format!("{}/api/auth", crate::auth::DEFAULT_BETTER_AUTH_URL),
            scopes_supported: Vec::new(),
            public_url: String::new(),
            opaque_tokens: true,
            dpop_required: false,
            dpop_window_secs: dpop::DEFAULT_IAT_WINDOW_SECS,
        }
    }
}

impl OAuthSettings {
    /// Whether access tokens are accepted at all.
    pub fn enabled(&self) -> bool {
        self.resource.is_some()
    }

    /// Whether `token` (a bearer string that is not a JWT) may be an opaque access token to
    /// look up: opaque tokens are accepted, and it has the provider's shape (letters and
    /// digits, or base64url, no dot: a signed session token has one).
    pub fn may_be_opaque(&self, token: &str) -> bool {
        self.enabled()
            && self.opaque_tokens
            && (16..=256).contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// The rules a JWT access token must pass, when access tokens are accepted.
    pub fn access_token_rules(&self) -> Option<AccessTokenRules> {
        self.resource.as_ref().map(|resource| AccessTokenRules {
            issuer: self.issuer.clone(),
            resources: vec![resource.clone()],
        })
    }

    /// Where this resource's metadata document is: the well-known path inserted before the
    /// resource's own path (RFC 9728 §3.1), at the public origin.
    pub fn metadata_url(&self) -> Option<String> {
        let resource = self.resource.as_deref()?;
        let path = resource_path(resource);
        Some(format!(
            "{}{METADATA_PATH}{path}",
            self.public_url.trim_end_matches('/')
        ))
    }
}

/// The path of a resource identifier (`https://api.test/mcp` → `/mcp`), without a trailing
/// `/`; empty for an origin.
pub fn resource_path(resource: &str) -> &str {
    let after_scheme = resource.split_once("://").map_or(resource, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..].trim_end_matches('/'),
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path_before_the_resource_path() {
        let mut settings = OAuthSettings {
            resource: Some("https://api.test".into()),
            public_url: "https://api.test".into(),
            ..OAuthSettings::default()
        };
        assert_eq!(
            settings.metadata_url().as_deref(),
            Some("https://api.test/.well-known/oauth-protected-resource")
        );
        settings.resource = Some("https://api.test/mcp/".into());
        assert_eq!(
            settings.metadata_url().as_deref(),
            Some("https://api.test/.well-known/oauth-protected-resource/mcp")
        );
        settings.resource = None;
        assert_eq!(settings.metadata_url(), None);
        assert_eq!(resource_path("urn:x"), "");
    }
}

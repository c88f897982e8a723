//! The protected-resource metadata document (RFC 9728 §2): what a client that was refused
//! (the challenge's `resource_metadata`) reads to learn which authorization server issues
//! tokens for this resource, how to send them, and which scopes exist.

use serde::Serialize;

use super::OAuthSettings;
use super::dpop::DpopSettings;

/// RFC 9728's metadata, the members warden publishes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResourceMetadata {
    /// This resource's identifier (`RESOURCE_URL`).
    pub resource: String,
    /// Better-Auth's issuer (`OAUTH_ISSUER`).
    pub authorization_servers: Vec<String>,
    /// How a token may be sent: the `Authorization` header only.
    pub bearer_methods_supported: Vec<&'static str>,
    /// The scopes this resource understands (`OAUTH_SCOPES`), when any are configured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// The DPoP proof algorithms accepted.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
    /// Present and `true` when every access token must be DPoP-bound (`DPOP_REQUIRED`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens_required: bool,
}

impl ResourceMetadata {
    /// The document for `settings`; `None` when access tokens are off.
    pub fn of(settings: &OAuthSettings) -> Option<Self> {
        Some(Self {
            resource: settings.resource.clone()?,
            authorization_servers: vec![settings.issuer.clone()],
            bearer_methods_supported: vec!["header"],
            scopes_supported: settings.scopes_supported.clone(),
            dpop_signing_alg_values_supported: DpopSettings::default().alg_names(),
            dpop_bound_access_tokens_required: settings.dpop_required,
        })
    }
}

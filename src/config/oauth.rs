//! The OAuth resource-server group: `RESOURCE_URL`, `OAUTH_ISSUER`, `OAUTH_SCOPES`,
//! `OAUTH_OPAQUE_TOKENS`, `PUBLIC_URL`, `DPOP_REQUIRED` and `DPOP_WINDOW_SECS`. Off unless `RESOURCE_URL` is set: then
//! warden takes the access tokens Better-Auth's OAuth provider issues for that resource.

use super::env::{Env, http_url, invalid};
use crate::auth::OAuthSettings;
use crate::auth::oauth::scope::parse_list;
use crate::error::ConfigError;

impl OAuthSettings {
    /// `better_auth_url` gives `OAUTH_ISSUER`'s default, `<BETTER_AUTH_URL>/api/auth`.
    pub(super) fn read(env: &Env<'_>, better_auth_url: &str) -> Result<Self, ConfigError> {
        let resource = env
            .get("RESOURCE_URL")
            .map(|r| http_url("RESOURCE_URL", r))
            .transpose()?;
        let issuer = env
            .get("OAUTH_ISSUER")
            .unwrap_or_else(|| format!("{}/api/auth", better_auth_url.trim_end_matches('/')));
        let scopes = env.get("OAUTH_SCOPES").unwrap_or_default();
        let scopes_supported = parse_list(&scopes)
            .map_err(|bad| invalid("OAUTH_SCOPES", format!("{bad:?} is not a scope")))?
            .into_iter()
            .map(str::to_owned)
            .collect();
        let public_url = match env.get("PUBLIC_URL") {
            Some(url) => http_url("PUBLIC_URL", url)?,
            None => resource.as_deref().map(origin).unwrap_or_default(),
        };
        if public_url.trim_end_matches('/').matches('/').count() > 2 {
            return Err(invalid(
                "PUBLIC_URL",
                "give the origin clients reach warden by (https://api.example.com), without a path",
            ));
        }
        let opaque_tokens = env.flag("OAUTH_OPAQUE_TOKENS", true)?;
        let dpop_required = env.flag("DPOP_REQUIRED", false)?;
        if dpop_required && resource.is_none() {
            return Err(invalid(
                "DPOP_REQUIRED",
                "needs RESOURCE_URL: access tokens are off",
            ));
        }
        Ok(Self {
            resource,
            issuer,
            scopes_supported,
            public_url: public_url.trim_end_matches('/').to_owned(),
            opaque_tokens,
            dpop_required,
            dpop_window_secs: env.secs("DPOP_WINDOW_SECS", 300, 10..=3600)?.as_secs(),
        })
    }
}

/// `scheme://host[:port]` of an http(s) URL.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split('/').next().unwrap_or_default();
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, config};

    #[test]
    fn off_by_default_and_read_when_a_resource_is_named() {
        let c = config(&[("DATABASE_URL", "postgres://localhost/db")]).unwrap();
        assert!(!c.oauth.enabled());
        let c = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("BETTER_AUTH_URL", "https://auth.test/"),
            ("RESOURCE_URL", "https://api.test/mcp"),
            ("OAUTH_SCOPES", "notes:read notes:write"),
        ])
        .unwrap();
        assert_eq!(c.oauth.resource.as_deref(), Some("https://api.test/mcp"));
        assert_eq!(c.oauth.issuer, "https://auth.test/api/auth");
        assert_eq!(c.oauth.public_url, "https://api.test");
        assert_eq!(c.oauth.scopes_supported, vec!["notes:read", "notes:write"]);
        assert_eq!(c.oauth.dpop_window_secs, 300);
        assert_each_refused(&[("RESOURCE_URL", "api.test"), ("DPOP_REQUIRED", "true")]);
        for (var, value) in [
            ("PUBLIC_URL", "https://api.test/x"),
            ("OAUTH_SCOPES", "a \"b"),
            ("DPOP_WINDOW_SECS", "0"),
        ] {
            let err = config(&[
                ("DATABASE_URL", "postgres://localhost/db"),
                ("RESOURCE_URL", "https://api.test"),
                (var, value),
            ])
            .unwrap_err()
            .to_string();
            assert!(err.starts_with(var), "{var}={value:?} gave {err:?}");
        }
    }
}

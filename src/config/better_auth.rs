//! The Better-Auth group: its URL, the JWT and JWKS rules, the secret, the session cookie,
//! `TRUSTED_ORIGINS` and `SESSION_CHECK`.

use std::time::Duration;

use super::env::{Env, invalid};
use crate::auth::policy::SessionCheck;
use crate::auth::{DEFAULT_BETTER_AUTH_URL, DEFAULT_JWKS_GRACE_SECS, DEFAULT_JWKS_MAX_WAITERS};
use crate::error::ConfigError;
use crate::secret::Secret;

pub(super) struct BetterAuthParts {
    pub(super) url: String,
    pub(super) jwks_url: String,
    pub(super) issuer: String,
    pub(super) audience: Vec<String>,
    pub(super) leeway: Duration,
    pub(super) refresh: Duration,
    pub(super) cooldown: Duration,
    pub(super) timeout: Duration,
    pub(super) grace: Duration,
    pub(super) max_waiters: usize,
    pub(super) secret: Option<Secret>,
    pub(super) require_signed_session_tokens: bool,
    pub(super) cookie_auth: bool,
    pub(super) session_cookie: String,
    pub(super) secure_cookies: bool,
    pub(super) session_check: SessionCheck,
}

impl BetterAuthParts {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let url = env.http_url("BETTER_AUTH_URL", || DEFAULT_BETTER_AUTH_URL.to_owned())?;
        let base = url.trim_end_matches('/').to_owned();
        let jwks_url = env.http_url("JWKS_URL", || format!("{base}/api/auth/jwks"))?;
        let issuer = env.get("JWT_ISSUER").unwrap_or_else(|| url.clone());
        let audience = env.list("JWT_AUDIENCE", &url);
        if audience.is_empty() {
            return Err(invalid("JWT_AUDIENCE", "names no audience"));
        }
        let secret = env.get("BETTER_AUTH_SECRET").map(Secret::new);
        let require_signed_session_tokens = env.flag("REQUIRE_SIGNED_SESSION_TOKENS", false)?;
        if require_signed_session_tokens && secret.is_none() {
            return Err(invalid(
                "REQUIRE_SIGNED_SESSION_TOKENS",
                "needs BETTER_AUTH_SECRET to check the signatures",
            ));
        }
        let cookie_auth = env.flag("COOKIE_AUTH", false)?;
        if cookie_auth && secret.is_none() {
            return Err(invalid(
                "COOKIE_AUTH",
                "needs BETTER_AUTH_SECRET to check the cookie's signature",
            ));
        }
        let prefix = env
            .get("COOKIE_PREFIX")
            .unwrap_or_else(|| "better-auth".to_owned());
        if !valid_cookie_name(&prefix) {
            return Err(invalid(
                "COOKIE_PREFIX",
                format!("{prefix:?} cannot start a cookie name (letters, digits and !#$%&'*+-.^_`|~ only)"),
            ));
        }
        let session_cookie = env
            .get("SESSION_COOKIE_NAME")
            .unwrap_or_else(|| format!("{prefix}.session_token"));
        if !valid_cookie_name(&session_cookie) {
            return Err(invalid(
                "SESSION_COOKIE_NAME",
                format!("{session_cookie:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~ only)"),
            ));
        }
        let secure_cookies = env.flag("SECURE_COOKIES", url.starts_with("https://"))?;
        Ok(Self {
            jwks_url,
            issuer,
            cookie_auth,
            session_cookie,
            secure_cookies,
            audience,
            leeway: env.secs("JWT_LEEWAY_SECS", 30, 0..=600)?,
            refresh: env.secs("JWKS_REFRESH_SECS", 300, 1..=86_400)?,
            cooldown: env.secs("JWKS_COOLDOWN_SECS", 5, 0..=3_600)?,
            timeout: env.secs("JWKS_TIMEOUT_SECS", 5, 1..=120)?,
            grace: env.secs(
                "JWKS_GRACE_PERIOD_SECS",
                DEFAULT_JWKS_GRACE_SECS,
                0..=10 * 365 * 86_400,
            )?,
            max_waiters: env.number("JWKS_MAX_WAITERS", DEFAULT_JWKS_MAX_WAITERS, 0..=10_000)?,
            secret,
            require_signed_session_tokens,
            session_check: env.choice(
                "SESSION_CHECK",
                SessionCheck::Auto,
                &[
                    ("off", SessionCheck::Off),
                    ("auto", SessionCheck::Auto),
                    ("required", SessionCheck::Required),
                ],
            )?,
            url,
        })
    }
}

/// `TRUSTED_ORIGINS`, or its default: Better-Auth's own origin and the CORS origins.
pub(super) fn trusted_origins(
    env: &Env<'_>,
    better_auth_url: &str,
    cors: &[String],
) -> Result<Vec<String>, ConfigError> {
    let configured = env.list("TRUSTED_ORIGINS", "");
    let origins = if configured.is_empty() {
        let mut origins: Vec<String> = origin_of(better_auth_url).into_iter().collect();
        origins.extend(cors.iter().filter(|o| *o != "*").cloned());
        origins
    } else {
        configured
    };
    for origin in &origins {
        if origin_of(origin).as_deref() != Some(origin.as_str()) {
            return Err(invalid(
                "TRUSTED_ORIGINS",
                format!("{origin:?} is not an origin such as https://app.example.com"),
            ));
        }
    }
    Ok(origins)
}

/// `scheme://host[:port]` of an http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let origin = parsed.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// A cookie name is an RFC 6265 token (the name Better-Auth sets, without its `__Secure-`).
fn valid_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

//! The Better-Auth group: its URL, the JWT and JWKS rules, the secret, the session cookie,
//! `TRUSTED_ORIGINS` and `SESSION_CHECK`.

use std::time::Duration;

use super::env::{Env, invalid};
use crate::auth::policy::SessionCheck;
use crate::auth::{AuthPolicy, DEFAULT_BETTER_AUTH_URL, JwksSettings};
use crate::error::ConfigError;
use crate::secret::Secret;

/// Better-Auth, as warden reads its work: where it is, which tokens it signs and with which
/// keys, its secret and session cookie, and how strictly sessions are checked.
#[derive(Debug, Clone)]
pub struct BetterAuthConfig {
    /// `BETTER_AUTH_URL` (default `http://localhost:3000`): Better-Auth's base URL.
    pub url: String,
    /// `JWKS_URL` (default `$BETTER_AUTH_URL/api/auth/jwks`).
    pub jwks_url: String,
    /// `JWT_ISSUER` (default `$BETTER_AUTH_URL`): the only `iss` accepted.
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE` (default `$BETTER_AUTH_URL`; a comma list): a token's `aud` must name one.
    pub jwt_audience: Vec<String>,
    /// `JWT_LEEWAY_SECS` (default 30): clock skew allowed on `exp` and `nbf`.
    pub jwt_leeway: Duration,
    /// `JWKS_REFRESH_SECS` (default 300): background refresh period of the key set.
    pub jwks_refresh: Duration,
    /// `JWKS_COOLDOWN_SECS` (default 5): minimum time between two fetches caused by unknown
    /// `kid`s, so a flood of random kids cannot turn warden into a JWKS hammer.
    pub jwks_cooldown: Duration,
    /// `JWKS_TIMEOUT_SECS` (default 5): a JWKS fetch that takes longer is abandoned.
    pub jwks_timeout: Duration,
    /// `JWKS_GRACE_PERIOD_SECS` (default 2592000 = 30 days, Better-Auth's default): how long
    /// after its `expires_at` a key in the database `jwks` table is still used as a fallback.
    pub jwks_grace: Duration,
    /// `JWKS_MAX_WAITERS` (default 8): how many requests with an unknown `kid` may wait for a
    /// JWKS fetch in flight; the rest are answered at once, so a hanging Better-Auth cannot
    /// tie up request slots.
    pub jwks_max_waiters: usize,
    /// `BETTER_AUTH_SECRET` (optional): verifies signed session tokens (`token.signature`).
    pub secret: Option<Secret>,
    /// `REQUIRE_SIGNED_SESSION_TOKENS` (default false): accept a Better-Auth session token as a
    /// bearer credential only in its signed form (`token.signature`), like the bearer plugin's
    /// `requireSignature`. Needs `BETTER_AUTH_SECRET`.
    pub require_signed_session_tokens: bool,
    /// `COOKIE_AUTH` (default false): Better-Auth's session cookie is a credential too (for
    /// `/auth/verify` and the library), with its cross-site rule (`TRUSTED_ORIGINS`).
    pub cookie_auth: bool,
    /// `TRUSTED_ORIGINS` (default: the origin of `BETTER_AUTH_URL` and every `CORS_ORIGINS`
    /// entry): where a cookie-borne change may come from.
    pub trusted_origins: Vec<String>,
    /// `SESSION_COOKIE_NAME` (default `$COOKIE_PREFIX.session_token`, with `COOKIE_PREFIX`
    /// default `better-auth`): Better-Auth's session cookie, as its `advanced.cookiePrefix` or
    /// `advanced.cookies.session_token.name` names it.
    pub session_cookie: String,
    /// `SECURE_COOKIES` (default: true when `BETTER_AUTH_URL` is https, as Better-Auth's own
    /// default): read the session cookie in its `__Secure-` form only (Better-Auth's
    /// `advanced.useSecureCookies`); false: in its plain form only.
    pub secure_cookies: bool,
    /// `SESSION_CHECK` (default `auto`): whether a JWT's `sid` must name a live session.
    pub session_check: SessionCheck,
}

impl BetterAuthConfig {
    /// Everything but `TRUSTED_ORIGINS`, whose default takes in `CORS_ORIGINS`: it is left
    /// empty here for [`trusted_origins`] to fill once the HTTP group is read. The defaults of
    /// the JWKS settings and of the session check are the library's ([`JwksSettings`],
    /// [`AuthPolicy`]).
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let url = env.http_url("BETTER_AUTH_URL", || DEFAULT_BETTER_AUTH_URL.to_owned())?;
        let base = url.trim_end_matches('/').to_owned();
        let jwks_url = env.http_url("JWKS_URL", || format!("{base}/api/auth/jwks"))?;
        let jwt_issuer = env.get("JWT_ISSUER").unwrap_or_else(|| url.clone());
        let jwt_audience = env.list("JWT_AUDIENCE", &url);
        if jwt_audience.is_empty() {
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
        let session_cookie = session_cookie(env)?;
        let secure_cookies = env.flag("SECURE_COOKIES", url.starts_with("https://"))?;
        let jwks = JwksSettings::default();
        Ok(Self {
            jwks_url,
            jwt_issuer,
            cookie_auth,
            trusted_origins: Vec::new(),
            session_cookie,
            secure_cookies,
            jwt_audience,
            jwt_leeway: env.secs("JWT_LEEWAY_SECS", crate::auth::DEFAULT_LEEWAY_SECS, 0..=600)?,
            jwks_refresh: env.secs("JWKS_REFRESH_SECS", jwks.refresh.as_secs(), 1..=86_400)?,
            jwks_cooldown: env.secs("JWKS_COOLDOWN_SECS", jwks.cooldown.as_secs(), 0..=3_600)?,
            jwks_timeout: env.secs("JWKS_TIMEOUT_SECS", jwks.timeout.as_secs(), 1..=120)?,
            jwks_grace: env.secs(
                "JWKS_GRACE_PERIOD_SECS",
                jwks.grace.as_secs(),
                0..=10 * 365 * 86_400,
            )?,
            jwks_max_waiters: env.number("JWKS_MAX_WAITERS", jwks.max_waiters, 0..=10_000)?,
            secret,
            require_signed_session_tokens,
            session_check: env.choice(
                "SESSION_CHECK",
                AuthPolicy::default().session_check,
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

/// `SESSION_COOKIE_NAME`, or its default from `COOKIE_PREFIX`, as Better-Auth names it.
fn session_cookie(env: &Env<'_>) -> Result<String, ConfigError> {
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
    Ok(session_cookie)
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

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, config};
    use super::*;

    #[test]
    fn defaults_derive_from_better_auth_url() {
        let c = config(&[("DATABASE_URL", "postgres://localhost/db")]).unwrap();
        let b = &c.better_auth;
        assert_eq!(b.url, "http://localhost:3000");
        assert_eq!(b.jwks_url, "http://localhost:3000/api/auth/jwks");
        assert_eq!(b.jwt_issuer, "http://localhost:3000");
        assert_eq!(b.jwt_audience, vec!["http://localhost:3000".to_owned()]);
        assert_eq!(b.jwt_leeway, Duration::from_secs(30));
        assert_eq!(b.jwks_refresh, Duration::from_secs(300));
        assert_eq!(b.jwks_cooldown, Duration::from_secs(5));
        assert_eq!(b.jwks_timeout, Duration::from_secs(5));
        assert_eq!(b.jwks_grace, Duration::from_secs(2_592_000));
        assert_eq!(b.jwks_max_waiters, 8);
        assert_eq!(b.session_check, SessionCheck::Auto);
        assert!(b.secret.is_none());
        assert_eq!(b.session_cookie, "better-auth.session_token");
        assert!(!b.secure_cookies, "plain http: the plain cookie");
        assert_eq!(b.trusted_origins, ["http://localhost:3000"]);

        let c = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("BETTER_AUTH_URL", "https://auth.example.com/"),
            ("JWT_AUDIENCE", "a, b,,c"),
            ("SESSION_CHECK", "Required"),
            ("BETTER_AUTH_SECRET", "s3cret"),
        ])
        .unwrap();
        let b = &c.better_auth;
        assert_eq!(b.session_check, SessionCheck::Required);
        assert!(!format!("{c:?}").contains("s3cret"), "secrets never print");
        assert_eq!(b.jwks_url, "https://auth.example.com/api/auth/jwks");
        assert!(
            b.secure_cookies,
            "https: the __Secure- cookie, as Better-Auth names it"
        );
        assert_eq!(b.jwt_audience, vec!["a", "b", "c"]);
    }

    #[test]
    fn the_session_cookie_is_named_as_better_auth_names_it() {
        let prefixed = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("COOKIE_PREFIX", "myapp"),
        ])
        .unwrap();
        assert_eq!(prefixed.better_auth.session_cookie, "myapp.session_token");
        let named = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("COOKIE_PREFIX", "myapp"),
            ("SESSION_COOKIE_NAME", "sid"),
        ])
        .unwrap();
        assert_eq!(
            named.better_auth.session_cookie, "sid",
            "a custom name replaces the prefixed one, as in Better-Auth"
        );
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        assert_each_refused(&[
            ("BETTER_AUTH_URL", "localhost:3000"),
            ("JWKS_URL", "ftp://x"),
            ("JWT_AUDIENCE", " , "),
            ("JWT_LEEWAY_SECS", "-1"),
            ("JWKS_REFRESH_SECS", "0"),
            ("JWKS_COOLDOWN_SECS", "soon"),
            ("SESSION_CHECK", "sometimes"),
            ("COOKIE_PREFIX", "my app"),
            ("SESSION_COOKIE_NAME", "sid;x=1"),
            ("SECURE_COOKIES", "sometimes"),
        ]);
    }
}

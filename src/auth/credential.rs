//! Where a request's credential is, and the one rule that comes with cookies.
//!
//! - `Authorization: Bearer <token>`: a Better-Auth JWT or session token. Always read first.
//! - With cookies on (`COOKIE_AUTH=true`), Better-Auth's session cookie
//!   (`better-auth.session_token`, or `__Secure-better-auth.session_token` over https): what a
//!   browser sends when it navigates to a server-rendered page. It is always the signed form,
//!   checked with `BETTER_AUTH_SECRET`.
//!
//! A browser attaches cookies to cross-site requests too, so a cookie alone must not authorise
//! a change: like Better-Auth's own CSRF rule, an unsafe method (anything but GET, HEAD,
//! OPTIONS, TRACE) carried by a cookie needs an `Origin` (or, without one, a `Referer`) in
//! `TRUSTED_ORIGINS`. Bearer tokens are not sent by browsers on their own and need no such rule.

use axum::http::header::{AUTHORIZATION, COOKIE, ORIGIN, REFERER};
use axum::http::{HeaderMap, Method};

use super::policy::AuthPolicy;
use super::verify::MAX_TOKEN_LEN;
use crate::error::ApiError;

/// Better-Auth's session cookie names (plain, and the `__Secure-` form it uses over https).
pub const SESSION_COOKIES: [&str; 2] = ["__Secure-better-auth.session_token", "better-auth.session_token"];

/// A credential as the request presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented<'a> {
    /// The token of `Authorization: Bearer`.
    Bearer(&'a str),
    /// The value of Better-Auth's session cookie (signed, maybe URL-encoded).
    Cookie(&'a str),
}

/// The request's credential: the bearer token if an `Authorization` header is present (a bad
/// one is an error, never a fallback to the cookie), else the session cookie when cookies are
/// on; `None` when there is neither.
pub fn presented<'a>(headers: &'a HeaderMap, policy: &AuthPolicy) -> Result<Option<Presented<'a>>, ApiError> {
    if headers.contains_key(AUTHORIZATION) {
        return bearer_token(headers).map(|t| Some(Presented::Bearer(t)));
    }
    if !policy.cookie_auth {
        return Ok(None);
    }
    Ok(session_cookie(headers).map(Presented::Cookie))
}

/// Better-Auth's session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    let pairs = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='));
    let (mut secure, mut plain) = (None, None);
    for (name, value) in pairs {
        if name == SESSION_COOKIES[0] && secure.is_none() {
            secure = Some(value);
        } else if name == SESSION_COOKIES[1] && plain.is_none() {
            plain = Some(value);
        }
    }
    // The __Secure- form wins when both are present (it cannot be set over plain http).
    secure
        .or(plain)
        .filter(|v| !v.is_empty() && v.len() <= MAX_TOKEN_LEN)
}

/// A cookie-borne request with an unsafe method must come from a trusted origin.
pub fn check_cookie_origin(
    method: &Method,
    headers: &HeaderMap,
    policy: &AuthPolicy,
) -> Result<(), ApiError> {
    if matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return Ok(());
    }
    let origin = headers
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(origin_of)
        });
    match origin {
        None => Err(ApiError::InvalidOrigin(
            "a cookie-authenticated change needs an Origin header".into(),
        )),
        Some(origin) if policy.trusted_origins.contains(&origin) => Ok(()),
        Some(origin) => Err(ApiError::InvalidOrigin(format!(
            "the origin {:?} is not trusted",
            origin.chars().take(100).collect::<String>()
        ))),
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let origin = parsed.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// The token of `Authorization: Bearer <token>`. The scheme is case-insensitive (RFC 7235).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(ApiError::MissingToken);
    };
    if values.next().is_some() {
        return Err(ApiError::InvalidToken(
            "send exactly one Authorization header".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::InvalidToken("the Authorization header is not valid text".into()))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::InvalidToken(
            "the Authorization header must use the Bearer scheme".into(),
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::MissingToken);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::InvalidToken(format!(
            "the token is longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn cookies_on() -> AuthPolicy {
        AuthPolicy {
            cookie_auth: true,
            trusted_origins: vec!["https://app.test".into()],
            ..AuthPolicy::default()
        }
    }

    #[test]
    fn bearer_first_then_the_cookie_when_on() {
        let policy = cookies_on();
        let both = headers(&[
            ("authorization", "Bearer abc"),
            ("cookie", "better-auth.session_token=t.s"),
        ]);
        assert_eq!(presented(&both, &policy).unwrap(), Some(Presented::Bearer("abc")));
        let cookie = headers(&[("cookie", "a=1; better-auth.session_token=t.s; b=2")]);
        assert_eq!(
            presented(&cookie, &policy).unwrap(),
            Some(Presented::Cookie("t.s"))
        );
        let secure = headers(&[(
            "cookie",
            "better-auth.session_token=plain; __Secure-better-auth.session_token=sec",
        )]);
        assert_eq!(
            presented(&secure, &policy).unwrap(),
            Some(Presented::Cookie("sec"))
        );
        assert_eq!(
            presented(&cookie, &AuthPolicy::default()).unwrap(),
            None,
            "cookies off"
        );
        let bad = headers(&[
            ("authorization", "Basic abc"),
            ("cookie", "better-auth.session_token=t.s"),
        ]);
        assert!(
            presented(&bad, &policy).is_err(),
            "a bad header never falls back to the cookie"
        );
    }

    #[test]
    fn unsafe_cookie_requests_need_a_trusted_origin() {
        let policy = cookies_on();
        let post = Method::POST;
        assert!(check_cookie_origin(&Method::GET, &headers(&[]), &policy).is_ok());
        assert!(check_cookie_origin(&post, &headers(&[]), &policy).is_err());
        assert!(check_cookie_origin(&post, &headers(&[("origin", "https://app.test")]), &policy).is_ok());
        assert!(check_cookie_origin(&post, &headers(&[("origin", "https://evil.test")]), &policy).is_err());
        assert!(check_cookie_origin(&post, &headers(&[("origin", "null")]), &policy).is_err());
        assert!(
            check_cookie_origin(
                &post,
                &headers(&[("referer", "https://app.test/notes?x=1")]),
                &policy
            )
            .is_ok()
        );
        assert!(
            check_cookie_origin(&post, &headers(&[("referer", "https://app.test.evil/")]), &policy).is_err()
        );
    }
}

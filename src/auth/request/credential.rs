//! Where a request's credential is, what kind it is ([`Presented`]), and the one rule that
//! comes with cookies.
//!
//! - `Authorization: Bearer <token>`: a Better-Auth JWT (three dot-separated parts) or session
//!   token (anything else). Always read first.
//! - With cookies on (`COOKIE_AUTH=true`), Better-Auth's session cookie
//!   (`SESSION_COOKIE_NAME`, by default `better-auth.session_token`; its `__Secure-` form
//!   instead when Better-Auth uses that, over https: `SECURE_COOKIES`): what a browser sends
//!   when it navigates to a server-rendered page. It is always the signed form, checked with
//!   `BETTER_AUTH_SECRET`. Only the form Better-Auth reads is read, so a cookie of the other
//!   form (set for the whole domain by a sibling subdomain) cannot sign a browser in to warden
//!   while Better-Auth sees it signed out.
//!
//! A browser attaches cookies to cross-site requests too, so a cookie alone must not authorise
//! a change. The cookie works on every route that takes a credential, `/admin` included, so a
//! cross-site form posting an empty body to `POST /admin/users/{id}/ban` would act with an
//! admin's cookie but for this rule, Better-Auth's own CSRF rule made a little stricter: a
//! cookie-borne request whose method is not GET, HEAD or OPTIONS (or whose method is not known,
//! see forward auth) needs an `Origin` in `TRUSTED_ORIGINS` (without an `Origin`, the origin of
//! its `Referer`); `Origin: null` (sandboxed frames, some redirects, `file:` pages) is refused
//! outright, as is `Sec-Fetch-Site: cross-site` (the browser's own word that the request comes
//! from another site). Bearer tokens are not sent by browsers on their own and need no such
//! rule.

use axum::http::header::{AUTHORIZATION, COOKIE, ORIGIN, REFERER};
use axum::http::{HeaderMap, Method};

use crate::auth::api_key::{ApiKeySettings, MAX_API_KEY_LEN};
use crate::auth::jwt::looks_like_jwt;
use crate::auth::jwt::verify::MAX_TOKEN_LEN;
use crate::auth::policy::AuthPolicy;
use crate::error::ApiError;

/// The prefix Better-Auth puts before its cookies' names when it serves https.
const SECURE_PREFIX: &str = "__Secure-";

/// A credential as the request presents it, by kind: each kind has its own identify step
/// (`request::identify`), and a new kind of credential is a new variant here and a new step
/// there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented<'a> {
    /// A Better-Auth JWT in `Authorization: Bearer`.
    Jwt(&'a str),
    /// A Better-Auth session token in `Authorization: Bearer` (the bearer plugin's, raw or
    /// signed).
    SessionToken(&'a str),
    /// The value of Better-Auth's session cookie (signed, maybe URL-encoded).
    Cookie(&'a str),
    /// A key of Better-Auth's api-key plugin, from its header (`API_KEY_HEADERS`).
    ApiKey(&'a str),
    /// An OAuth access token sent with the DPoP scheme (`Authorization: DPoP <token>`, RFC
    /// 9449): a JWT or an opaque token, whose proof is in the `DPoP` header.
    Dpop(&'a str),
}

/// The request's credential: the bearer token if an `Authorization` header is present (a bad
/// one is an error, never a fallback to another credential), else an API key when keys are on
/// and one of their headers is present, else the session cookie when cookies are on; `None`
/// when there is none of them.
pub fn presented<'a>(headers: &'a HeaderMap, policy: &AuthPolicy) -> Result<Option<Presented<'a>>, ApiError> {
    if headers.contains_key(AUTHORIZATION) {
        let (token, dpop) = authorization_token(headers, policy.oauth.enabled())?;
        if dpop {
            return Ok(Some(Presented::Dpop(token)));
        }
        return Ok(Some(if looks_like_jwt(token) {
            Presented::Jwt(token)
        } else {
            Presented::SessionToken(token)
        }));
    }
    if let Some(key) = api_key(headers, &policy.api_keys)? {
        return Ok(Some(Presented::ApiKey(key)));
    }
    if !policy.cookie_auth {
        return Ok(None);
    }
    Ok(session_cookie(headers, &policy.session_cookie, policy.secure_cookies).map(Presented::Cookie))
}

/// The API key in the first of `settings.headers` the request carries (an empty one counts as
/// absent, as in the plugin); `None` when keys are off or none is sent. A repeated header, a
/// value that is not printable ASCII without spaces (after trimming), or one over
/// [`MAX_API_KEY_LEN`] is refused (401 `invalid_api_key`) before anything is looked up.
pub fn api_key<'a>(headers: &'a HeaderMap, settings: &ApiKeySettings) -> Result<Option<&'a str>, ApiError> {
    if !settings.enabled {
        return Ok(None);
    }
    for name in &settings.headers {
        let mut values = headers.get_all(name).iter();
        let Some(value) = values.next() else { continue };
        if value.is_empty() {
            continue;
        }
        if values.next().is_some() {
            return Err(ApiError::InvalidApiKey(format!("send exactly one {name} header")));
        }
        if value.len() > MAX_API_KEY_LEN {
            return Err(ApiError::InvalidApiKey(format!(
                "the API key is longer than {MAX_API_KEY_LEN} bytes"
            )));
        }
        let key = value
            .to_str()
            .map_err(|_| ApiError::InvalidApiKey("the API key is not valid text".into()))?
            .trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::InvalidApiKey("the API key is not valid text".into()));
        }
        return Ok(Some(key));
    }
    Ok(None)
}

/// Better-Auth's session cookie named `name` (with `secure`, its `__Secure-` form), if the
/// request carries one: the first of that name.
pub fn session_cookie<'a>(headers: &'a HeaderMap, name: &str, secure: bool) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| {
            if secure {
                cookie.strip_prefix(SECURE_PREFIX) == Some(name)
            } else {
                *cookie == name
            }
        })
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty() && v.len() <= MAX_TOKEN_LEN)
}

/// A cookie-borne request must come from a trusted origin unless its method is safe (GET,
/// HEAD, OPTIONS, as Better-Auth's rule has it). `method` is `None` when it is not known (a
/// forward-auth request whose proxy named none, or two different ones): treated as unsafe.
pub fn check_cookie_origin(
    method: Option<&Method>,
    headers: &HeaderMap,
    policy: &AuthPolicy,
) -> Result<(), ApiError> {
    if method.is_some_and(|m| matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)) {
        return Ok(());
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(ApiError::InvalidOrigin(
            "the browser says this cookie-authenticated change comes from another site (Sec-Fetch-Site: cross-site)"
                .into(),
        ));
    }
    let origin = match headers.get(ORIGIN) {
        Some(origin) => {
            let origin = origin.to_str().unwrap_or_default();
            if origin.eq_ignore_ascii_case("null") {
                return Err(ApiError::InvalidOrigin(
                    "a cookie-authenticated change from an opaque origin (Origin: null) is refused".into(),
                ));
            }
            Some(origin.to_owned())
        }
        None => headers
            .get(REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(origin_of),
    };
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
#[cfg(feature = "server")]
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    authorization_token(headers, false).map(|(token, _)| token)
}

/// The token of `Authorization: Bearer <token>`, or with `dpop` allowed of `Authorization:
/// DPoP <token>` too (then `true`).
pub fn authorization_token(headers: &HeaderMap, dpop: bool) -> Result<(&str, bool), ApiError> {
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
    let is_dpop = dpop && scheme.eq_ignore_ascii_case("dpop");
    if !scheme.eq_ignore_ascii_case("bearer") && !is_dpop {
        return Err(ApiError::InvalidToken(if dpop {
            "the Authorization header must use the Bearer or DPoP scheme".into()
        } else {
            "the Authorization header must use the Bearer scheme".into()
        }));
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
    Ok((token, is_dpop))
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
    fn the_cookie_name_is_configurable_in_either_form() {
        let policy = AuthPolicy {
            session_cookie: "myapp.session_token".into(),
            ..cookies_on()
        };
        let default = headers(&[("cookie", "better-auth.session_token=t.s")]);
        assert_eq!(
            presented(&default, &policy).unwrap(),
            None,
            "another name is not ours"
        );
        let mine = headers(&[("cookie", "x=1; myapp.session_token=a.b")]);
        assert_eq!(presented(&mine, &policy).unwrap(), Some(Presented::Cookie("a.b")));
        let both = headers(&[(
            "cookie",
            "myapp.session_token=plain; __Secure-myapp.session_token=sec",
        )]);
        assert_eq!(
            presented(&both, &policy).unwrap(),
            Some(Presented::Cookie("plain"))
        );
        let secure = AuthPolicy {
            secure_cookies: true,
            ..policy.clone()
        };
        assert_eq!(presented(&both, &secure).unwrap(), Some(Presented::Cookie("sec")));
        let prefix_only = headers(&[("cookie", "__Secure-=x; myapp.session_tokenX=y")]);
        assert_eq!(presented(&prefix_only, &policy).unwrap(), None);
    }

    #[test]
    fn bearer_first_then_the_cookie_when_on() {
        let policy = cookies_on();
        let both = headers(&[
            ("authorization", "Bearer abc"),
            ("cookie", "better-auth.session_token=t.s"),
        ]);
        assert_eq!(
            presented(&both, &policy).unwrap(),
            Some(Presented::SessionToken("abc"))
        );
        let jwt = headers(&[("authorization", "Bearer a.b.c")]);
        assert_eq!(presented(&jwt, &policy).unwrap(), Some(Presented::Jwt("a.b.c")));
        let cookie = headers(&[("cookie", "a=1; better-auth.session_token=t.s; b=2")]);
        assert_eq!(
            presented(&cookie, &policy).unwrap(),
            Some(Presented::Cookie("t.s"))
        );
        let both = headers(&[(
            "cookie",
            "better-auth.session_token=plain; __Secure-better-auth.session_token=sec",
        )]);
        assert_eq!(
            presented(&both, &policy).unwrap(),
            Some(Presented::Cookie("plain"))
        );
        let https = AuthPolicy {
            secure_cookies: true,
            ..cookies_on()
        };
        assert_eq!(presented(&both, &https).unwrap(), Some(Presented::Cookie("sec")));
        assert_eq!(
            presented(&cookie, &https).unwrap(),
            None,
            "over https Better-Auth reads only the __Secure- form, so warden does too"
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
    fn the_api_key_header_takes_one_printable_key_and_refuses_the_rest() {
        let settings = ApiKeySettings::default();
        let key = |pairs: &[(&str, &str)]| api_key(&headers(pairs), &settings).map(|k| k.map(str::to_owned));
        assert_eq!(
            key(&[("x-api-key", "wd_abc")]).unwrap().as_deref(),
            Some("wd_abc")
        );
        assert_eq!(
            key(&[("x-api-key", "  wd_abc ")]).unwrap().as_deref(),
            Some("wd_abc")
        );
        assert_eq!(
            key(&[("x-api-key", "")]).unwrap(),
            None,
            "empty is absent, as in the plugin"
        );
        assert_eq!(key(&[]).unwrap(), None);
        for bad in ["a b", "a\tb", "   "] {
            assert!(key(&[("x-api-key", bad)]).is_err(), "{bad:?}");
        }
        assert!(key(&[("x-api-key", "a"), ("x-api-key", "b")]).is_err());
        assert!(key(&[("x-api-key", &"k".repeat(MAX_API_KEY_LEN + 1))]).is_err());
        let off = ApiKeySettings {
            enabled: false,
            ..ApiKeySettings::default()
        };
        assert_eq!(api_key(&headers(&[("x-api-key", "wd_abc")]), &off).unwrap(), None);
        // Authorization ranks first; the key before the cookie.
        let policy = AuthPolicy {
            cookie_auth: true,
            ..AuthPolicy::default()
        };
        let both = headers(&[("authorization", "Bearer a.b.c"), ("x-api-key", "wd_abc")]);
        assert_eq!(presented(&both, &policy).unwrap(), Some(Presented::Jwt("a.b.c")));
        let key_and_cookie = headers(&[
            ("cookie", "better-auth.session_token=t.s"),
            ("x-api-key", "wd_abc"),
        ]);
        assert_eq!(
            presented(&key_and_cookie, &policy).unwrap(),
            Some(Presented::ApiKey("wd_abc"))
        );
    }

    #[test]
    fn random_bytes_in_the_api_key_header_never_panic_and_only_printable_keys_pass() {
        let settings = ApiKeySettings::default();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = usize::try_from(next() % 80).unwrap_or(0);
            let bytes: Vec<u8> = (0..len).map(|_| (next() % 256) as u8).collect();
            let Ok(value) = axum::http::HeaderValue::from_bytes(&bytes) else {
                continue;
            };
            let mut map = HeaderMap::new();
            map.insert("x-api-key", value);
            if let Ok(Some(key)) = api_key(&map, &settings) {
                assert!(
                    !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic()),
                    "{bytes:?}"
                );
            }
        }
    }

    #[test]
    fn unsafe_cookie_requests_need_a_trusted_origin() {
        let policy = cookies_on();
        let post = Some(&Method::POST);
        let check = |method: Option<&Method>, pairs: &[(&str, &str)]| {
            check_cookie_origin(method, &headers(pairs), &policy).is_ok()
        };
        for safe in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(check(Some(&safe), &[]), "{safe}");
        }
        for method in [
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::TRACE,
        ] {
            assert!(!check(Some(&method), &[]), "{method} without an origin");
            assert!(
                check(Some(&method), &[("origin", "https://app.test")]),
                "{method}"
            );
        }
        assert!(!check(post, &[("origin", "https://evil.test")]));
        assert!(check(post, &[("referer", "https://app.test/notes?x=1")]));
        assert!(!check(post, &[("referer", "https://app.test.evil/")]));
        // An unknown method is an unsafe one.
        assert!(!check(None, &[]));
        assert!(check(None, &[("origin", "https://app.test")]));
    }

    #[test]
    fn origin_null_and_cross_site_fetches_are_refused_whatever_else_they_carry() {
        let policy = cookies_on();
        let refused = |pairs: &[(&str, &str)]| {
            matches!(
                check_cookie_origin(Some(&Method::POST), &headers(pairs), &policy),
                Err(ApiError::InvalidOrigin(_))
            )
        };
        // `null` never falls back to a Referer, however trusted.
        assert!(refused(&[("origin", "null"), ("referer", "https://app.test/")]));
        assert!(refused(&[("origin", "null")]));
        // The browser's own word outranks an Origin it would not send cross-site.
        assert!(refused(&[
            ("origin", "https://app.test"),
            ("sec-fetch-site", "cross-site")
        ]));
        assert!(refused(&[("sec-fetch-site", "Cross-Site")]));
        for site in ["same-origin", "same-site", "none"] {
            assert!(
                !refused(&[("origin", "https://app.test"), ("sec-fetch-site", site)]),
                "{site}"
            );
        }
        // Safe methods stay allowed whatever the browser says (a cross-site link is a GET).
        assert!(
            check_cookie_origin(
                Some(&Method::GET),
                &headers(&[("sec-fetch-site", "cross-site")]),
                &policy
            )
            .is_ok()
        );
    }
}

//! `/console`: pages for people — sign-in, profile, sessions, accounts, organizations and the
//! admin pages — as plain HTML, CSS and ES modules from `console/`, compiled into the binary.
//! The page signs in through Better-Auth's own HTTP API and calls warden's API with the JWT,
//! like any other frontend; nothing here reads the database or decides anything.
//!
//! - `GET /console` (and `/console/`): the page, `Cache-Control: no-cache` with an `ETag`, so a
//!   new release is picked up on the next load. Where Better-Auth is comes as a data attribute
//!   on `<html>` (no inline script): empty with `AUTH_PROXY=true` (same origin), else the origin
//!   of `BETTER_AUTH_URL`. So do the social sign-in buttons to show (`CONSOLE_SOCIAL_PROVIDERS`,
//!   comma-separated): Better-Auth has no endpoint that lists its providers, so the page never
//!   asks it, and works the same against any Better-Auth.
//! - `GET /console/assets/{version}/{file}`: the CSS, scripts and icon. `version` is a hash of
//!   every asset, so they are cached for a year (`immutable`); a request naming another version
//!   (a page from an older or newer replica) gets today's file, not cached.
//! - Every answer under `/console`, errors and 304s included, carries the security headers: a
//!   Content-Security-Policy that allows no inline script or style, images only from warden or
//!   over https, and connections only to warden and Better-Auth, `frame-ancestors 'none'`,
//!   `Referrer-Policy`, `X-Content-Type-Options`.
//!
//! `CONSOLE=false` leaves these routes out: `/console` is then the API's usual 404.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use crate::error::ApiError;
use crate::server::state::AppState;

/// The page, with `{{assets}}`, `{{auth_url}}` and `{{social_providers}}` filled in at start.
const INDEX: &str = include_str!("../../../console/index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file the page loads, by the name it is served under.
const FILES: &[(&str, &str, &[u8])] = &[
    ("console.css", CSS, include_bytes!("../../../console/console.css")),
    ("app.js", JS, include_bytes!("../../../console/app.js")),
    ("auth.js", JS, include_bytes!("../../../console/auth.js")),
    ("api.js", JS, include_bytes!("../../../console/api.js")),
    ("problem.js", JS, include_bytes!("../../../console/problem.js")),
    ("dom.js", JS, include_bytes!("../../../console/dom.js")),
    ("me.js", JS, include_bytes!("../../../console/me.js")),
    ("admin.js", JS, include_bytes!("../../../console/admin.js")),
    ("icon.svg", SVG, include_bytes!("../../../console/icon.svg")),
];

/// Hashed assets never change under their URL.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page (and assets asked for under another version) is revalidated on every load.
const REVALIDATE: &str = "no-cache";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    etag: HeaderValue,
}

struct Assets {
    /// A hash of every asset: the `{version}` in their URLs.
    version: String,
    files: Vec<Asset>,
}

static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let mut all = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let files = FILES
        .iter()
        .map(|&(name, content_type, body)| {
            all.update(name.as_bytes());
            all.update(body);
            Asset {
                name,
                content_type,
                body,
                etag: etag_of(body),
            }
        })
        .collect();
    Assets {
        version: hex(all.finish().as_ref(), 12),
        files,
    }
});

fn hex(bytes: &[u8], len: usize) -> String {
    bytes.iter().take(len / 2).map(|b| format!("{b:02x}")).collect()
}

/// A weak validator: compression may change the bytes on the wire, never their meaning.
fn etag_of(body: &[u8]) -> HeaderValue {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    HeaderValue::from_str(&format!("W/\"{}\"", hex(digest.as_ref(), 32)))
        .unwrap_or_else(|_| HeaderValue::from_static("W/\"console\""))
}

/// What the console's routes share: the rendered page and the headers every answer carries.
struct Console {
    index: axum::body::Bytes,
    index_etag: HeaderValue,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Console {
    fn new(state: &AppState) -> Self {
        // With the proxy, Better-Auth is on this origin: the page calls /api/auth/* here.
        let auth_origin = match &state.auth_proxy {
            Some(_) => None,
            None => origin_of(&state.better_auth_url),
        };
        let index = INDEX
            .replace("{{assets}}", &format!("/console/assets/{}", ASSETS.version))
            .replace(
                "{{auth_url}}",
                &escape_attribute(auth_origin.as_deref().unwrap_or("")),
            )
            .replace(
                "{{social_providers}}",
                &escape_attribute(&state.console_social_providers.join(",")),
            );
        let connect = match &auth_origin {
            Some(origin) => format!("'self' {origin}"),
            None => "'self'".to_owned(),
        };
        // img-src: people's pictures are URLs they chose, shown in an admin's browser: https only,
        // so no plain-http or internal address is ever fetched from there (the page's own
        // script shows https pictures only, too).
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https:; \
             connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'"
        );
        let headers = [
            ("content-security-policy", csp.as_str()),
            // Not "no-referrer": that would make a same-origin POST's Origin "null", and
            // Better-Auth refuses sign-ins without a real Origin (AUTH_PROXY=true).
            ("referrer-policy", "same-origin"),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("cross-origin-opener-policy", "same-origin"),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((HeaderName::from_static(name), HeaderValue::from_str(value).ok()?)))
        .collect();
        Self {
            index_etag: etag_of(index.as_bytes()),
            index: index.into(),
            headers,
        }
    }
}

/// `scheme://host[:port]` of an http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let origin = reqwest::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The console's routes over `state`'s Better-Auth settings.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let console = Arc::new(Console::new(state));
    Router::new()
        .route("/console", get(index).fallback(method_not_allowed))
        .route("/console/", get(index).fallback(method_not_allowed))
        .route(
            "/console/assets/{version}/{file}",
            get(asset).fallback(method_not_allowed),
        )
        // Unknown console paths get the API's 404, with the console's headers.
        .route("/console/{*rest}", any(not_found))
        .layer(middleware::map_response_with_state(
            Arc::clone(&console),
            security_headers,
        ))
        .with_state(console)
}

async fn security_headers(State(console): State<Arc<Console>>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in &console.headers {
        headers.insert(name.clone(), value.clone());
    }
    response
}

async fn index(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    cached(
        &headers,
        &console.index_etag,
        REVALIDATE,
        "text/html; charset=utf-8",
        Body::from(console.index.clone()),
    )
}

async fn asset(path: Result<Path<(String, String)>, PathRejection>, headers: HeaderMap) -> Response {
    let Ok(Path((version, name))) = path else {
        return ApiError::NotFound.into_response();
    };
    let Some(file) = ASSETS.files.iter().find(|f| f.name == name) else {
        return ApiError::NotFound.into_response();
    };
    let cache = if version == ASSETS.version {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    cached(
        &headers,
        &file.etag,
        cache,
        file.content_type,
        Body::from(file.body),
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Answered here rather than by axum, so the answer passes through the headers layer whole.
async fn method_not_allowed() -> impl IntoResponse {
    (
        [(ALLOW, HeaderValue::from_static("GET, HEAD"))],
        ApiError::MethodNotAllowed,
    )
}

/// 304 when the client's copy is current (`If-None-Match`), else the body.
fn cached(
    request: &HeaderMap,
    etag: &HeaderValue,
    cache_control: &'static str,
    content_type: &'static str,
    body: Body,
) -> Response {
    let cache = (CACHE_CONTROL, HeaderValue::from_static(cache_control));
    if is_fresh(request, etag) {
        return (StatusCode::NOT_MODIFIED, [(ETAG, etag.clone()), cache]).into_response();
    }
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (ETAG, etag.clone()),
            cache,
        ],
        body,
    )
        .into_response()
}

/// `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2) or is `*`.
fn is_fresh(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or_default().trim_start_matches("W/");
    request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_uses_the_weak_comparison() {
        let etag = HeaderValue::from_static("W/\"abc\"");
        let mut request = HeaderMap::new();
        assert!(!is_fresh(&request, &etag));
        request.insert(IF_NONE_MATCH, HeaderValue::from_static("\"x\", \"abc\""));
        assert!(is_fresh(&request, &etag));
        request.insert(IF_NONE_MATCH, HeaderValue::from_static("W/\"abd\""));
        assert!(!is_fresh(&request, &etag));
        request.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(is_fresh(&request, &etag));
    }

    #[test]
    fn the_page_names_every_asset_by_version_and_escapes_the_auth_url() {
        assert!(
            INDEX.contains("{{assets}}/app.js")
                && INDEX.contains("{{auth_url}}")
                && INDEX.contains("{{social_providers}}")
        );
        assert_eq!(
            escape_attribute("https://a.test/?x=\"<&>"),
            "https://a.test/?x=&quot;&lt;&amp;&gt;"
        );
        assert_eq!(ASSETS.version.len(), 12);
        assert_eq!(
            origin_of("https://auth.example.com:8443/base/").as_deref(),
            Some("https://auth.example.com:8443")
        );
    }
}

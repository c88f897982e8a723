//! `AUTH_PROXY=true`: `/api/auth/*` forwarded to Better-Auth, so a frontend can talk to one
//! origin. Method, path, query, headers (cookies and `Origin` included) and body go up; status,
//! headers (every `set-cookie`, `set-auth-jwt`, `set-auth-token`, redirects) and a streamed body
//! come back.
//!
//! What the proxy does not pass through, because a client could abuse it:
//! - Client-supplied address headers (`X-Forwarded-For`, `X-Real-IP`, `Forwarded`,
//!   `X-Forwarded-Host`/`-Proto`): Better-Auth's rate limiter counts per address, so the proxy
//!   sets `X-Forwarded-For` to the client it sees itself (the socket peer, or the address a
//!   `TRUSTED_PROXIES` proxy reports), and a client cannot pick its own bucket.
//! - Paths with dot-segments or encoded slashes (`/api/auth/%2e%2e/...`): they would reach
//!   other paths of the upstream; refused with 400.
//! - Itself: each hop adds `Via: 1.1 warden-<id>`; a request that already carries this
//!   process's id has looped (`BETTER_AUTH_URL` points at warden) and is refused with 508.
//! - Bodies over `BODY_LIMIT_BYTES`, chunked or not: 413. (Bodies are read whole before
//!   forwarding: Better-Auth's requests are small JSON.)

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};
use std::time::Duration;

use crate::error::ApiError;
use crate::state::AppState;

/// A connection to Better-Auth that takes longer than this fails (502).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how `/api/auth/*` is forwarded.
#[derive(Debug)]
pub(crate) struct AuthProxy {
    upstream: String,
    client: reqwest::Client,
    /// This process's `Via` entry.
    via: String,
    body_limit: usize,
}

impl AuthProxy {
    /// `upstream` is Better-Auth's base URL. Redirects are passed to the browser, not followed.
    pub(crate) fn new(
        upstream: &str,
        request_timeout: Duration,
        body_limit: usize,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(request_timeout)
            .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut id = [0u8; 6];
        let _ = aws_lc_rs::rand::fill(&mut id);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
            via: format!("1.1 warden-{id}"),
            body_limit,
        })
    }
}

/// `/api/auth` and everything under it, forwarded through `proxy`; `None` (the client could
/// not be built, which the start-up log says) answers 502 to every request.
pub(crate) fn router(proxy: Option<AuthProxy>) -> Router<AppState> {
    Router::new()
        .route("/api/auth", any(forward))
        .route("/api/auth/{*rest}", any(forward))
        .layer(Extension(proxy.map(Arc::new)))
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers through which a client could claim another address or origin.
const CLIENT_ADDRESS: [&str; 5] = [
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-proto",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, skip: &[&str]) {
    for (name, value) in from {
        if !HOP_BY_HOP.contains(&name.as_str())
            && !skip.contains(&name.as_str())
            && name != header::HOST
            && name != header::CONTENT_LENGTH
        {
            to.append(name.clone(), value.clone());
        }
    }
}

/// A path is forwarded only when it means the same thing to every reader: no `.` or `..`
/// segment, no encoded slash or backslash, no backslash, once percent-decoded.
pub(crate) fn safe_path(path: &str) -> bool {
    if path.contains('\\') {
        return false;
    }
    path.split('/').all(|segment| {
        let Some(decoded) = percent_decode(segment) else {
            return false;
        };
        decoded != "." && decoded != ".." && !decoded.contains(['/', '\\']) && !decoded.contains('\0')
    })
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn forward(
    State(state): State<AppState>,
    Extension(proxy): Extension<Option<Arc<AuthProxy>>>,
    request: Request,
) -> Result<Response, ApiError> {
    let proxy = proxy.ok_or(ApiError::BadGateway)?;
    let (parts, body) = request.into_parts();
    if !safe_path(parts.uri.path()) {
        return Err(ApiError::BadRequest(
            "the path has dot-segments or encoded slashes".into(),
        ));
    }
    let looped = parts
        .headers
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|hop| hop.trim() == proxy.via));
    if looped {
        return Err(ApiError::ProxyLoop);
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/api/auth");
    let url = format!("{}{path_and_query}", proxy.upstream);

    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers, &CLIENT_ADDRESS);
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = state.auth.client_ips().resolve(peer, &parts.headers);
        if let Ok(value) = HeaderValue::from_str(&client.to_string()) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), value);
        }
    }
    if let Some(host) = parts.headers.get(header::HOST) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("http"),
    );
    let via = match parts.headers.get(header::VIA).and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {}", proxy.via),
        None => proxy.via.clone(),
    };
    if let Ok(via) = HeaderValue::from_str(&via) {
        headers.insert(header::VIA, via);
    }

    let body = axum::body::to_bytes(body, proxy.body_limit)
        .await
        .map_err(|err| {
            if is_length_limit(&err) {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("the request body could not be read".into())
            }
        })?;

    let upstream = proxy
        .client
        .request(parts.method, &url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "auth proxy: Better-Auth unreachable");
            ApiError::BadGateway
        })?;

    let mut response = Response::builder().status(upstream.status().as_u16());
    if let Some(out) = response.headers_mut() {
        copy_headers(upstream.headers(), out, &[]);
    }
    response
        .body(Body::from_stream(upstream.bytes_stream()))
        .map_err(|err| ApiError::Internal(format!("auth proxy response: {err}")))
}

fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_encoded_slashes_are_refused() {
        for ok in [
            "/api/auth",
            "/api/auth/sign-in/email",
            "/api/auth/callback/google",
            "/api/auth/a%20b",
        ] {
            assert!(safe_path(ok), "{ok}");
        }
        for bad in [
            "/api/auth/../admin",
            "/api/auth/%2e%2e/x",
            "/api/auth/%2E%2e/x",
            "/api/auth/./jwks",
            "/api/auth/a%2fb",
            "/api/auth/a%5cb",
            "/api/auth/a\\b",
            "/api/auth/%zz",
            "/api/auth/%00",
        ] {
            assert!(!safe_path(bad), "{bad}");
        }
    }
}

//! `AUTH_PROXY=true`: `/api/auth/*` forwarded to Better-Auth unchanged, so a frontend can
//! talk to one origin. Method, path, query, headers (cookies and `Origin` included) and body go
//! up; status, headers (every `set-cookie`, `set-auth-jwt`, `set-auth-token`, redirects) and a
//! streamed body come back. Only hop-by-hop headers are dropped, and `x-forwarded-*` added.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use axum::routing::any;

use crate::AppState;
use crate::error::ApiError;

/// Where and how `/api/auth/*` is forwarded.
#[derive(Debug)]
pub struct AuthProxy {
    upstream: String,
    client: reqwest::Client,
}

impl AuthProxy {
    /// `upstream` is Better-Auth's base URL. Redirects are passed to the browser, not followed.
    pub fn new(upstream: &str, template: reqwest::Client) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or(template);
        Self {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth", any(forward))
        .route("/api/auth/{*rest}", any(forward))
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

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != header::HOST && name != header::CONTENT_LENGTH {
            to.append(name.clone(), value.clone());
        }
    }
}

async fn forward(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let Some(proxy) = state.auth_proxy.as_deref() else {
        return Err(ApiError::NotFound);
    };
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().copied();
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/api/auth");
    let url = format!("{}{path_and_query}", proxy.upstream);

    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    if let Some(ConnectInfo(addr)) = peer {
        let forwarded_for = match parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(earlier) => format!("{earlier}, {}", addr.ip()),
            None => addr.ip().to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
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

    let upstream = proxy
        .client
        .request(parts.method, &url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "auth proxy: Better-Auth unreachable");
            ApiError::BadGateway
        })?;

    let mut response = Response::builder().status(upstream.status().as_u16());
    if let Some(out) = response.headers_mut() {
        copy_headers(upstream.headers(), out);
    }
    response
        .body(Body::from_stream(upstream.bytes_stream()))
        .map_err(|err| ApiError::Internal(format!("auth proxy response: {err}")))
}

//! The HTTP layers around every route: request ids, access logs, metrics, load shedding,
//! CORS, compression, timeouts and body limits — and the rule that even the errors these
//! layers produce come out as problem+json.
//!
//! Order, outermost first: request id → trace span → metrics → shed → CORS → compression →
//! problem+json for bare errors → timeout → body limit → the route.
//!
//! The three that work on both sides of a request (request id, metrics, shedding) are services
//! written out in `layers`, and the problem+json rewrite is a `tower::util::MapResponseLayer`:
//! no `axum::middleware` future, which boxes itself and copies the request (ADR 0024). All of
//! these go on in one `Router::layer` call, as one `ServiceBuilder` stack: each call wraps
//! every route in a boxed service that axum clones on each request, and a clone copies every
//! boxed service nested inside it, so nine or ten calls cost dozens of allocations a request
//! where one costs a few (ADR 0025).
//!
//! [`server`] owns the connections underneath: timeouts for slow and idle clients, and a cap.
//!
//! [`mark_private`] is not one of these layers: the route modules put it on the routes that
//! take a credential, so only their answers are marked as one caller's.

mod layers;
mod protocol;
pub mod server;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, VARY};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower::util::MapResponseLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::SizeAbove;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::{HttpConfig, http};
use crate::error::ApiError;

/// The request id: taken from the request when a trusted proxy sent it (or the peer is not
/// known) and it is sane (at most 128 visible ASCII characters), else generated; always
/// echoed on the response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// HTTP settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Origins a browser may call from (`CORS_ORIGINS`): credentials allowed for listed ones,
    /// `*` any origin without credentials; empty (the default) sends no CORS headers.
    pub cors_origins: Vec<String>,
    /// Larger request bodies get 413 (`BODY_LIMIT_BYTES`, default 64 KiB).
    pub body_limit_bytes: usize,
    /// A request still running then gets 408 (`REQUEST_TIMEOUT_SECS`, default 30 s).
    pub request_timeout: Duration,
    /// Requests in flight beyond this are shed with 503 (`MAX_CONCURRENT_REQUESTS`, default
    /// 1024).
    pub max_concurrent_requests: usize,
    /// Timeouts and the cap for the connections underneath, used by [`server::serve`].
    pub connections: server::ConnectionLimits,
    /// Proxies whose `x-request-id` is kept (`TRUSTED_PROXIES`): a client's own is replaced,
    /// so the id in warden's logs and audit trail is never one a client chose.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            body_limit_bytes: http::DEFAULT_BODY_LIMIT_BYTES,
            request_timeout: http::DEFAULT_REQUEST_TIMEOUT,
            max_concurrent_requests: http::DEFAULT_MAX_CONCURRENT_REQUESTS,
            connections: server::ConnectionLimits::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl HttpSettings {
    /// CORS, limits, timeouts and the connection cap, as the configuration says.
    pub fn from_config(config: &HttpConfig) -> Self {
        HttpSettings {
            cors_origins: config.cors_origins.clone(),
            body_limit_bytes: config.body_limit_bytes,
            request_timeout: config.request_timeout,
            max_concurrent_requests: config.max_concurrent_requests,
            connections: server::ConnectionLimits {
                header_read_timeout: config.header_read_timeout,
                keep_alive_timeout: config.keep_alive_timeout,
                // A request runs at most REQUEST_TIMEOUT_SECS; a connection that moves no byte
                // for that long and a bit more is a client that stopped reading.
                stall_timeout: config.request_timeout + Duration::from_secs(5),
                max_connections: config.max_connections,
            },
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }
}

/// The request's id, as accepted or generated; in every log line of the request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Wraps `router` in every layer.
pub fn layered<S: Clone + Send + Sync + 'static>(router: Router<S>, settings: &HttpSettings) -> Router<S> {
    // One `Router::layer` call for the whole stack (ADR 0025). Where a layer's answer has a
    // body of its own type and the layer above takes only axum's, `into_response` boxes it, as
    // axum did between the `Route`s of separate calls.
    let outer = ServiceBuilder::new()
        .layer(layers::RequestIdLayer::new(settings.trusted_proxies.clone()))
        .layer(MapResponseLayer::new(IntoResponse::into_response))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    // The route template and method; never the query string or headers (they
                    // can carry tokens).
                    let route = crate::server::metrics::route_label(request);
                    let request_id = request
                        .extensions()
                        .get::<RequestId>()
                        .map(|r| r.0.clone())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        method = crate::server::metrics::method_label(request.method()),
                        route,
                        request_id,
                        user_id = tracing::field::Empty,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(layers::TrackLayer)
        .layer(layers::ShedLayer::new(settings.max_concurrent_requests));
    let inner = ServiceBuilder::new()
        .layer(MapResponseLayer::new(IntoResponse::into_response))
        .layer(CompressionLayer::new().compress_when(SizeAbove::new(1024)))
        .layer(MapResponseLayer::new(problem_for_bare_errors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(MapResponseLayer::new(IntoResponse::into_response))
        .layer(RequestBodyLimitLayer::new(settings.body_limit_bytes))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes));
    match cors(&settings.cors_origins) {
        Some(cors) => router.layer(outer.layer(cors).layer(inner)),
        None => router.layer(outer.layer(inner)),
    }
}

/// Marks an answer to a route that takes a credential (`/users`, `/admin`, `/orgs`,
/// `/auth/verify`), refusals included, as one caller's: `Cache-Control: no-store`, so no
/// browser or shared cache keeps a profile, a user list or an identity, and `Vary:
/// Authorization, Cookie, X-Api-Key`, added to any `Vary` already there (CORS and compression
/// add theirs too), so a cache that keeps it anyway never hands it to another credential. (An
/// API key read from another header, `API_KEY_HEADERS`, is covered by `no-store` alone.)
pub async fn private_answer(response: Response) -> Response {
    mark_private(response)
}

/// [`private_answer`] as a plain function, for `tower::util::MapResponseLayer` (whose future
/// is the inner one, where `axum::middleware::map_response` boxes another around it).
pub fn mark_private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.append(VARY, HeaderValue::from_static("Authorization, Cookie, X-Api-Key"));
    response
}

/// 32 hex digits, unique within the process and, with overwhelming probability, across
/// processes: a random 64-bit prefix drawn once per process, then a counter passed through a
/// bijective mixer keyed by a second random word (so consecutive ids do not show how many
/// requests the server has had). An id needs to be unique, not secret: drawing 16 random bytes
/// and formatting them byte by byte cost about 2 µs a request (a tenth of the hot path).
fn new_request_id() -> String {
    static KEYS: OnceLock<[u64; 2]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let [prefix, key] = *KEYS.get_or_init(|| {
        let mut bytes = [0u8; 16];
        // Without randomness the ids are still unique within the process.
        let _ = aws_lc_rs::rand::fill(&mut bytes);
        let (a, b) = bytes.split_at(8);
        [
            u64::from_le_bytes(a.try_into().unwrap_or_default()),
            u64::from_le_bytes(b.try_into().unwrap_or_default()),
        ]
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    hex32(prefix, mix(n ^ key))
}

/// SplitMix64's finalizer: a bijection on `u64`, so distinct inputs give distinct outputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `hi` then `lo` as 32 lowercase hex digits.
fn hex32(hi: u64, lo: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for word in [hi, lo] {
        for shift in (0..16).rev() {
            out.push(char::from(DIGITS[((word >> (shift * 4)) & 0xf) as usize]));
        }
    }
    out
}

/// axum and tower-http answer 405, 408 and 413 with plain bodies; give them the house shape.
fn problem_for_bare_errors(response: Response) -> Response {
    let is_problem = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return response;
    }
    let error = match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => return response,
    };
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    let mut problem = error.into_response();
    if let Some(allow) = allow {
        problem.headers_mut().insert(axum::http::header::ALLOW, allow);
    }
    problem
}

/// CORS for the configured frontend origins: credentials allowed only for listed origins;
/// `*` allows any origin without credentials; nothing configured, no CORS headers at all.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([AUTHORIZATION, CONTENT_TYPE, X_REQUEST_ID])
        .expose_headers([X_REQUEST_ID])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        return Some(base.allow_origin(Any));
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(base.allow_origin(AllowOrigin::list(list)).allow_credentials(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn request_ids_are_32_hex_digits_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }

    #[test]
    fn the_mixer_is_a_bijection_on_a_sample() {
        let outputs: std::collections::HashSet<u64> = (0..100_000u64).map(mix).collect();
        assert_eq!(outputs.len(), 100_000);
        assert_eq!(
            hex32(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
            "0123456789abcdeffedcba9876543210"
        );
    }

    /// One slot: a second request while the first holds it is shed (503 `overloaded`, the
    /// house's problem+json); once the first is answered, its slot is free again.
    #[tokio::test]
    async fn a_request_beyond_the_slots_is_shed_and_a_slot_frees_with_its_answer() {
        use axum::body::Body;
        use tower::ServiceExt;
        let gate = Arc::new(tokio::sync::Notify::new());
        let held = Arc::clone(&gate);
        let router = Router::new()
            .route(
                "/slow",
                axum::routing::get(move || {
                    let held = Arc::clone(&held);
                    async move {
                        held.notified().await;
                        "done"
                    }
                }),
            )
            .route("/fast", axum::routing::get(|| async { "fast" }));
        let settings = HttpSettings {
            max_concurrent_requests: 1,
            ..HttpSettings::default()
        };
        let app = layered(router, &settings);
        let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
        let slow = tokio::spawn(app.clone().oneshot(get("/slow")));
        // The slow request holds the slot once its handler waits.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let shed = app.clone().oneshot(get("/fast")).await.unwrap();
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(shed.headers().contains_key(X_REQUEST_ID));
        let body = axum::body::to_bytes(shed.into_body(), 4096).await.unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["code"], "overloaded");
        gate.notify_one();
        let answered = slow.await.unwrap().unwrap();
        assert_eq!(answered.status(), StatusCode::OK);
        let again = app.oneshot(get("/fast")).await.unwrap();
        assert_eq!(
            again.status(),
            StatusCode::OK,
            "the slot is free once the first is answered"
        );
    }
}

//! Prometheus metrics for the `warden` server: request counts and latency by route template,
//! auth failures by code, JWKS fetches and key counts, database pool use, connections. The
//! server installs the process-wide recorder ([`handle`]); the library only emits through the
//! `metrics` facade, which records nothing until an app installs a recorder of its own.
//! Rendered at `GET /metrics` (or on `METRICS_ADDR`) by `routes::health`, which also sets the
//! gauges that describe current state at scrape time.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: fine-grained below 10 ms, where warden's requests live.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder's handle, installing the recorder on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be incomplete");
        }
        // Histograms are folded in periodically; without upkeep they grow without bound.
        let upkeep = handle.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    upkeep.run_upkeep();
                }
            });
        }
        handle
    })
}

/// The method as a label: one of the standard methods, else `other`. A client chooses the
/// method freely (any token up to the head size), and every distinct label value is a new
/// time series kept for ever: labels must come from a bounded set.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The route as a label: the template (`/admin/users/{id}`) the router matched, never the raw
/// path, or `unmatched`.
pub fn route_label(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned())
}

/// Middleware: counts and times every request by method, route template and status, for
/// `axum::middleware::from_fn`. The server's own stack does the same in a tower layer of its
/// own (`server::http::layered`), without `from_fn`'s boxes (ADR 0024).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route_label(&request);
    let response = next.run(request).await;
    record_request(method, route, response.status(), started.elapsed());
    response
}

/// Counts one answered request and records how long it took.
pub(crate) fn record_request(method: &'static str, route: String, status: StatusCode, elapsed: Duration) {
    // Status codes are three digits: at most 900 values, in practice a dozen.
    let status = status.as_u16().to_string();
    metrics::counter!("warden_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("warden_http_request_duration_seconds", "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
}

/// The Prometheus text of everything recorded so far.
pub fn render() -> String {
    handle().render()
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

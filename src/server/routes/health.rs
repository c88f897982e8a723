//! `/healthz` (the process is up), `/readyz` (it can serve: database reachable, at least
//! one signing key loaded, and Redis connected when sessions live there), and `/metrics` (Prometheus text, the current-state gauges set at
//! scrape time).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use crate::db;
use crate::server::metrics::{CONTENT_TYPE_TEXT, render};
use crate::server::state::AppState;

/// The `/healthz` and `/readyz` routes; `routes/mod.rs` mounts [`metrics`] on its own, on the
/// main port or on `METRICS_ADDR`.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Readiness {
    /// `ready` or `not_ready`
    pub status: &'static str,
    /// `ok` or `unreachable`
    pub database: &'static str,
    /// `ok` or `no keys loaded`
    pub jwks: &'static str,
    pub keys: usize,
    pub algorithms: Vec<&'static str>,
    /// Where sessions are read: `database`, or with `SESSION_STORE=redis` `redis: ok` or
    /// `redis: unreachable`
    pub sessions: &'static str,
}

/// Readiness: the database answers, a signing key is loaded, Redis (with sessions there) too.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; the body says which part is missing", body = Readiness),
    )
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database_ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), db::ping(state.db())).await,
        Ok(Ok(()))
    );
    let keys = state.auth.verifier().jwks.keys();
    let redis = state.auth.session_store_connected();
    let ready = database_ok && !keys.is_empty() && redis != Some(false);
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        database: if database_ok { "ok" } else { "unreachable" },
        jwks: if keys.is_empty() { "no keys loaded" } else { "ok" },
        keys: keys.len(),
        algorithms: keys.algorithms(),
        sessions: match redis {
            None => "database",
            Some(true) => "redis: ok",
            Some(false) => "redis: unreachable",
        },
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let jwks = &state.auth.verifier().jwks;
    metrics::gauge!("warden_jwks_keys").set(jwks.keys().len() as f64);
    match jwks.seconds_since_last_success() {
        Some(secs) => metrics::gauge!("warden_jwks_seconds_since_last_success").set(secs),
        None => metrics::gauge!("warden_jwks_seconds_since_last_success").set(f64::NAN),
    }
    for (name, pool) in [("primary", state.db()), ("read", &state.read_db)] {
        metrics::gauge!("warden_db_pool_connections", "pool" => name, "state" => "open")
            .set(pool.size() as f64);
        metrics::gauge!("warden_db_pool_connections", "pool" => name, "state" => "idle")
            .set(pool.num_idle() as f64);
        metrics::gauge!("warden_db_pool_max_connections", "pool" => name)
            .set(f64::from(pool.options().get_max_connections()));
    }
    if let Some(redis) = state.auth.session_store().redis() {
        metrics::gauge!("warden_session_store_connected").set(f64::from(u8::from(redis.connected())));
        metrics::gauge!("warden_session_store_tracking").set(f64::from(u8::from(redis.tracking())));
    }
    ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], render()).into_response()
}

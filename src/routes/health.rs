//! `/healthz` (the process is up) and `/readyz` (it can serve: database reachable and at
//! least one signing key loaded).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::db;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
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
pub struct Readiness {
    /// `ready` or `not_ready`
    pub status: &'static str,
    /// `ok` or `unreachable`
    pub database: &'static str,
    /// `ok` or `no keys loaded`
    pub jwks: &'static str,
    pub keys: usize,
    pub algorithms: Vec<&'static str>,
}

/// Readiness: the database answers and at least one signing key is loaded.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; the body says which part is missing", body = Readiness),
    )
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database_ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), db::ping(&state.db)).await,
        Ok(Ok(()))
    );
    let keys = state.verifier.jwks.keys();
    let ready = database_ok && !keys.is_empty();
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        database: if database_ok { "ok" } else { "unreachable" },
        jwks: if keys.is_empty() { "no keys loaded" } else { "ok" },
        keys: keys.len(),
        algorithms: keys.algorithms(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

//! warden: a resource server for apps that sign people in with Better-Auth.
//!
//! Layout:
//! - [`config`]: every environment variable, validated once at start.
//! - [`error`]: [`error::ApiError`] (per request, problem+json) and [`error::StartupError`].
//! - [`auth`]: JWKS cache, token verification, the [`auth::extract::AuthUser`] extractor.
//! - [`db`]: all SQL, one module per table; migrations in `migrations/`.
//! - [`routes`]: the HTTP API by feature.
//!
//! [`app`] builds the router from an [`AppState`]; [`build_state`] makes that state from a
//! [`config::Config`]; [`run`] serves until a shutdown signal. `main.rs` only wires them.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod routes;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::Request;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use auth::Verifier;
use auth::jwks::{JwksCache, JwksSource};
use auth::policy::AuthPolicy;
use auth::verify::ClaimRules;
use config::Config;
use error::StartupError;

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: PgPool,
    pub verifier: Verifier,
    pub policy: Arc<AuthPolicy>,
}

/// The whole HTTP API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(routes::users::router())
        .merge(routes::admin::router())
        .merge(routes::health::router())
        .fallback(routes::not_found)
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            // The route template, never the raw path's query string (it could hold a token).
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| request.uri().path().to_owned());
            tracing::info_span!("request", method = %request.method(), route, user_id = tracing::field::Empty)
        }))
        .with_state(state)
}

/// Builds the verifier and its JWKS cache, loads the keys once (a failure is logged, not
/// fatal: `/readyz` reports it and the refresher retries), and starts the background refresh.
pub async fn build_state(config: &Config, db: PgPool) -> Result<AppState, StartupError> {
    let client = reqwest::Client::builder()
        .connect_timeout(config.jwks_timeout)
        .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let jwks = JwksCache::new(
        JwksSource {
            url: config.jwks_url.clone(),
            client,
            timeout: config.jwks_timeout,
            db: Some(db.clone()),
            db_grace: config.jwks_grace,
        },
        config.jwks_cooldown,
    );
    match jwks.refresh().await {
        Ok(n) => tracing::info!(keys = n, algorithms = ?jwks.keys().algorithms(), "JWKS ready"),
        Err(_) => {
            tracing::warn!("starting without a reachable JWKS; /readyz reports not ready until keys load")
        }
    }
    jwks.spawn_refresher(config.jwks_refresh);
    let rules = ClaimRules {
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_audience.clone(),
        leeway_secs: config.jwt_leeway.as_secs(),
    };
    Ok(AppState {
        db,
        verifier: Verifier::new(jwks, rules),
        policy: Arc::new(AuthPolicy::from_config(config)),
    })
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then lets in-flight
/// requests finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(StartupError::Serve)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what Docker and Kubernetes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

//! warden: put any API behind Better-Auth.
//!
//! Better-Auth (Node) signs people in; warden verifies its JWTs (all five algorithms it signs
//! with: EdDSA, RS256, PS256, ES256, ES512) and session tokens against fresh database state, so
//! a ban, a role change or a sign-out takes effect on the next request. It is two things:
//!
//! - **a library** for your own Axum app: [`Auth`] and the extractors [`AuthUser`],
//!   [`MaybeAuthUser`], [`Admin`] and [`RequireRole`], with any state type of yours;
//! - **the `warden` server**, built on that same public API: `/users/me`, `/admin`, forward
//!   auth (`/auth/verify`) for nginx, Traefik and Caddy, OpenAPI docs and metrics.
//!
#![doc = include_str!("../docs/embedding.md")]
//!
//! Layout (dependencies point down this list, never up):
//! - [`routes`]: the server's HTTP API by feature, assembled in `routes/mod.rs`.
//! - [`state`]: [`AppState`], what the server's routes share ([`Auth`] and server settings).
//! - [`config`]: every environment variable, validated once at start; builds the rest.
//! - [`check`]: `warden check`, the configuration and environment report.
//! - [`admin`]: user management below HTTP: the permissions admin routes ask, and the admin
//!   write (lock, re-check the actor, write, audit, commit, then refresh the cached rows).
//! - [`auth`]: [`Auth`], the extractors, JWKS cache, token verification, policy.
//! - [`http`]: connections (timeouts, cap) and the layers around every route.
//! - [`cache`]: user and session rows kept fresh by PostgreSQL notifications.
//! - [`db`]: all SQL, one module per table; migrations in `migrations/`.
//! - [`metrics`], [`error`] ([`ApiError`], the rejection of every extractor), [`secret`].
#![warn(missing_docs)]

pub mod admin;
pub mod auth;
pub mod cache;
pub mod check;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod metrics;
pub mod routes;
pub mod secret;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;

use std::future::Future;

use tokio::net::TcpListener;

pub use auth::{
    Admin, Auth, AuthBuilder, AuthPolicy, AuthUser, Credential, MaybeAuthUser, OrgMember, OrgPermission,
    Permission, RequireOrgPermission, RequirePermission, RequireRole, RoleName,
};
pub use error::ApiError;
pub use routes::{app, metrics_app};
pub use state::AppState;

use error::StartupError;

/// Serves [`app`]`(state)` on `listener` (and `/metrics` on `metrics` when given) until
/// `shutdown` completes, then lets in-flight requests finish. Connections are timed out and
/// capped as [`http::server`] describes.
pub async fn run(
    listener: TcpListener,
    metrics: Option<TcpListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let open_files = http::server::raise_open_files_limit();
    let mut limits = state.http.connections;
    limits.max_connections = http::server::cap_for(limits.max_connections, open_files);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let until = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let metrics_server = metrics.map(|listener| {
        let app = metrics_app(state.clone());
        tokio::spawn(http::server::serve(listener, app, limits, until(stop_rx.clone())))
    });
    let main = http::server::serve(listener, app(state), limits, async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    main.map_err(StartupError::Serve)
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

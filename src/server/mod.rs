//! The `warden` server (feature `server`, on by default), built on the library and its
//! crate-internal parts: the HTTP API and its OpenAPI document, the console, forward auth, the
//! auth proxy, metrics, `warden check`, and the connection handling under it all.
//!
//! Layout (dependencies point down this list, never up, and nothing outside this folder
//! imports from it):
//! - [`routes`]: the HTTP API by feature, assembled in `routes/mod.rs` ([`app`],
//!   [`metrics_app`]); forward auth, the auth proxy and the console among them.
//! - [`state`]: [`AppState`], what the routes share ([`crate::Auth`] and server settings).
//! - [`check`]: `warden check`, the configuration and environment report.
//! - `admin`: user management below HTTP: the permissions admin routes ask, and the admin
//!   write (lock, re-check the actor, write, audit, commit, then refresh the cached rows).
//! - [`http`]: connections (timeouts, cap) and the layers around every route.
//! - [`metrics`]: the Prometheus recorder and the bounded labels.

pub(crate) mod admin;
pub mod check;
pub mod http;
pub mod metrics;
pub mod routes;
pub mod state;

use std::future::Future;

use tokio::net::TcpListener;

pub use crate::db::{Pools, migrate};
pub use routes::forward::{IDENTITY_HEADERS, IdentityHeader};
pub use routes::{app, metrics_app};
pub use state::{AdminThroughProxy, AppState, Shared};

use crate::config::Config;
use crate::error::StartupError;

/// The database pools the configuration names (`DATABASE_URL`, and `DATABASE_READ_URL` when
/// set), connected with its pool settings and its retry of a first connection.
pub async fn connect(config: &Config) -> Result<Pools, StartupError> {
    let pools = crate::db::connect(
        config.database.url.expose(),
        config.database.read_url.as_ref().map(|u| u.expose()),
        &config.pool_settings(),
    )
    .await?;
    Ok(pools)
}

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

//! warden: a resource server for apps that sign people in with Better-Auth.
//!
//! Layout:
//! - [`config`]: every environment variable, validated once at start.
//! - [`error`]: [`error::ApiError`] (per request, problem+json) and [`error::StartupError`].
//! - [`auth`]: JWKS cache, token verification, policy, and the extractors handlers take.
//! - [`db`]: all SQL, one module per table; migrations in `migrations/`.
//! - [`routes`]: the HTTP API by feature.
//! - [`http`]: the layers around every route (request ids, logs, CORS, limits, shedding).
//! - [`metrics`]: Prometheus metrics.
//! - [`check`]: `warden check`, the configuration and environment report.
//! - [`cache`]: verified tokens, and user/session rows kept fresh by PostgreSQL notifications.
//!
//! [`app`] builds the router from an [`AppState`]; [`build_state`] makes that state from a
//! [`config::Config`]; [`run`] serves until a shutdown signal. `main.rs` only wires them.

pub mod auth;
pub mod cache;
pub mod check;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod metrics;
pub mod routes;
pub mod testing;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use sqlx::PgPool;
use tokio::net::TcpListener;

use auth::Verifier;
use auth::client_ip::TrustedProxies;
use auth::jwks::{JwksCache, JwksSource};
use auth::policy::AuthPolicy;
use auth::session_token::UnknownTokens;
use auth::throttle::FailureLimiter;
use auth::verify::ClaimRules;
use config::Config;
use error::StartupError;
use http::HttpSettings;

/// What every handler can reach. One pointer: cloned several times per request (each
/// extractor and layer takes its own), so a clone is a single reference-count increment.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
#[derive(Debug, Clone)]
pub struct Shared {
    /// The primary: every write and every authorisation decision.
    pub db: PgPool,
    /// Lag-tolerant reads (admin listing, audit); the primary unless `DATABASE_READ_URL` is set.
    pub read_db: PgPool,
    pub verifier: Verifier,
    pub policy: Arc<AuthPolicy>,
    pub http: Arc<HttpSettings>,
    /// Whether `/metrics` is on the main router (false when `METRICS_ADDR` serves it).
    pub metrics_on_main: bool,
    /// `Some` when `AUTH_PROXY=true`: where `/api/auth/*` is forwarded.
    pub auth_proxy: Option<Arc<routes::proxy::AuthProxy>>,
    /// User rows and sessions, invalidated by PostgreSQL notifications.
    pub rows: Arc<cache::RowCache>,
    /// Whose `X-Forwarded-For` names the client.
    pub client_ips: TrustedProxies,
    /// Refused credentials per client address.
    pub failures: FailureLimiter,
    /// Session tokens that matched no live session a moment ago.
    pub unknown_sessions: UnknownTokens,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl From<Shared> for AppState {
    fn from(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl AppState {
    /// A state with default HTTP settings, no proxy and no row cache: what tests start from.
    pub fn new(db: PgPool, verifier: Verifier, policy: AuthPolicy) -> Self {
        Shared {
            read_db: db.clone(),
            db,
            verifier,
            policy: Arc::new(policy),
            http: Arc::new(HttpSettings::default()),
            metrics_on_main: true,
            auth_proxy: None,
            rows: Arc::new(cache::RowCache::disabled()),
            client_ips: TrustedProxies::default(),
            failures: FailureLimiter::new(0),
            unknown_sessions: UnknownTokens::default(),
        }
        .into()
    }

    /// The same state with some parts changed (tests, embedding).
    pub fn with(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        change(&mut shared);
        shared.into()
    }
}

/// The whole HTTP API, with every layer.
pub fn app(state: AppState) -> Router {
    // The metrics recorder must exist before the first request is counted.
    metrics::handle();
    let (api, document) = routes::docs::api();
    let mut router = api.merge(routes::docs::router(document));
    if state.metrics_on_main {
        router = router.route("/metrics", get(metrics::render));
    }
    if state.auth_proxy.is_some() {
        router = router.merge(routes::proxy::router());
    }
    let router = router.fallback(routes::not_found);
    let settings = Arc::clone(&state.http);
    http::layered(router, &settings).with_state(state)
}

/// The metrics-only router for `METRICS_ADDR`.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .with_state(state)
}

/// Builds the verifier and its JWKS cache, loads the keys once (a failure is logged, not
/// fatal: `/readyz` reports it and the refresher retries), and starts the background refresh.
pub async fn build_state(config: &Config, pools: db::Pools) -> Result<AppState, StartupError> {
    metrics::handle();
    let client = reqwest::Client::builder()
        .connect_timeout(config.jwks_timeout)
        .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let jwks = JwksCache::with_max_waiters(
        JwksSource {
            url: config.jwks_url.clone(),
            client: client.clone(),
            timeout: config.jwks_timeout,
            db: Some(pools.primary.clone()),
            db_grace: config.jwks_grace,
        },
        config.jwks_cooldown,
        config.jwks_max_waiters,
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
    let auth_proxy = config.auth_proxy.then(|| {
        Arc::new(routes::proxy::AuthProxy::new(
            &config.better_auth_url,
            config.jwks_timeout,
            client,
        ))
    });
    let rows = Arc::new(cache::RowCache::new(cache::RowCacheSettings {
        enabled: config.user_cache,
        ttl: config.user_cache_ttl,
        capacity: config.user_cache_size,
    }));
    if config.user_cache {
        let url = config
            .database_listen_url
            .as_ref()
            .unwrap_or(&config.database_url)
            .expose();
        let options =
            db::connect_options(url, config.database_statement_cache).map_err(StartupError::Database)?;
        cache::listener::spawn(Arc::clone(&rows), options);
    }
    Ok(Shared {
        db: pools.primary,
        read_db: pools.read,
        rows,
        verifier: Verifier::new(jwks, rules)
            .with_token_cache(cache::tokens::TokenCache::new(config.token_cache_size)),
        policy: Arc::new(AuthPolicy::from_config(config)),
        http: Arc::new(HttpSettings::from_config(config)),
        metrics_on_main: config.metrics_addr.is_none(),
        auth_proxy,
        client_ips: TrustedProxies::new(config.trusted_proxies.clone()),
        failures: FailureLimiter::new(config.auth_failures_per_minute),
        unknown_sessions: UnknownTokens::default(),
    }
    .into())
}

/// Serves `app(state)` on `listener` (and `/metrics` on `metrics` when given) until
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

//! [`AppState`]: what the `warden` server's own routes share. The [`Auth`] handle (what the
//! extractors need) plus what only the server has: the read replica, HTTP settings, where
//! `/metrics` is served, where `/api/auth/*` is proxied (and what happens to admin writes
//! there), and the console.

use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::PgPool;

use crate::auth::Auth;
pub use crate::config::AdminThroughProxy;
use crate::config::Config;
use crate::db;
use crate::error::StartupError;
use crate::server::http::HttpSettings;

/// One pointer: cloned several times per request (each extractor and layer takes its own), so
/// a clone is a single reference-count increment.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
#[derive(Debug, Clone)]
pub struct Shared {
    /// What the extractors need (`Auth: FromRef<AppState>`).
    pub auth: Auth,
    /// Lag-tolerant reads (admin listing, audit); the primary unless `DATABASE_READ_URL` is set.
    pub read_db: PgPool,
    /// CORS, limits and timeouts for the layers, and the connection limits for the server.
    pub http: Arc<HttpSettings>,
    /// Whether `/metrics` is on the main router (false when `METRICS_ADDR` serves it).
    pub metrics_on_main: bool,
    /// `Some(Better-Auth's base URL)` when `AUTH_PROXY=true`: where `/api/auth/*` goes.
    pub auth_proxy: Option<String>,
    /// What the auth proxy does with writes to Better-Auth's admin endpoints
    /// (`AUTH_PROXY_ADMIN`): audit them (default) or refuse them.
    pub auth_proxy_admin: AdminThroughProxy,
    /// Better-Auth's public base URL (`BETTER_AUTH_URL`): where the console signs people in
    /// when there is no proxy.
    pub better_auth_url: String,
    /// Whether `/console` is served (`CONSOLE`).
    pub console: bool,
    /// The social sign-in buttons the console shows (`CONSOLE_SOCIAL_PROVIDERS`), by
    /// Better-Auth's provider ids.
    pub console_social_providers: Vec<String>,
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

impl FromRef<AppState> for Auth {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl AppState {
    /// The server around `auth`: default HTTP settings, `/metrics` on the main port, no proxy,
    /// reads from the primary, the console on for Better-Auth at its default URL. What tests
    /// start from.
    pub fn new(auth: Auth) -> Self {
        Shared {
            read_db: auth.db().clone(),
            auth,
            http: Arc::new(HttpSettings::default()),
            metrics_on_main: true,
            auth_proxy: None,
            auth_proxy_admin: AdminThroughProxy::default(),
            better_auth_url: crate::auth::DEFAULT_BETTER_AUTH_URL.to_owned(),
            console: true,
            console_social_providers: Vec::new(),
        }
        .into()
    }

    /// The primary database pool.
    pub fn db(&self) -> &PgPool {
        self.auth.db()
    }

    /// The same state with some parts changed (tests, embedding).
    pub fn with(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        change(&mut shared);
        shared.into()
    }
}

impl AppState {
    /// The `warden` server's state: an [`Auth`] on the primary pool, the read replica, HTTP
    /// settings, where `/metrics` goes, the auth proxy's upstream, and the console.
    pub async fn from_config(config: &Config, pools: db::Pools) -> Result<Self, StartupError> {
        let auth = config
            .auth_builder(pools.primary)?
            .route_scopes(crate::server::routes::own_scope)
            .build()
            .await?;
        Ok(Shared {
            auth,
            read_db: pools.read,
            http: Arc::new(HttpSettings::from_config(&config.http)),
            metrics_on_main: config.http.metrics_addr.is_none(),
            auth_proxy: config.http.auth_proxy.then(|| config.better_auth.url.clone()),
            auth_proxy_admin: config.http.auth_proxy_admin,
            better_auth_url: config.better_auth.url.clone(),
            console: config.http.console,
            console_social_providers: config.http.console_social_providers.clone(),
        }
        .into())
    }
}

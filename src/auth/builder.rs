//! [`AuthBuilder`]: an [`Auth`] configured in code, with Better-Auth's and the `warden`
//! server's defaults, and the background tasks it starts (the JWKS refresh, the row cache's
//! NOTIFY listener, the batched readers, the writer of API keys' use stamps).

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use super::api_key::known::KnownKeys;
use super::api_key::stamps::Stamps;
use super::batch::Batcher;
use super::jwt::jwks::{self, JwksCache, JwksSettings, JwksSource};
use super::jwt::tokens::TokenCache;
use super::jwt::verify::ClaimRules;
use super::jwt::{DEFAULT_TOKEN_CACHE_BYTES, Verifier};
use super::policy::AuthPolicy;
use super::request::client_ip::TrustedProxies;
use super::request::throttle::{self, FailureLimiter};
use super::session::refused::{Gone, UnknownTokens};
use super::{Auth, Inner};
use crate::cache::{RowCache, RowCacheSettings};
use crate::error::StartupError;

/// Where Better-Auth listens when no URL is given (its own default port).
pub const DEFAULT_BETTER_AUTH_URL: &str = "http://localhost:3000";
/// Clock skew allowed on a JWT's `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// Builds an [`Auth`]. Defaults are Better-Auth's and the `warden` server's.
#[derive(Debug)]
#[must_use]
pub struct AuthBuilder {
    db: PgPool,
    better_auth_url: String,
    jwks_url: Option<String>,
    issuer: Option<String>,
    audience: Option<Vec<String>>,
    leeway: Duration,
    jwks: JwksSettings,
    policy: AuthPolicy,
    token_cache_bytes: u64,
    user_cache: Option<(RowCacheSettings, Option<PgConnectOptions>)>,
    trusted_proxies: Vec<IpNet>,
    failures_per_minute: u32,
    checks_capacity: usize,
    verifier: Option<Verifier>,
    rows: Option<Arc<RowCache>>,
    http_client: Option<reqwest::Client>,
    route_scopes: Option<crate::auth::request::authenticate::RouteScopes>,
    session_storage: super::session::store::SessionStorage,
}

impl AuthBuilder {
    pub(super) fn new(db: PgPool) -> Self {
        Self {
            db,
            better_auth_url: DEFAULT_BETTER_AUTH_URL.to_owned(),
            jwks_url: None,
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(DEFAULT_LEEWAY_SECS),
            jwks: JwksSettings::default(),
            policy: AuthPolicy::default(),
            token_cache_bytes: DEFAULT_TOKEN_CACHE_BYTES,
            user_cache: Some((RowCacheSettings::default(), None)),
            trusted_proxies: Vec::new(),
            failures_per_minute: throttle::DEFAULT_FAILURES_PER_MINUTE,
            checks_capacity: throttle::DEFAULT_CHECKS_CAPACITY,
            verifier: None,
            rows: None,
            http_client: None,
            route_scopes: None,
            session_storage: super::session::store::SessionStorage::Database,
        }
    }

    /// Better-Auth's base URL; the JWKS URL, issuer and audience default from it.
    pub fn better_auth_url(mut self, url: impl Into<String>) -> Self {
        self.better_auth_url = url.into();
        self
    }

    /// Where the JWKS is fetched (default `{better_auth_url}/api/auth/jwks`).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// The only accepted `iss` (default: the Better-Auth URL).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The accepted `aud` values (default: the Better-Auth URL).
    pub fn audience(mut self, audience: Vec<String>) -> Self {
        self.audience = Some(audience);
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// JWKS refresh period, cooldown, fetch timeout, database grace and waiters (default:
    /// the server's defaults, [`JwksSettings::default`]).
    pub fn jwks_settings(mut self, settings: JwksSettings) -> Self {
        self.jwks = settings;
        self
    }

    /// Admin roles, assignable roles, session strictness, Better-Auth's secret, cookies.
    pub fn policy(mut self, policy: AuthPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Verified tokens kept (0 = verify every request's signature).
    pub fn token_cache_bytes(mut self, bytes: u64) -> Self {
        self.token_cache_bytes = bytes;
        self
    }

    /// Cache user rows and sessions, invalidated by PostgreSQL notifications received on
    /// `listen` (a direct connection; default: the pool's own options). `None` turns it off.
    pub fn user_cache(mut self, cache: Option<(RowCacheSettings, Option<PgConnectOptions>)>) -> Self {
        self.user_cache = cache;
        self
    }

    /// Proxies whose `X-Forwarded-For` names the client.
    pub fn trusted_proxies(mut self, proxies: Vec<IpNet>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The OAuth scope of each route, by method and path, in one table: on a route it names,
    /// an access token whose user granted that scope stands in for the user (as a
    /// [`crate::RouteScope`] on the route does). warden's server names its own routes' so.
    pub fn route_scopes(mut self, scopes: crate::auth::request::authenticate::RouteScopes) -> Self {
        self.route_scopes = Some(scopes);
        self
    }

    /// Refused credentials per client address per minute (0 = no limit).
    pub fn failures_per_minute(mut self, limit: u32) -> Self {
        self.failures_per_minute = limit;
        self
    }

    /// How many credential checks in flight count as full load (default 1024; the server
    /// passes `MAX_CONCURRENT_REQUESTS`): past half of it, addresses that have failed are shed,
    /// those with the most failures first (ADR 0016).
    pub fn checks_capacity(mut self, capacity: usize) -> Self {
        self.checks_capacity = capacity;
        self
    }

    /// Use this verifier (its own JWKS cache and rules) instead of building one.
    #[cfg(any(test, feature = "testing"))]
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Use this row cache (kept fresh by the caller) instead of building one with a listener.
    #[cfg(any(test, feature = "testing"))]
    pub fn row_cache(mut self, rows: Arc<RowCache>) -> Self {
        self.rows = Some(rows);
        self
    }

    /// The HTTP client for JWKS fetches (default: the fetch timeout as
    /// connect timeout, no redirects; keys from another URL than the JWKS URL are refused
    /// whatever the client).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Where Better-Auth keeps its sessions (default: the `session` table). With Redis, tell
    /// warden what Better-Auth's `secondaryStorage` and `session` options say.
    pub fn session_storage(mut self, storage: super::session::store::SessionStorage) -> Self {
        self.session_storage = storage;
        self
    }

    /// Builds the `Auth`: loads the JWKS once (a failure is logged, not fatal: the refresher
    /// retries), and starts the background refresh and, when the user cache is on and warden's
    /// change triggers are in the database, the NOTIFY listener.
    pub async fn build(mut self) -> Result<Auth, StartupError> {
        if self.policy.api_keys.storage.uses_secondary_storage()
            && matches!(
                self.session_storage,
                super::session::store::SessionStorage::Database
            )
        {
            return Err(StartupError::Config(crate::error::ConfigError::Invalid {
                var: "API_KEY_STORAGE",
                reason:
                    "keys in secondary storage are in the sessions' Redis: configure it (session_storage)"
                        .into(),
            }));
        }
        let mut tasks = Vec::new();
        let verifier = match self.verifier.take() {
            Some(verifier) => verifier,
            None => self.new_verifier(&mut tasks).await?,
        };
        let oauth = &self.policy.oauth;
        let verifier = match oauth.access_token_rules() {
            Some(rules) => verifier.with_access_tokens(Some(rules)),
            None => verifier,
        };
        let dpop = crate::auth::oauth::dpop::DpopSettings {
            iat_window_secs: oauth.dpop_window_secs,
            ..Default::default()
        };
        let challenge = Arc::new(crate::auth::oauth::challenge::ChallengeParams {
            resource_metadata: oauth.metadata_url(),
            dpop_algs: Some(dpop.alg_names().join(" ")),
            dpop_required: oauth.dpop_required,
        });
        let dpop_replays = crate::auth::oauth::dpop::ReplayCache::new(&dpop);
        let rows = match (self.rows.take(), self.user_cache.take()) {
            (Some(rows), _) => rows,
            (None, None) => Arc::new(RowCache::disabled()),
            (None, Some((settings, listen))) => self.listened_rows(settings, listen, &mut tasks).await,
        };
        let session_store = super::session::store::SessionStore::new(&self.session_storage)?;
        if let Some(keeper) = session_store.spawn() {
            tasks.push(keeper.abort_handle());
        }
        let (sessions, batcher) = Batcher::spawn(self.db.clone());
        tasks.push(batcher.abort_handle());
        let (users, batcher) = Batcher::spawn(self.db.clone());
        tasks.push(batcher.abort_handle());
        let api_key_stamps = Arc::new(Stamps::default());
        let stamp_every = self.policy.api_keys.stamp_every;
        tasks.push(
            Stamps::spawn_writer(Arc::clone(&api_key_stamps), self.db.clone(), stamp_every).abort_handle(),
        );
        Ok(Auth(Arc::new(Inner {
            sessions,
            session_store,
            users,
            db: self.db,
            verifier,
            policy: self.policy,
            rows,
            client_ips: TrustedProxies::new(self.trusted_proxies),
            failures: FailureLimiter::new(self.failures_per_minute, self.checks_capacity),
            unknown_sessions: UnknownTokens::default(),
            known_sessions: super::session::known::KnownTokens::default(),
            gone: Gone::default(),
            api_key_stamps,
            known_api_keys: KnownKeys::default(),
            dpop_replays,
            dpop,
            route_scopes: self.route_scopes,
            challenge,
            tasks,
        })))
    }

    /// A verifier over a JWKS cache of its own, loaded once and refreshed in the background.
    async fn new_verifier(
        &mut self,
        tasks: &mut Vec<tokio::task::AbortHandle>,
    ) -> Result<Verifier, StartupError> {
        let base = self.better_auth_url.trim_end_matches('/').to_owned();
        let client = match self.http_client.take() {
            Some(client) => client,
            None => jwks::http_client(self.jwks.timeout)?,
        };
        let jwks = JwksCache::with_max_waiters(
            JwksSource {
                url: self
                    .jwks_url
                    .take()
                    .unwrap_or_else(|| format!("{base}/api/auth/jwks")),
                client,
                timeout: self.jwks.timeout,
                db: Some(self.db.clone()),
                db_grace: self.jwks.grace,
            },
            self.jwks.cooldown,
            self.jwks.max_waiters,
        );
        match jwks.refresh().await {
            Ok(n) => tracing::info!(keys = n, algorithms = ?jwks.keys().algorithms(), "JWKS ready"),
            Err(_) => {
                tracing::warn!("starting without a reachable JWKS; /readyz reports not ready until keys load")
            }
        }
        tasks.push(jwks.spawn_refresher(self.jwks.refresh).abort_handle());
        let rules = ClaimRules {
            issuer: self.issuer.take().unwrap_or_else(|| self.better_auth_url.clone()),
            audience: self
                .audience
                .take()
                .unwrap_or_else(|| vec![self.better_auth_url.clone()]),
            leeway_secs: self.leeway.as_secs(),
        };
        Ok(Verifier::new(jwks, rules).with_token_cache(TokenCache::new(self.token_cache_bytes)))
    }

    /// A row cache kept fresh by a NOTIFY listener on `listen` (default: the pool's own
    /// connection options), when warden's change triggers are in the database; else none.
    async fn listened_rows(
        &self,
        settings: RowCacheSettings,
        listen: Option<PgConnectOptions>,
        tasks: &mut Vec<tokio::task::AbortHandle>,
    ) -> Arc<RowCache> {
        if !crate::db::change_triggers_installed(&self.db)
            .await
            .unwrap_or(false)
        {
            tracing::warn!(
                "warden's change-notification triggers are not in the database (run warden's \
                 migrations): the user cache stays off and every request reads the database"
            );
            return Arc::new(RowCache::disabled());
        }
        let rows = Arc::new(RowCache::new(settings));
        let options = listen.unwrap_or_else(|| (*self.db.connect_options()).clone());
        tasks.push(crate::cache::listener::spawn(Arc::clone(&rows), options).abort_handle());
        rows
    }
}

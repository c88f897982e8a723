//! Authentication and authorisation: who is calling, and whether they may.
//!
//! [`Auth`] is the one handle everything here hangs off: the JWT verifier and its JWKS cache,
//! the policy, the user/session cache and its listener, the database pool. The extractors in
//! [`extract`] need only an `Auth` reachable from the app's state (`Auth: FromRef<S>`), so any
//! Axum app can use them; warden's own server is one such app.
//!
//! Layout:
//! - [`keys`]: one JWK → one [`keys::VerifyingKey`] with its algorithm pinned; key sets.
//! - [`jwks`]: the cache of Better-Auth's JWKS (fetch, refresh, single-flight, fallback).
//! - [`verify`]: compact JWS → checked [`verify::Claims`], for all five algorithms.
//! - [`verifier`]: [`Verifier`], the JWKS cache and the claim rules together, each token once.
//! - [`tokens`]: verified tokens by hash, so each distinct token's signature is checked once.
//! - [`session_token`]: Better-Auth session tokens (raw or signed) as bearer credentials.
//! - [`credential`]: where a request's credential is (bearer header, or session cookie) and
//!   the cookie's cross-site rule.
//! - [`authenticate`]: the steps from a credential to an [`AuthUser`].
//! - `batch`: cold JWTs' sessions and users, read for several requests in one query.
//! - `gone`: sessions and users found gone, remembered for a minute (signed-out JWTs replayed).
//! - [`client_ip`]: the caller's address (the socket, or what a trusted proxy reports).
//! - [`throttle`]: the per-client limit on refused credentials.
//! - [`access`]: permissions by role, decided as Better-Auth decides them (admin and
//!   organization plugins).
//! - [`policy`]: admin membership, assignable roles, session strictness, the access control.
//! - [`extract`]: [`AuthUser`], [`MaybeAuthUser`], [`Admin`], [`RequireRole`],
//!   [`RequirePermission`].
//! - [`organization`]: [`OrgMember`], [`RequireOrgPermission`]: organizations and their roles.

pub mod access;
pub mod authenticate;
mod batch;
pub mod client_ip;
pub mod credential;
pub mod extract;
mod gone;
pub mod jwks;
pub mod keys;
pub mod organization;
pub mod policy;
pub mod session_token;
pub mod throttle;
pub mod tokens;
pub mod verifier;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

pub use access::{AccessControl, Connector, Statements};
pub use extract::{
    Admin, AuthUser, Credential, MaybeAuthUser, Permission, RequirePermission, RequireRole, RoleName,
};
pub use organization::{OrgMember, OrgPermission, RequireOrgPermission};
pub use policy::{AuthPolicy, SessionCheck};
pub use verifier::{DEFAULT_TOKEN_CACHE_BYTES, Verifier};

use crate::cache::{RowCache, RowCacheSettings};
use crate::db::users::User;
use crate::error::StartupError;
use client_ip::TrustedProxies;
use jwks::{JwksCache, JwksSource};
use session_token::UnknownTokens;
use throttle::FailureLimiter;
use tokens::TokenCache;
use verify::ClaimRules;

/// Where Better-Auth listens when no URL is given (its own default port).
pub const DEFAULT_BETTER_AUTH_URL: &str = "http://localhost:3000";
/// Better-Auth's default `jwks.gracePeriod`: a rotated-out key stays valid this long.
pub const DEFAULT_JWKS_GRACE_SECS: u64 = 30 * 24 * 3600;
/// Requests that may wait for one JWKS fetch (ADR 0007).
pub const DEFAULT_JWKS_MAX_WAITERS: usize = 8;

/// What warden's extractors need, in one cheap handle (one `Arc`): the JWT verifier with its
/// JWKS cache, the policy, the user/session cache, the database pool and the per-client limits.
///
/// Build it with [`Auth::from_env`] (the same variables as the `warden` server) or
/// [`Auth::builder`]. Building starts its background tasks (the JWKS refresh, the cache's
/// NOTIFY listener); they stop when the last clone is dropped. It installs no globals.
#[derive(Clone, Debug)]
pub struct Auth(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    db: PgPool,
    verifier: Verifier,
    policy: AuthPolicy,
    rows: Arc<RowCache>,
    client_ips: TrustedProxies,
    failures: FailureLimiter,
    unknown_sessions: UnknownTokens,
    gone: gone::Gone,
    sessions: batch::SessionBatcher,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Auth {
    /// A builder for an `Auth` configured in code; `db` is the database Better-Auth writes.
    pub fn builder(db: PgPool) -> AuthBuilder {
        AuthBuilder::new(db)
    }

    /// The primary database pool (every authorisation decision reads it).
    pub fn db(&self) -> &PgPool {
        &self.0.db
    }

    /// Who is an admin, which roles can be assigned, and how credentials are read.
    pub fn policy(&self) -> &AuthPolicy {
        &self.0.policy
    }

    /// The JWT verifier, with its JWKS cache (key count and fetch health, for readiness).
    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }

    /// The user/session cache (disabled unless `USER_CACHE` and the listener are up).
    pub fn rows(&self) -> &Arc<RowCache> {
        &self.0.rows
    }

    /// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`): how a request's
    /// client address is found.
    pub fn client_ips(&self) -> &TrustedProxies {
        &self.0.client_ips
    }

    pub(crate) fn failures(&self) -> &FailureLimiter {
        &self.0.failures
    }

    pub(crate) fn session_batcher(&self) -> &batch::SessionBatcher {
        &self.0.sessions
    }

    pub(crate) fn unknown_sessions(&self) -> &UnknownTokens {
        &self.0.unknown_sessions
    }

    pub(crate) fn gone(&self) -> &gone::Gone {
        &self.0.gone
    }

    /// Whether `user` is an admin by Better-Auth's rule (`adminRoles`, `adminUserIds`).
    pub fn is_admin(&self, user: &User) -> bool {
        self.0.policy.is_admin(user)
    }

    /// Whether `user` holds `permissions` (admin-plugin statements), as Better-Auth's
    /// `userHasPermission` decides.
    pub fn has_permission(&self, user: &User, permissions: &Statements, connector: Connector) -> bool {
        self.0.policy.user_has_permission(user, permissions, connector)
    }
}

/// JWKS fetching and caching.
#[derive(Debug, Clone, Copy)]
pub struct JwksSettings {
    /// Background refresh period (`JWKS_REFRESH_SECS`).
    pub refresh: Duration,
    /// Minimum time between fetches caused by unknown `kid`s (`JWKS_COOLDOWN_SECS`).
    pub cooldown: Duration,
    /// A fetch taking longer is abandoned (`JWKS_TIMEOUT_SECS`).
    pub timeout: Duration,
    /// Database keys are used until `expires_at` + this (`JWKS_GRACE_PERIOD_SECS`).
    pub grace: Duration,
    /// Requests that may wait for one fetch (`JWKS_MAX_WAITERS`).
    pub max_waiters: usize,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(300),
            cooldown: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            grace: Duration::from_secs(DEFAULT_JWKS_GRACE_SECS),
            max_waiters: DEFAULT_JWKS_MAX_WAITERS,
        }
    }
}

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
}

impl AuthBuilder {
    fn new(db: PgPool) -> Self {
        Self {
            db,
            better_auth_url: DEFAULT_BETTER_AUTH_URL.to_owned(),
            jwks_url: None,
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(30),
            jwks: JwksSettings::default(),
            policy: AuthPolicy::default(),
            token_cache_bytes: DEFAULT_TOKEN_CACHE_BYTES,
            user_cache: Some((RowCacheSettings::default(), None)),
            trusted_proxies: Vec::new(),
            failures_per_minute: 60,
            checks_capacity: throttle::DEFAULT_CHECKS_CAPACITY,
            verifier: None,
            rows: None,
            http_client: None,
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

    /// Refused credentials per client address per minute (0 = no limit).
    pub fn failures_per_minute(mut self, limit: u32) -> Self {
        self.failures_per_minute = limit;
        self
    }

    /// How many credential checks in flight count as full load (default 1024; the server
    /// passes `MAX_CONCURRENT_REQUESTS`): past half of it, addresses that have failed are shed,
    /// those with the most failures first (see [`throttle`]).
    pub fn checks_capacity(mut self, capacity: usize) -> Self {
        self.checks_capacity = capacity;
        self
    }

    /// Use this verifier (its own JWKS cache and rules) instead of building one.
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Use this row cache (kept fresh by the caller) instead of building one with a listener.
    pub fn row_cache(mut self, rows: Arc<RowCache>) -> Self {
        self.rows = Some(rows);
        self
    }

    /// The HTTP client for JWKS fetches (default: [`jwks::http_client`], the fetch timeout as
    /// connect timeout, no redirects; keys from another URL than the JWKS URL are refused
    /// whatever the client).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Builds the `Auth`: loads the JWKS once (a failure is logged, not fatal: the refresher
    /// retries), and starts the background refresh and, when the user cache is on and warden's
    /// change triggers are in the database, the NOTIFY listener.
    pub async fn build(self) -> Result<Auth, StartupError> {
        let mut tasks = Vec::new();
        let verifier = match self.verifier {
            Some(verifier) => verifier,
            None => {
                let base = self.better_auth_url.trim_end_matches('/').to_owned();
                let client = match self.http_client {
                    Some(client) => client,
                    None => jwks::http_client(self.jwks.timeout)?,
                };
                let jwks = JwksCache::with_max_waiters(
                    JwksSource {
                        url: self.jwks_url.unwrap_or_else(|| format!("{base}/api/auth/jwks")),
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
                    Err(_) => tracing::warn!(
                        "starting without a reachable JWKS; /readyz reports not ready until keys load"
                    ),
                }
                tasks.push(jwks.spawn_refresher(self.jwks.refresh).abort_handle());
                let rules = ClaimRules {
                    issuer: self.issuer.unwrap_or_else(|| self.better_auth_url.clone()),
                    audience: self
                        .audience
                        .unwrap_or_else(|| vec![self.better_auth_url.clone()]),
                    leeway_secs: self.leeway.as_secs(),
                };
                Verifier::new(jwks, rules).with_token_cache(TokenCache::new(self.token_cache_bytes))
            }
        };
        let rows = match (self.rows, self.user_cache) {
            (Some(rows), _) => rows,
            (None, None) => Arc::new(RowCache::disabled()),
            (None, Some((settings, listen))) => {
                if crate::db::change_triggers_installed(&self.db)
                    .await
                    .unwrap_or(false)
                {
                    let rows = Arc::new(RowCache::new(settings));
                    let options = listen.unwrap_or_else(|| (*self.db.connect_options()).clone());
                    tasks.push(crate::cache::listener::spawn(Arc::clone(&rows), options).abort_handle());
                    rows
                } else {
                    tracing::warn!(
                        "warden's change-notification triggers are not in the database (run warden's \
                         migrations): the user cache stays off and every request reads the database"
                    );
                    Arc::new(RowCache::disabled())
                }
            }
        };
        let (sessions, batcher) = batch::SessionBatcher::spawn(self.db.clone());
        tasks.push(batcher.abort_handle());
        Ok(Auth(Arc::new(Inner {
            sessions,
            db: self.db,
            verifier,
            policy: self.policy,
            rows,
            client_ips: TrustedProxies::new(self.trusted_proxies),
            failures: FailureLimiter::new(self.failures_per_minute, self.checks_capacity),
            unknown_sessions: UnknownTokens::default(),
            gone: gone::Gone::default(),
            tasks,
        })))
    }
}

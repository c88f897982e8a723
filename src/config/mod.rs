//! Configuration: every environment variable warden reads, its default, and its validation.
//!
//! The environment is read once, at start, by [`Config::from_env`]. Each value is checked
//! there, and a bad one stops the start with a message naming the variable, so nothing deeper
//! in the code ever has to deal with a half-valid configuration. README and `.env.example`
//! list the same variables with the same defaults.
//!
//! [`Config`] holds one group of settings per concern, each in its own file with its
//! variables, their defaults and their checks: [`DatabaseConfig`] (`database.rs`),
//! [`BetterAuthConfig`] (`better_auth.rs`: JWT, JWKS, secret, cookies, session check),
//! [`RoleConfig`] (`roles.rs`), [`HttpConfig`] (`http.rs`: addresses, limits, timeouts,
//! proxies, the auth proxy, the console), [`CacheConfig`] (`caches.rs`) and the API-key
//! settings (`api_keys.rs`), the OAuth resource (`oauth.rs`) and where sessions live
//! (`sessions.rs`). `env.rs` reads one
//! variable at a time, typed, and names it in every refusal.
//!
//! The configuration then builds what the library defines: the pool settings, the
//! [`AuthPolicy`], an [`Auth`] ([`Auth::from_env`]). The library's modules never import this
//! one; the server (its HTTP settings, its state) builds its own parts from it.

mod api_keys;
mod better_auth;
mod caches;
mod database;
mod env;
pub(crate) mod http;
mod oauth;
mod roles;
mod sessions;

use std::sync::Arc;

use sqlx::PgPool;

use self::env::Env;
use crate::auth::{ApiKeySettings, Auth, AuthBuilder, AuthPolicy, JwksSettings};
use crate::cache::RowCacheSettings;
use crate::db::{self, PoolSettings};
use crate::error::StartupError;

pub use self::better_auth::BetterAuthConfig;
pub use self::caches::CacheConfig;
pub use self::database::DatabaseConfig;
pub use self::http::{AdminThroughProxy, DEFAULT_MAX_CONNECTIONS, HttpConfig, LogFormat};
pub use self::roles::RoleConfig;
pub use self::sessions::DEFAULT_REDIS_URL;
pub use crate::auth::policy::SessionCheck;
pub use crate::error::ConfigError;
pub use crate::secret::Secret;

pub use crate::auth::{DEFAULT_BETTER_AUTH_URL, DEFAULT_JWKS_GRACE_SECS, DEFAULT_JWKS_MAX_WAITERS};

/// The validated configuration, one group per concern. `Debug` never shows secrets: database
/// URLs (they may hold a password) and `BETTER_AUTH_SECRET` are [`Secret`]s.
#[derive(Debug, Clone)]
pub struct Config {
    /// The database: its URLs, the pool, the migrations (`DATABASE_*`, `RUN_MIGRATIONS`).
    pub database: DatabaseConfig,
    /// Better-Auth: its URL, the JWT and JWKS rules, its secret and session cookie, trusted
    /// origins, the session check.
    pub better_auth: BetterAuthConfig,
    /// Roles: the assignable ones, who is an admin, the access control file.
    pub roles: RoleConfig,
    /// HTTP: addresses, logs, CORS, limits, timeouts, trusted proxies, the failure limiter,
    /// the auth proxy, the console.
    pub http: HttpConfig,
    /// Caches: verified tokens, user and session rows.
    pub caches: CacheConfig,
    /// API keys: how Better-Auth's api-key plugin is set up (`API_KEY*`).
    pub api_keys: ApiKeySettings,
    /// OAuth access tokens: this resource, its issuer, scopes and DPoP (`RESOURCE_URL`,
    /// `OAUTH_*`, `PUBLIC_URL`, `DPOP_*`).
    pub oauth: crate::auth::OAuthSettings,
    /// Where Better-Auth keeps sessions: the table, or Redis (`SESSION_STORE`, `REDIS_*`,
    /// `STORE_SESSION_IN_DATABASE`, `PRESERVE_SESSION_IN_DATABASE`).
    pub sessions: crate::auth::SessionStorage,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can pass a map instead of the
    /// process environment. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let database = DatabaseConfig::read(&env)?;
        let mut better_auth = BetterAuthConfig::read(&env)?;
        let roles = RoleConfig::read(&env)?;
        let http = HttpConfig::read(&env)?;
        let caches = CacheConfig::read(&env)?;
        let api_keys = ApiKeySettings::read(&env)?;
        let oauth = crate::auth::OAuthSettings::read(&env, &better_auth.url)?;
        let sessions = sessions::read(&env, caches.user_cache_ttl)?;
        if api_keys.storage.uses_secondary_storage()
            && matches!(sessions, crate::auth::SessionStorage::Database)
        {
            return Err(env::invalid(
                "API_KEY_STORAGE",
                "secondary-storage is Better-Auth's secondary storage, where sessions are too: set SESSION_STORE=redis and REDIS_URL",
            ));
        }
        // TRUSTED_ORIGINS' default takes in CORS_ORIGINS, so it is read once both groups are.
        better_auth.trusted_origins =
            better_auth::trusted_origins(&env, &better_auth.url, &http.cors_origins)?;
        Ok(Self {
            database,
            better_auth,
            roles,
            http,
            caches,
            api_keys,
            oauth,
            sessions,
        })
    }
}

/// What the configuration builds: the pieces of the library and of the server.
impl Config {
    /// Database pool sizes and timeouts.
    pub(crate) fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            max_connections: self.database.max_connections,
            acquire_timeout: self.database.acquire_timeout,
            idle_timeout: self.database.idle_timeout,
            statement_cache: self.database.statement_cache,
            connect_retry: self.database.connect_retry,
        }
    }

    /// Admin rules, roles, session strictness, secret and cookie rules.
    pub fn auth_policy(&self) -> AuthPolicy {
        AuthPolicy {
            admin_roles: self.roles.admin_roles.clone(),
            admin_user_ids: self.roles.admin_user_ids.clone(),
            assignable_roles: self.roles.roles.clone(),
            session_check: self.better_auth.session_check,
            better_auth_secret: self.better_auth.secret.clone(),
            require_signed_session_tokens: self.better_auth.require_signed_session_tokens,
            cookie_auth: self.better_auth.cookie_auth,
            trusted_origins: self.better_auth.trusted_origins.clone(),
            session_cookie: self.better_auth.session_cookie.clone(),
            secure_cookies: self.better_auth.secure_cookies,
            access: Arc::clone(&self.roles.access_control),
            api_keys: self.api_keys.clone(),
            oauth: self.oauth.clone(),
        }
    }

    /// An [`Auth`] builder set up as the configuration says, on the primary pool `db`.
    pub fn auth_builder(&self, db: PgPool) -> Result<AuthBuilder, StartupError> {
        let user_cache = if self.caches.user_cache {
            let url = self
                .database
                .listen_url
                .as_ref()
                .unwrap_or(&self.database.url)
                .expose();
            let listen =
                db::connect_options(url, self.database.statement_cache).map_err(StartupError::Database)?;
            Some((
                RowCacheSettings {
                    enabled: true,
                    ttl: self.caches.user_cache_ttl,
                    bytes: self.caches.user_cache_mb * caches::MIB,
                },
                Some(listen),
            ))
        } else {
            None
        };
        Ok(Auth::builder(db)
            .better_auth_url(self.better_auth.url.clone())
            .jwks_url(self.better_auth.jwks_url.clone())
            .issuer(self.better_auth.jwt_issuer.clone())
            .audience(self.better_auth.jwt_audience.clone())
            .leeway(self.better_auth.jwt_leeway)
            .jwks_settings(JwksSettings {
                refresh: self.better_auth.jwks_refresh,
                cooldown: self.better_auth.jwks_cooldown,
                timeout: self.better_auth.jwks_timeout,
                grace: self.better_auth.jwks_grace,
                max_waiters: self.better_auth.jwks_max_waiters,
            })
            .policy(self.auth_policy())
            .token_cache_bytes(self.caches.token_cache_mb * caches::MIB)
            .user_cache(user_cache)
            .trusted_proxies(self.http.trusted_proxies.clone())
            .failures_per_minute(self.http.auth_failures_per_minute)
            .checks_capacity(self.http.max_concurrent_requests)
            .session_storage(self.sessions.clone()))
    }
}

impl Auth {
    /// An `Auth` from the environment (and a `.env` file), with the same variables and
    /// defaults as the `warden` server (README, Configuration): connects to `DATABASE_URL`,
    /// loads the JWKS, starts the background tasks.
    pub async fn from_env() -> Result<Self, StartupError> {
        let _ = dotenvy::dotenv();
        let config = Config::from_env()?;
        let db = db::connect_one(config.database.url.expose(), &config.pool_settings()).await?;
        Self::from_config(&config, db).await
    }

    /// An `Auth` as `config` says, on the primary pool `db`.
    pub async fn from_config(config: &Config, db: PgPool) -> Result<Self, StartupError> {
        config.auth_builder(db)?.build().await
    }
}

#[cfg(test)]
mod tests {
    //! What the groups' tests share; each group's own tests are in its file.

    use std::collections::HashMap;

    use super::*;

    /// The configuration read from `vars` alone.
    pub(super) fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    /// Each `(variable, bad value)`, set alone beside a valid `DATABASE_URL`, stops the start
    /// with a message that begins with the variable's name.
    pub(super) fn assert_each_refused(cases: &[(&str, &str)]) {
        let base = ("DATABASE_URL", "postgres://localhost/db");
        for &(var, value) in cases {
            let err = config(&[base, (var, value)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{var}={value:?} gave {err:?}");
        }
    }
}

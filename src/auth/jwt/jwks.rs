//! The JWKS cache: Better-Auth's public keys, fetched, kept, refreshed and looked up.
//!
//! Rules (DESIGN §1; ADR 0003):
//! - Lookups of known keys read an immutable [`KeySet`] through an `ArcSwap`: no lock, and
//!   never a wait for a fetch.
//! - A token with an unknown `kid` may trigger a refetch (Better-Auth signs with a rotated key
//!   at once). Such fetches are single-flight (one fetch task; requests join it) and at most one
//!   per cooldown, so a flood of random kids costs one fetch per cooldown.
//! - Waiting for that fetch is bounded (ADR 0007): at most `JWKS_MAX_WAITERS` requests wait,
//!   each at most the fetch timeout. Every other unknown-`kid` request, and every one inside the
//!   cooldown, is answered at once, so a hanging Better-Auth cannot fill the request slots
//!   that users with known keys need.
//! - A background task refreshes every `JWKS_REFRESH_SECS`, sooner with backoff while failing.
//! - A failed fetch keeps the last good keys, adding any usable public keys from the shared
//!   database `jwks` table, so warden keeps working while Better-Auth is unreachable.
//! - A fetch has a timeout and a body size limit; an answer with no usable key never replaces
//!   keys that work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use sqlx::PgPool;
use tokio::sync::{Mutex, Semaphore, watch};

use crate::auth::jwt::keys::{KeySet, Skipped, VerifyingKey};
use crate::db;

/// Better-Auth's default `jwks.gracePeriod`: a rotated-out key stays valid this long.
pub const DEFAULT_JWKS_GRACE_SECS: u64 = 30 * 24 * 3600;
/// Requests that may wait for one JWKS fetch (ADR 0007).
pub const DEFAULT_JWKS_MAX_WAITERS: usize = 8;

/// JWKS fetching and caching: how an [`crate::auth::Auth`] builds its `JwksCache`.
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
/// A JWKS larger than this is refused (Better-Auth's is a few hundred bytes per key).
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Why a fetch brought no key set.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer: the connection failed, the fetch timed out, or the body broke off.
    #[error("request to the JWKS endpoint failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The endpoint answered with this status, not a 2xx (nor a redirect).
    #[error("the JWKS endpoint answered HTTP {0}")]
    Status(u16),
    /// The endpoint answered with a redirect, which is not followed.
    #[error(
        "the JWKS endpoint answered HTTP {status}, a redirect to {location:?}: redirects are not followed \
         for keys; set JWKS_URL to the address that serves them"
    )]
    Redirect {
        /// The 3xx status.
        status: u16,
        /// Its `Location` (cut to 200 characters; empty when there is none).
        location: String,
    },
    /// The answer came from another URL than the one asked (a client that follows redirects
    /// was supplied); its keys are not used.
    #[error("the JWKS answer came from {0}, not from JWKS_URL: redirects are not followed for keys")]
    Redirected(String),
    /// The body is over [`MAX_JWKS_BYTES`].
    #[error("the JWKS is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// The body is not a JWKS document.
    #[error("{0}")]
    Parse(#[from] crate::auth::jwt::keys::JwksParseError),
    /// The document has no key warden can use while this many are loaded; those are kept.
    #[error("the JWKS has no usable key (keeping the {0} key(s) already loaded)")]
    NoUsableKeys(usize),
}

/// The outcome of looking up a `kid`.
#[derive(Debug)]
pub enum Lookup {
    /// The key, from the current set or from the fetch the request waited for.
    Found(Arc<VerifyingKey>),
    /// The JWKS was reachable (or is in cooldown after a good fetch) and has no such key.
    Unknown,
    /// The key is unknown and the JWKS endpoint could not be reached.
    Unavailable,
}

/// Where keys come from.
#[derive(Debug, Clone)]
pub struct JwksSource {
    /// Better-Auth's JWKS endpoint (`JWKS_URL`).
    pub url: String,
    /// The HTTP client that fetches: [`http_client`] (a client that follows redirects gains
    /// nothing: an answer from another URL is refused).
    pub client: reqwest::Client,
    /// A fetch taking longer is abandoned, and no request waits longer for one
    /// (`JWKS_TIMEOUT_SECS`).
    pub timeout: Duration,
    /// The shared database, for the `jwks` table fallback; `None` disables it.
    pub db: Option<PgPool>,
    /// A database key is used until `expires_at` + this.
    pub db_grace: Duration,
}

/// The HTTP client for JWKS fetches: `connect_timeout` to connect, never a redirect.
pub fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Better-Auth's public keys, shared as `Arc<JwksCache>`: read without a lock, refreshed in
/// the background, refetched when a token names an unknown `kid` (see the module docs).
#[derive(Debug)]
pub struct JwksCache {
    keys: ArcSwap<KeySet>,
    source: JwksSource,
    cooldown: Duration,
    /// Held while fetching, so two fetches never run at once.
    fetch_lock: Mutex<()>,
    /// The on-demand fetch in flight (requests join it) and when the last one started.
    flight: std::sync::Mutex<Flight>,
    /// Permits to wait for an on-demand fetch.
    waiters: Semaphore,
    last_fetch_ok: AtomicBool,
    last_success: std::sync::Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct Flight {
    /// Becomes `true` when the fetch in flight is over.
    current: Option<watch::Receiver<bool>>,
    last_started: Option<Instant>,
}

impl JwksCache {
    /// An empty cache over `source`, refetching for unknown `kid`s at most once per `cooldown`,
    /// with [`DEFAULT_JWKS_MAX_WAITERS`] waiters.
    /// Nothing is fetched until [`refresh`](Self::refresh) or a lookup asks.
    #[cfg(any(test, feature = "testing"))]
    pub fn new(source: JwksSource, cooldown: Duration) -> Arc<Self> {
        Self::with_max_waiters(source, cooldown, DEFAULT_JWKS_MAX_WAITERS)
    }

    /// `max_waiters` requests with an unknown `kid` may wait for one fetch; the rest are
    /// answered at once.
    pub fn with_max_waiters(source: JwksSource, cooldown: Duration, max_waiters: usize) -> Arc<Self> {
        Arc::new(Self {
            keys: ArcSwap::from_pointee(KeySet::default()),
            source,
            cooldown,
            fetch_lock: Mutex::new(()),
            flight: std::sync::Mutex::new(Flight::default()),
            waiters: Semaphore::new(max_waiters),
            last_fetch_ok: AtomicBool::new(false),
            last_success: std::sync::Mutex::new(None),
        })
    }

    /// The current key set.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Whether `kid` is in the current key set (no fetch, no lock).
    pub fn has_key(&self, kid: &str) -> bool {
        self.keys.load().get(kid).is_some()
    }

    /// Seconds since the last successful fetch, if there was one.
    #[cfg(feature = "server")]
    pub fn seconds_since_last_success(&self) -> Option<f64> {
        self.last_success
            .lock()
            .ok()
            .and_then(|at| at.map(|at| at.elapsed().as_secs_f64()))
    }

    /// Whether the last fetch reached the JWKS endpoint and parsed.
    pub fn last_fetch_ok(&self) -> bool {
        self.last_fetch_ok.load(Ordering::Relaxed)
    }

    /// Fetches now (waiting for any fetch in flight first). Used at start and by the
    /// background task. On failure, the last good keys stay, plus usable database keys.
    pub async fn refresh(&self) -> Result<usize, FetchError> {
        let _guard = self.fetch_lock.lock().await;
        self.fetch_and_store().await
    }

    async fn fetch_and_store(&self) -> Result<usize, FetchError> {
        match self.fetch().await {
            Ok(set) => {
                let count = set.len();
                let previous = self.keys.swap(Arc::new(set));
                self.last_fetch_ok.store(true, Ordering::Relaxed);
                if let Ok(mut at) = self.last_success.lock() {
                    *at = Some(Instant::now());
                }
                metrics::counter!("warden_jwks_fetches_total", "result" => "ok").increment(1);
                if previous.len() != count {
                    tracing::info!(keys = count, url = %self.source.url, "JWKS loaded");
                }
                Ok(count)
            }
            Err(err) => {
                self.last_fetch_ok.store(false, Ordering::Relaxed);
                metrics::counter!("warden_jwks_fetches_total", "result" => "failed").increment(1);
                tracing::warn!(error = %err, url = %self.source.url, "JWKS fetch failed; keeping the last good keys");
                self.add_database_keys().await;
                Err(err)
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, FetchError> {
        let mut response = self
            .source
            .client
            .get(&self.source.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.source.timeout)
            .send()
            .await?;
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|l| String::from_utf8_lossy(l.as_bytes()).chars().take(200).collect())
                .unwrap_or_default();
            return Err(FetchError::Redirect {
                status: response.status().as_u16(),
                location,
            });
        }
        if reqwest::Url::parse(&self.source.url).is_ok_and(|asked| asked != *response.url()) {
            return Err(FetchError::Redirected(response.url().to_string()));
        }
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let (set, skipped) = KeySet::from_jwks_json(&body)?;
        log_skipped("JWKS endpoint", &skipped);
        // Better-Auth always serves its current key: an answer with none usable (a proxy's
        // placeholder, a misconfiguration) must not wipe the keys that work. An empty JWKS is
        // only normal before Better-Auth signs its first token, when there is nothing to keep.
        let loaded = self.keys.load().len();
        if set.is_empty() && loaded > 0 {
            return Err(FetchError::NoUsableKeys(loaded));
        }
        Ok(set)
    }

    /// The fallback: public keys Better-Auth stored in the shared `jwks` table.
    async fn add_database_keys(&self) {
        let Some(pool) = &self.source.db else { return };
        let rows = match db::jwks::usable_public_keys(pool, self.source.db_grace).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the jwks table either");
                return;
            }
        };
        let jwks: Vec<serde_json::Value> = rows.into_iter().filter_map(|row| row.into_jwk()).collect();
        let (db_set, skipped) = KeySet::from_jwks(jwks.iter());
        log_skipped("database jwks table", &skipped);
        if db_set.is_empty() {
            return;
        }
        let mut merged = KeySet::clone(&self.keys.load());
        let before = merged.len();
        merged.merge_missing(&db_set);
        if merged.len() != before {
            tracing::info!(
                added = merged.len() - before,
                "using public keys from the database jwks table"
            );
            self.keys.store(Arc::new(merged));
        }
    }

    /// Finds the key for `kid`. An unknown `kid` joins (or starts, outside the cooldown) the
    /// single on-demand fetch, if one of the few waiter permits is free, and waits for it at
    /// most the fetch timeout. Known keys never wait.
    pub async fn key(self: &Arc<Self>, kid: &str) -> Lookup {
        if let Some(key) = self.keys.load().get(kid) {
            return Lookup::Found(Arc::clone(key));
        }
        let Some(mut flight) = self.join_or_start_flight() else {
            metrics::counter!("warden_jwks_unknown_kid_total", "outcome" => "cooldown").increment(1);
            return self.verdict_without_fetch();
        };
        let Ok(_permit) = self.waiters.try_acquire() else {
            metrics::counter!("warden_jwks_unknown_kid_total", "outcome" => "busy").increment(1);
            return self.verdict_without_fetch();
        };
        metrics::counter!("warden_jwks_unknown_kid_total", "outcome" => "waited").increment(1);
        let finished = tokio::time::timeout(self.source.timeout, flight.wait_for(|done| *done))
            .await
            .is_ok_and(|r| r.is_ok());
        if let Some(key) = self.keys.load().get(kid) {
            return Lookup::Found(Arc::clone(key));
        }
        if finished && self.last_fetch_ok() {
            Lookup::Unknown
        } else {
            Lookup::Unavailable
        }
    }

    /// An unknown `kid` answered without waiting: unknown, unless no key is loaded at all.
    fn verdict_without_fetch(&self) -> Lookup {
        if self.keys.load().is_empty() {
            Lookup::Unavailable
        } else {
            Lookup::Unknown
        }
    }

    /// The fetch in flight, or a new one when the cooldown allows; `None` inside the cooldown.
    fn join_or_start_flight(self: &Arc<Self>) -> Option<watch::Receiver<bool>> {
        let mut flight = self.flight.lock().ok()?;
        if let Some(current) = &flight.current
            && !*current.borrow()
        {
            return Some(current.clone());
        }
        if flight.last_started.is_some_and(|at| at.elapsed() < self.cooldown) {
            return None;
        }
        let (done_tx, done_rx) = watch::channel(false);
        flight.current = Some(done_rx.clone());
        flight.last_started = Some(Instant::now());
        tracing::debug!("unknown kid: refetching the JWKS");
        // A task of its own: requests that stop waiting do not cancel the fetch.
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            // The outcome is judged by the waiters from the key set and last_fetch_ok.
            let _ = cache.refresh().await;
            let _ = done_tx.send(true);
        });
        Some(done_rx)
    }

    /// Refreshes every `period`; after a failure, retries sooner (1 s, doubling up to
    /// `period`) so a warden started before Better-Auth becomes ready on its own. The task ends
    /// once the cache itself is dropped.
    pub fn spawn_refresher(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let first_ok = self.last_fetch_ok();
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            let mut next = if first_ok { period } else { backoff };
            loop {
                tokio::time::sleep(next).await;
                let Some(cache) = weak.upgrade() else { return };
                next = match cache.refresh().await {
                    Ok(_) => {
                        backoff = Duration::from_secs(1);
                        period
                    }
                    Err(_) => {
                        backoff = (backoff * 2).min(period);
                        backoff
                    }
                };
            }
        })
    }
}

fn log_skipped(from: &str, skipped: &[Skipped]) {
    for s in skipped {
        tracing::warn!(kid = ?s.kid, reason = %s.error, "ignoring a key from the {from}");
    }
}

//! One multiplexed RESP3 connection to Redis, kept up by a background task, with client
//! tracking on so that `Tracked` hears of every change to a key it holds.
//!
//! While there is no connection every command fails at once with [`Unavailable`] (the request
//! answers 503 `session_store_unavailable`; nothing is guessed from memory). The task retries
//! with a growing pause (100 ms to 2 s) and pings a live connection every second, so a dead
//! one is noticed even with no traffic; a drop flushes the cache before anything else can be
//! read, and a new connection turns tracking on before it is used.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushKind, Value};
use tokio::sync::Notify;

use super::tracked::Tracked;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may take before it counts as Redis being unavailable.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const PING_EVERY: Duration = Duration::from_secs(1);

/// Redis cannot be reached, or did not answer in time. The text is for the log, never a client.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct Unavailable(pub(crate) String);

impl From<redis::RedisError> for Unavailable {
    fn from(err: redis::RedisError) -> Self {
        Self(err.to_string())
    }
}

/// A URL that is not a Redis URL.
#[derive(Debug, thiserror::Error)]
#[error("not a Redis URL (redis://[user:password@]host[:port][/db], rediss:// for TLS, redis+unix:///path)")]
pub struct BadUrl;

/// The connection and its keeper's state, shared with the push handler.
pub(crate) struct Link<V> {
    client: redis::Client,
    current: ArcSwapOption<MultiplexedConnection>,
    dropped: Notify,
    tracking: AtomicBool,
    /// Which connection is current: a drop reported late by an older one is ignored.
    generation: AtomicU64,
    /// The last generation found gone.
    lost_generation: AtomicU64,
    pub(crate) cache: Tracked<V>,
    /// Whether tracking (and so the cache) is wanted at all (`REDIS_CACHE`).
    cache_wanted: bool,
}

impl<V> std::fmt::Debug for Link<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("connected", &self.current.load().is_some())
            .field("tracking", &self.tracking.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<V: Clone + Send + Sync + 'static> Link<V> {
    /// A link to `url` (RESP3 is asked for whatever the URL says); not connected until
    /// [`Link::spawn`]'s task connects it.
    pub(crate) fn new(url: &str, cache: Tracked<V>, cache_wanted: bool) -> Result<Self, BadUrl> {
        let info = url.into_connection_info().map_err(|_| BadUrl)?;
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings)).map_err(|_| BadUrl)?;
        Ok(Self {
            client,
            current: ArcSwapOption::empty(),
            dropped: Notify::new(),
            tracking: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            lost_generation: AtomicU64::new(0),
            cache,
            cache_wanted,
        })
    }

    /// The live connection, or `Unavailable` at once.
    pub(crate) fn conn(&self) -> Result<MultiplexedConnection, Unavailable> {
        match self.current.load_full() {
            Some(conn) => Ok((*conn).clone()),
            None => Err(Unavailable("not connected".into())),
        }
    }

    /// Whether a connection is up (for readiness).
    pub(crate) fn connected(&self) -> bool {
        self.current.load().is_some()
    }

    /// Whether values are cached (tracking is on for the live connection).
    pub(crate) fn tracking(&self) -> bool {
        self.tracking.load(Ordering::SeqCst)
    }

    /// Connection `generation` is gone: nothing is read through it, nothing cached is served,
    /// and its keeper wakes. A loss reported for an older connection changes nothing.
    fn lost(&self, generation: u64) {
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        self.lost_generation.store(generation, Ordering::SeqCst);
        self.current.store(None);
        self.tracking.store(false, Ordering::SeqCst);
        self.cache.flush(false);
        // Wakes a keeper waiting now, and stores no permit for a later one to trip over.
        self.dropped.notify_waiters();
    }

    /// Starts the keeper: connects, keeps the connection, reconnects. Stops when `link` is
    /// the last reference (checked between attempts) or the task is aborted.
    pub(crate) fn spawn(link: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(link);
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(100);
            let mut reported = false;
            loop {
                let Some(link) = weak.upgrade() else { return };
                match link.connect().await {
                    Ok(generation) => {
                        if reported {
                            tracing::info!("redis: connected again");
                        }
                        reported = false;
                        pause = Duration::from_millis(100);
                        link.keep(generation).await;
                        link.lost(generation);
                        tracing::warn!("redis: connection lost; session reads answer 503 until it is back");
                    }
                    Err(err) => {
                        if !reported {
                            tracing::warn!(error = %err, "redis: cannot connect; retrying");
                            reported = true;
                        }
                    }
                }
                drop(link);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        })
    }

    /// A new connection, made current; returns its generation. Before it, there is none
    /// (`lost` cleared it), so no read can be tracked on a connection about to go.
    async fn connect(self: &Arc<Self>) -> Result<u64, Unavailable> {
        let weak = Arc::downgrade(self);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_push_sender(move |push: redis::PushInfo| {
                if let Some(link) = weak.upgrade() {
                    link.on_push(push, generation);
                }
                Ok::<(), redis::aio::SendError>(())
            });
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        // Default mode (not BCAST): Redis tracks only the keys this connection reads.
        let tracking = self.cache_wanted
            && match redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .query_async::<()>(&mut conn)
                .await
            {
                Ok(()) => true,
                Err(err) => {
                    tracing::warn!(error = %err, "redis: client tracking refused; every session read goes to Redis");
                    false
                }
            };
        // Current first, then the cache on: a read that took its ticket before the flush (and
        // so through no connection, or an older one) cannot land.
        self.current.store(Some(Arc::new(conn)));
        self.tracking.store(tracking, Ordering::SeqCst);
        self.cache.flush(tracking);
        if self.lost_generation.load(Ordering::SeqCst) == generation {
            // It dropped while tracking was being turned on, before it was current.
            self.current.store(None);
            self.tracking.store(false, Ordering::SeqCst);
            self.cache.flush(false);
        }
        Ok(generation)
    }

    /// Waits while connection `generation` lives: until it is reported closed, or a ping
    /// fails (the caller then marks it lost).
    async fn keep(&self, generation: u64) {
        loop {
            tokio::select! {
                () = self.dropped.notified() => {}
                () = tokio::time::sleep(PING_EVERY) => {}
            }
            if self.generation.load(Ordering::SeqCst) != generation {
                return;
            }
            let Ok(mut conn) = self.conn() else { return };
            if redis::cmd("PING").query_async::<()>(&mut conn).await.is_err() {
                return;
            }
        }
    }

    fn on_push(&self, push: redis::PushInfo, generation: u64) {
        match push.kind {
            PushKind::Invalidate => match push.data.first() {
                Some(Value::Array(keys)) => {
                    for key in keys {
                        if let Value::BulkString(key) = key {
                            self.cache.invalidate(key);
                        }
                    }
                }
                // A null: the server flushed, or dropped its tracking table: everything.
                _ => self.cache.flush(self.tracking()),
            },
            PushKind::Disconnection => self.lost(generation),
            _ => {}
        }
    }
}

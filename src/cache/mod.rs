//! In-process caches that keep requests off the database without going stale.
//!
//! - [`tokens::TokenCache`]: verified claims by token hash, so each distinct token's signature
//!   is checked once. An entry dies at the token's `exp` and is ignored once its key has left
//!   the JWKS.
//! - [`RowCache`]: user rows and sessions by id. Entries are dropped the moment PostgreSQL says
//!   the row changed (`NOTIFY` from triggers, received by [`listener`]), whoever changed it; a
//!   time-to-live bounds them anyway. While the listener is down or lagging the cache is not
//!   trusted: every request reads the database, as if it were off.
//!
//! A read-then-insert can race an invalidation (the row read before the change, the notice
//! handled before the insert). Per-shard epochs close that gap: an insert is skipped if any
//! invalidation touched the key's shard since the read began.

pub mod listener;
pub mod tokens;

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::db::sessions::SessionRef;
use crate::db::users::User;

const SHARDS: usize = 256;

/// Settings for [`RowCache`].
#[derive(Debug, Clone, Copy)]
pub struct RowCacheSettings {
    pub enabled: bool,
    pub ttl: Duration,
    pub capacity: u64,
}

/// A cache of one kind of row by id.
#[derive(Debug)]
struct Rows<V: Send + Sync + 'static> {
    cache: moka::sync::Cache<String, Arc<V>>,
}

impl<V: Send + Sync + 'static> Rows<V> {
    fn new(settings: RowCacheSettings) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(settings.capacity)
                .time_to_live(settings.ttl)
                .build(),
        }
    }
}

/// User rows and session references, invalidated by database notifications.
#[derive(Debug)]
pub struct RowCache {
    users: Option<Rows<User>>,
    sessions: Option<Rows<SessionRef>>,
    /// Whether the listener is connected and has been heard from recently.
    trusted: AtomicBool,
    epochs: Box<[AtomicU64]>,
    hasher: std::hash::RandomState,
}

/// What a reader must hand back when inserting: the key's epoch when the read began.
#[derive(Debug, Clone, Copy)]
pub struct ReadTicket(Option<(usize, u64)>);

impl RowCache {
    pub fn new(settings: RowCacheSettings) -> Self {
        Self {
            users: settings.enabled.then(|| Rows::new(settings)),
            sessions: settings.enabled.then(|| Rows::new(settings)),
            trusted: AtomicBool::new(false),
            epochs: (0..SHARDS).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// A cache that never holds anything (`USER_CACHE=false`).
    pub fn disabled() -> Self {
        Self::new(RowCacheSettings {
            enabled: false,
            ttl: Duration::from_secs(1),
            capacity: 0,
        })
    }

    pub fn enabled(&self) -> bool {
        self.users.is_some()
    }

    /// Whether entries may be used now (enabled, and the listener is healthy).
    pub fn trusted(&self) -> bool {
        self.enabled() && self.trusted.load(Ordering::Acquire)
    }

    /// Called by the listener: `true` once listening (after clearing), `false` when it lost
    /// the connection (clearing too, since notices may have been missed).
    pub fn set_trusted(&self, trusted: bool) {
        self.clear();
        self.trusted.store(trusted, Ordering::Release);
        metrics::gauge!("warden_cache_listener_up").set(if trusted { 1.0 } else { 0.0 });
    }

    fn shard(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    /// Starts a read of `key` from the database; pass the ticket to the insert.
    pub fn ticket(&self, key: &str) -> ReadTicket {
        if !self.trusted() {
            return ReadTicket(None);
        }
        let shard = self.shard(key);
        ReadTicket(Some((shard, self.epochs[shard].load(Ordering::Acquire))))
    }

    fn still_valid(&self, ticket: ReadTicket) -> bool {
        match ticket.0 {
            Some((shard, epoch)) => self.trusted() && self.epochs[shard].load(Ordering::Acquire) == epoch,
            None => false,
        }
    }

    fn bump(&self, key: &str) {
        self.epochs[self.shard(key)].fetch_add(1, Ordering::AcqRel);
    }

    pub fn user(&self, id: &str) -> Option<Arc<User>> {
        if !self.trusted() {
            return None;
        }
        self.users.as_ref()?.cache.get(id)
    }

    pub fn put_user(&self, user: Arc<User>, ticket: ReadTicket) {
        if let Some(rows) = &self.users
            && self.still_valid(ticket)
        {
            rows.cache.insert(user.id.clone(), user);
        }
    }

    pub fn session(&self, id: &str) -> Option<Arc<SessionRef>> {
        if !self.trusted() {
            return None;
        }
        self.sessions.as_ref()?.cache.get(id)
    }

    pub fn put_session(&self, session: Arc<SessionRef>, ticket: ReadTicket) {
        if let Some(rows) = &self.sessions
            && self.still_valid(ticket)
        {
            rows.cache.insert(session.id.clone(), session);
        }
    }

    /// A user row changed or went away.
    pub fn invalidate_user(&self, id: &str) {
        self.bump(id);
        if let Some(rows) = &self.users {
            rows.cache.invalidate(id);
        }
    }

    /// A session changed or went away.
    pub fn invalidate_session(&self, id: &str) {
        self.bump(id);
        if let Some(rows) = &self.sessions {
            rows.cache.invalidate(id);
        }
    }

    /// Forgets everything (and outdates every read in flight).
    pub fn clear(&self) {
        for epoch in self.epochs.iter() {
            epoch.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(rows) = &self.users {
            rows.cache.invalidate_all();
        }
        if let Some(rows) = &self.sessions {
            rows.cache.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn user(id: &str) -> Arc<User> {
        let now = OffsetDateTime::now_utc();
        Arc::new(User {
            id: id.into(),
            name: "n".into(),
            email: format!("{id}@x.test"),
            email_verified: false,
            image: None,
            created_at: now,
            updated_at: now,
            role: None,
            banned: None,
            ban_reason: None,
            ban_expires: None,
        })
    }

    fn cache() -> RowCache {
        RowCache::new(RowCacheSettings {
            enabled: true,
            ttl: Duration::from_secs(60),
            capacity: 100,
        })
    }

    #[test]
    fn untrusted_cache_is_bypassed() {
        let c = cache();
        let t = c.ticket("a");
        c.put_user(user("a"), t);
        assert!(
            c.user("a").is_none(),
            "nothing is cached before the listener is up"
        );
        c.set_trusted(true);
        let t = c.ticket("a");
        c.put_user(user("a"), t);
        assert!(c.user("a").is_some());
        c.set_trusted(false);
        assert!(
            c.user("a").is_none(),
            "a listener outage makes every lookup a miss"
        );
        c.set_trusted(true);
        assert!(c.user("a").is_none(), "and what was cached before it is gone");
    }

    #[test]
    fn an_invalidation_during_a_read_wins() {
        let c = cache();
        c.set_trusted(true);
        let t = c.ticket("a");
        c.invalidate_user("a"); // the row changed while we were reading the old one
        c.put_user(user("a"), t);
        assert!(c.user("a").is_none());
        let t = c.ticket("a");
        c.put_user(user("a"), t);
        assert!(c.user("a").is_some());
        c.invalidate_user("a");
        assert!(c.user("a").is_none());
    }

    #[test]
    fn disabled_cache_holds_nothing() {
        let c = RowCache::disabled();
        c.set_trusted(true);
        let t = c.ticket("a");
        c.put_user(user("a"), t);
        assert!(c.user("a").is_none());
    }
}

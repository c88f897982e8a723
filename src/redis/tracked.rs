//! Values read from Redis, kept in memory until Redis says they changed.
//!
//! The connection runs with client tracking on (`CLIENT TRACKING ON`, RESP3): Redis remembers
//! every key this connection read, absent keys included, and pushes an invalidation the moment
//! any client changes, deletes or expires one of them, on the same connection. So a cached
//! value is dropped within a round trip of Better-Auth's write, on every replica, and an absent
//! key (a session's revoked-before marker, usually) is cached as absent just as safely.
//!
//! A read-then-insert can race an invalidation (the value read before the change, the push
//! handled before the insert). Per-shard epochs close that gap, without a lock on the read
//! path: an invalidation bumps its shard's epoch and then removes the key; an insert is made
//! only when the epoch is still the one taken before the read, and is undone when the epoch
//! moved while it was made. Whatever the interleaving, the stale value is gone when both are
//! done. When the connection drops, every invalidation since may be lost: everything is
//! dropped and no insert begun before can land (`flush`).

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SHARDS: usize = 64;

/// The cache: Redis keys (with their prefix, as invalidations name them) to parsed values.
pub(crate) struct Tracked<V> {
    entries: quick_cache::sync::Cache<String, Entry<V>>,
    epochs: [AtomicU64; SHARDS],
    hasher: std::collections::hash_map::RandomState,
    /// Off while the connection has no tracking (it dropped, or the server refused tracking):
    /// nothing is served from memory or stored.
    on: AtomicBool,
    ttl: Duration,
}

#[derive(Clone)]
struct Entry<V> {
    value: V,
    at: Instant,
}

/// Taken before a read; an insert made with it lands only if nothing invalidated the key since.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    shard: usize,
    epoch: u64,
}

impl<V: Clone> Tracked<V> {
    /// Up to `capacity` values, none older than `ttl` (a bound behind the invalidations).
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity.max(16)),
            epochs: std::array::from_fn(|_| AtomicU64::new(0)),
            hasher: std::collections::hash_map::RandomState::new(),
            on: AtomicBool::new(false),
            ttl,
        }
    }

    fn shard(&self, key: &[u8]) -> usize {
        let mut h = self.hasher.build_hasher();
        key.hash(&mut h);
        (std::hash::Hasher::finish(&h) as usize) % SHARDS
    }

    /// Whether values are being kept (tracking is on for the live connection).
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// The value for `key` while fresh.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        if !self.is_on() {
            return None;
        }
        let entry = self.entries.get(key)?;
        (entry.at.elapsed() < self.ttl).then_some(entry.value)
    }

    /// Take before reading `key` from Redis.
    pub(crate) fn ticket(&self, key: &str) -> Ticket {
        let shard = self.shard(key.as_bytes());
        Ticket {
            shard,
            epoch: self.epochs[shard].load(Ordering::SeqCst),
        }
    }

    /// Keeps `value` for `key` unless `key` was invalidated since `ticket` was taken.
    pub(crate) fn put(&self, key: &str, value: V, ticket: Ticket) {
        let epoch = &self.epochs[ticket.shard];
        if !self.is_on() || epoch.load(Ordering::SeqCst) != ticket.epoch {
            return;
        }
        self.entries.insert(
            key.to_owned(),
            Entry {
                value,
                at: Instant::now(),
            },
        );
        if epoch.load(Ordering::SeqCst) != ticket.epoch || !self.is_on() {
            self.entries.remove(key);
        }
    }

    /// Redis says `key` changed (or warden changed it).
    pub(crate) fn invalidate(&self, key: &[u8]) {
        let shard = self.shard(key);
        self.epochs[shard].fetch_add(1, Ordering::SeqCst);
        if let Ok(key) = std::str::from_utf8(key) {
            self.entries.remove(key);
        }
    }

    /// Everything may have changed (the connection dropped, or Redis flushed): drop it all,
    /// and stop keeping values until `resume` (tracking on again).
    pub(crate) fn flush(&self, resume: bool) {
        self.on.store(false, Ordering::SeqCst);
        for epoch in &self.epochs {
            epoch.fetch_add(1, Ordering::SeqCst);
        }
        self.entries.clear();
        if resume {
            self.on.store(true, Ordering::SeqCst);
        }
    }
}

impl<V: Clone> std::fmt::Debug for Tracked<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked")
            .field("on", &self.on.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> Tracked<u32> {
        let c = Tracked::new(100, Duration::from_secs(60));
        c.flush(true);
        c
    }

    #[test]
    fn a_value_is_kept_until_invalidated() {
        let c = cache();
        let t = c.ticket("k");
        c.put("k", 1, t);
        assert_eq!(c.get("k"), Some(1));
        c.invalidate(b"k");
        assert_eq!(c.get("k"), None);
    }

    #[test]
    fn an_insert_after_an_invalidation_of_its_key_is_dropped() {
        let c = cache();
        let t = c.ticket("k");
        c.invalidate(b"k");
        c.put("k", 1, t);
        assert_eq!(c.get("k"), None);
        // A new read after the invalidation lands.
        let t = c.ticket("k");
        c.put("k", 2, t);
        assert_eq!(c.get("k"), Some(2));
    }

    #[test]
    fn nothing_is_kept_while_off_and_a_flush_voids_earlier_tickets() {
        let c: Tracked<u32> = Tracked::new(100, Duration::from_secs(60));
        let t = c.ticket("k");
        c.put("k", 1, t);
        assert_eq!(c.get("k"), None, "off until tracking is on");
        c.flush(true);
        c.put("k", 1, t);
        assert_eq!(c.get("k"), None, "a ticket from before the flush");
        let t = c.ticket("k");
        c.put("k", 1, t);
        c.flush(false);
        assert_eq!(c.get("k"), None);
    }

    #[test]
    fn values_older_than_the_ttl_are_not_served() {
        let c: Tracked<u32> = Tracked::new(100, Duration::ZERO);
        c.flush(true);
        let t = c.ticket("k");
        c.put("k", 1, t);
        assert_eq!(c.get("k"), None);
    }
}

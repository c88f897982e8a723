//! When a key that counts nothing was last stamped. The plugin writes `updated_at` (and, with
//! rate limiting off, `last_request`) on every use; for a key whose row is cached that write
//! would be the only database work left, so warden writes it at most once a [`STAMP_EVERY`]
//! per key (`API_KEY_STAMP_SECS`). The first use this process sees is written before the
//! answer (so the row says the key was used as soon as the client knows it was); later stamps
//! are queued and written together, all keys in one statement, by a background task once per
//! period. (Written one by one, even beside the request, 1,000 busy keys cost 1,000 statements
//! a second and a tenth of the throughput on two cores; waited for, they also tripled the p99.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::db::api_keys;

/// How often a key that counts nothing has its use written, unless configured otherwise.
pub const STAMP_EVERY: Duration = Duration::from_secs(1);

/// Keys remembered (least recently stamped forgotten first: a forgotten key is stamped on its
/// next use, which is never wrong).
const CAPACITY: usize = 16_384;

/// Whether a use is to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Not yet: the last stamp is recent.
    No,
    /// The first use this process sees of the key.
    First,
    /// A later one.
    Again,
}

/// The last stamp per key id, and the stamps waiting for the next write.
pub struct Stamps {
    last: quick_cache::sync::Cache<String, Instant>,
    /// Key id → (the use's moment, whether `last_request` is written too).
    queued: Mutex<HashMap<String, (OffsetDateTime, bool)>>,
}

impl std::fmt::Debug for Stamps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stamps").field("keys", &self.last.len()).finish()
    }
}

impl Default for Stamps {
    fn default() -> Self {
        Self {
            last: quick_cache::sync::Cache::new(CAPACITY),
            queued: Mutex::new(HashMap::new()),
        }
    }
}

impl Stamps {
    /// Whether key `id` is due a stamp now, stamped `every` at most; if so, it counts as
    /// stamped from now.
    pub fn due(&self, id: &str, now: Instant, every: Duration) -> Due {
        match self.last.get(id) {
            Some(last) if now.duration_since(last) < every => Due::No,
            found => {
                self.last.insert(id.to_owned(), now);
                if found.is_some() { Due::Again } else { Due::First }
            }
        }
    }

    /// Queues the stamp of a use of key `id` at `at` for the next write.
    pub fn queue(&self, id: &str, at: OffsetDateTime, last_request: bool) {
        let mut queued = self
            .queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded like the keys remembered: a full queue waits for its write.
        if queued.len() < CAPACITY || queued.contains_key(id) {
            queued.insert(id.to_owned(), (at, last_request));
        }
    }

    /// The queued stamps, taken.
    fn take(&self) -> HashMap<String, (OffsetDateTime, bool)> {
        std::mem::take(
            &mut *self
                .queued
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Writes the queued stamps every `every`, all in one statement, until aborted.
    pub fn spawn_writer(stamps: Arc<Self>, db: PgPool, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let batch = stamps.take();
                if batch.is_empty() {
                    continue;
                }
                let written = batch.len();
                if let Err(err) = api_keys::stamp_many(&db, batch).await {
                    tracing::debug!(error = %err, keys = written, "API keys' uses were not written");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_stamped_once_a_second() {
        let stamps = Stamps::default();
        let t0 = Instant::now();
        assert_eq!(stamps.due("k", t0, STAMP_EVERY), Due::First);
        assert_eq!(
            stamps.due("k", t0 + Duration::from_millis(500), STAMP_EVERY),
            Due::No
        );
        assert_eq!(stamps.due("other", t0, STAMP_EVERY), Due::First);
        assert_eq!(stamps.due("k", t0 + STAMP_EVERY, STAMP_EVERY), Due::Again);
        assert_eq!(stamps.due("k", t0 + STAMP_EVERY * 2, STAMP_EVERY * 10), Due::No);
    }

    #[test]
    fn queued_stamps_are_taken_once_the_latest_per_key() {
        let stamps = Stamps::default();
        let t = OffsetDateTime::now_utc();
        stamps.queue("a", t, true);
        stamps.queue("a", t + time::Duration::seconds(1), false);
        stamps.queue("b", t, true);
        let batch = stamps.take();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch["a"], (t + time::Duration::seconds(1), false));
        assert!(stamps.take().is_empty());
    }
}

//! When a key that counts nothing was last stamped. The plugin writes `updated_at` (and, with
//! rate limiting off, `last_request`) on every use; for a key whose row is cached that write
//! would be the only database work left, so warden writes it at most once a [`STAMP_EVERY`]
//! per key (`API_KEY_STAMP_SECS`). The first use this process sees is written before the
//! answer (so the row says the key was used as soon as the client knows it was); later stamps
//! are written beside the request, which does not wait for them (a stamp waited for put a
//! database write and its commit into 2% of requests, and tripled the p99). The stamps then lag the last use by less than
//! that; nothing in the plugin's verdicts reads them for such a key.

use std::time::{Duration, Instant};

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

/// The last stamp per key id.
pub struct Stamps(quick_cache::sync::Cache<String, Instant>);

impl std::fmt::Debug for Stamps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stamps").field("keys", &self.0.len()).finish()
    }
}

impl Default for Stamps {
    fn default() -> Self {
        Self(quick_cache::sync::Cache::new(CAPACITY))
    }
}

impl Stamps {
    /// Whether key `id` is due a stamp now, stamped `every` at most; if so, it counts as
    /// stamped from now.
    pub fn due(&self, id: &str, now: Instant, every: Duration) -> Due {
        match self.0.get(id) {
            Some(last) if now.duration_since(last) < every => Due::No,
            found => {
                self.0.insert(id.to_owned(), now);
                if found.is_some() { Due::Again } else { Due::First }
            }
        }
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
}

//! When a key that counts nothing was last stamped. The plugin writes `updated_at` (and, with
//! rate limiting off, `last_request`) on every use; for a key whose row is cached that write
//! would be the only database work left, so warden writes it at most once a [`STAMP_EVERY`]
//! per key (`API_KEY_STAMP_SECS`), in the request that finds it due. The stamps then lag the last use by less than
//! that; nothing in the plugin's verdicts reads them for such a key.

use std::time::{Duration, Instant};

/// How often a key that counts nothing has its use written, unless configured otherwise.
pub const STAMP_EVERY: Duration = Duration::from_secs(1);

/// Keys remembered (least recently stamped forgotten first: a forgotten key is stamped on its
/// next use, which is never wrong).
const CAPACITY: usize = 16_384;

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
    pub fn due(&self, id: &str, now: Instant, every: Duration) -> bool {
        match self.0.get(id) {
            Some(last) if now.duration_since(last) < every => false,
            _ => {
                self.0.insert(id.to_owned(), now);
                true
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
        assert!(stamps.due("k", t0, STAMP_EVERY));
        assert!(!stamps.due("k", t0 + Duration::from_millis(500), STAMP_EVERY));
        assert!(stamps.due("other", t0, STAMP_EVERY));
        assert!(stamps.due("k", t0 + STAMP_EVERY, STAMP_EVERY));
        assert!(!stamps.due("k", t0 + STAMP_EVERY * 2, STAMP_EVERY * 10));
    }
}

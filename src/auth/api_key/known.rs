//! The keys found to exist lately, by stored form. A key carries no signature, so reading the
//! row of a key nobody has seen is dear work (the failure limiter's attempts pay for it: junk
//! keys cannot make warden read the database unbounded). A key whose row was found before is
//! no junk: reading it again is bounded work, so a busy client using real keys (a backend with
//! many keys, a script at high concurrency) is never throttled for the reads its own keys
//! cost. A key found gone is forgotten here.

/// Keys remembered; the least recently used are forgotten first (their next read is dear
/// again, which is only ever slower).
const CAPACITY: usize = 16_384;

/// Stored forms of keys that existed when last read.
pub struct KnownKeys(quick_cache::sync::Cache<String, ()>);

impl std::fmt::Debug for KnownKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownKeys").field("keys", &self.0.len()).finish()
    }
}

impl Default for KnownKeys {
    fn default() -> Self {
        Self(quick_cache::sync::Cache::new(CAPACITY))
    }
}

impl KnownKeys {
    /// Whether a key stored as `stored` was found last time it was read.
    pub fn contains(&self, stored: &str) -> bool {
        self.0.get(stored).is_some()
    }

    /// The key stored as `stored` was found (`true`) or is gone (`false`).
    pub fn found(&self, stored: &str, exists: bool) {
        if exists {
            self.0.insert(stored.to_owned(), ());
        } else {
            self.0.remove(stored);
        }
    }
}

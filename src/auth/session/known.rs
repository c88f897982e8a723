//! Session tokens seen to name a session: the token (by SHA-256) to its session's id, so that
//! with sessions in the table a token seen before finds its session in the row cache (by id,
//! kept fresh by the table's notifications) instead of reading the table by token every time.
//!
//! A token names the same session for the session's whole life (Better-Auth never reissues
//! one), so what is remembered cannot go stale: when the session ends, its id finds nothing
//! and the token is forgotten. Only tokens that matched a session are remembered (a made-up
//! token never is), at most 100,000 of them.

use std::sync::Arc;

/// Token (by SHA-256) → session id.
pub(crate) struct KnownTokens(quick_cache::sync::Cache<[u8; 32], Arc<str>>);

impl std::fmt::Debug for KnownTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KnownTokens").field(&self.0.len()).finish()
    }
}

impl Default for KnownTokens {
    fn default() -> Self {
        Self(quick_cache::sync::Cache::new(100_000))
    }
}

impl KnownTokens {
    /// The id of the session `token` (by [`token_key`]) named when last read.
    pub(crate) fn session_of(&self, key: &[u8; 32]) -> Option<Arc<str>> {
        self.0.get(key)
    }

    /// `token` (by [`token_key`]) names session `id`.
    pub(crate) fn remember(&self, key: [u8; 32], id: &str) {
        self.0.insert(key, Arc::from(id));
    }

    /// Its session is gone.
    pub(crate) fn forget(&self, key: &[u8; 32]) {
        self.0.remove(key);
    }
}

/// How a session token is kept in memory: its SHA-256, never the token.
pub(crate) fn token_key(token: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    key.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref());
    key
}

//! Credentials refused because of what the database said, remembered for a minute so the
//! next request with the same credential is refused without asking again:
//!
//! - `UnknownTokens`: session tokens (by SHA-256) that matched no session, or whose session
//!   had expired (Better-Auth never extends an expired session);
//! - `Gone`: the session a JWT names (`sid`) once the database no longer has it (signed out,
//!   revoked), and a user who no longer exists.
//!
//! A client keeps sending such a credential until it expires: a signed-out JWT for the rest of
//! its 15 minutes, at whatever rate it likes. Its signature was good, so nothing else stops it,
//! and each request would cost a read to be refused again. Better-Auth never gives a new
//! session or user an id it used before, so nothing this memory refuses could have passed; the
//! minute bounds it all the same, and the size is capped, so a flood of such credentials can
//! only push older entries out.

use std::time::Duration;

use moka::sync::Cache;

const REMEMBERED: Duration = Duration::from_secs(60);
const MAX_ENTRIES: u64 = 100_000;

/// Session and user ids recently found gone.
#[derive(Clone)]
pub(crate) struct Gone {
    sessions: Cache<String, ()>,
    users: Cache<String, ()>,
}

impl std::fmt::Debug for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gone")
            .field("sessions", &self.sessions.entry_count())
            .field("users", &self.users.entry_count())
            .finish()
    }
}

impl Default for Gone {
    fn default() -> Self {
        let cache = || {
            Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(REMEMBERED)
                .build()
        };
        Self {
            sessions: cache(),
            users: cache(),
        }
    }
}

impl Gone {
    /// Whether the session `id` was found gone within the last minute.
    pub(crate) fn session(&self, id: &str) -> bool {
        self.sessions.contains_key(id)
    }

    /// Remembers that the session `id` is gone.
    pub(crate) fn session_gone(&self, id: &str) {
        self.sessions.insert(id.to_owned(), ());
    }

    /// Whether the user `id` was found gone within the last minute.
    pub(crate) fn user(&self, id: &str) -> bool {
        self.users.contains_key(id)
    }

    /// Remembers that the user `id` is gone.
    pub(crate) fn user_gone(&self, id: &str) {
        self.users.insert(id.to_owned(), ());
    }
}

/// Why a session token was refused, remembered for a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No session has it (never issued, signed out, revoked).
    Unknown,
    /// Its session has expired (Better-Auth never extends an expired session).
    Expired,
}

/// Session tokens recently refused (by SHA-256), for a minute: each costs one read at most
/// once a minute, however often it is sent.
#[derive(Clone)]
pub(crate) struct UnknownTokens(moka::sync::Cache<[u8; 32], Refused>);

impl std::fmt::Debug for UnknownTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UnknownTokens")
            .field(&self.0.entry_count())
            .finish()
    }
}

impl Default for UnknownTokens {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(60))
                .build(),
        )
    }
}

impl UnknownTokens {
    fn key(token: &str) -> [u8; 32] {
        super::known::token_key(token)
    }

    /// Why `token` was refused within the last minute, if it was.
    #[cfg(feature = "server")]
    pub fn refused(&self, token: &str) -> Option<Refused> {
        self.refused_key(&Self::key(token))
    }

    /// [`UnknownTokens::refused`] by the token's key (`known::token_key`).
    pub(crate) fn refused_key(&self, key: &[u8; 32]) -> Option<Refused> {
        self.0.get(key)
    }

    /// Whether `token` matched no live session within the last minute.
    #[cfg(feature = "server")]
    pub fn contains(&self, token: &str) -> bool {
        self.refused(token).is_some()
    }

    /// Remembers that `token` matched no session.
    pub fn insert(&self, token: &str) {
        self.remember(token, Refused::Unknown);
    }

    /// Remembers why `token` was refused.
    pub fn remember(&self, token: &str, why: Refused) {
        self.0.insert(Self::key(token), why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gone_rows_are_remembered_apart() {
        let gone = Gone::default();
        assert!(!gone.session("s1") && !gone.user("s1"));
        gone.session_gone("s1");
        gone.user_gone("u1");
        assert!(gone.session("s1") && !gone.user("s1"));
        assert!(gone.user("u1") && !gone.session("u1"));
    }
}

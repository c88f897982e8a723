//! Rows found gone, remembered for a minute: the session a JWT names (`sid`) once the database
//! no longer has it (signed out, revoked), and a user who no longer exists.
//!
//! A client keeps sending such a credential until it expires: a signed-out JWT for the rest of
//! its 15 minutes, at whatever rate it likes. The token is in the token cache (its signature
//! was good), so nothing else stops it, and each request would cost a read to be refused again.
//! Better-Auth never gives a new session or user an id it used before, so nothing this memory
//! refuses could have passed; the minute bounds it all the same (and its size is capped, so a
//! flood of such credentials can only push older entries out). Session tokens whose session is
//! unknown or expired are remembered the same way, by [`super::session_token::UnknownTokens`].

use moka::sync::Cache;
use std::time::Duration;

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

//! In-process caches that keep requests off the database without going stale.
//!
//! - [`RowCache`]: user rows and sessions by id (and memberships, organizations' dynamic
//!   roles, and API keys' rows by their stored form). Entries are dropped the moment PostgreSQL says
//!   the row changed (`NOTIFY` from triggers, received by [`listener`]), whoever changed it; a
//!   time-to-live bounds them anyway. While the listener is down or lagging the cache is not
//!   trusted: every request reads the database, as if it were off.
//!
//! A read-then-insert can race an invalidation (the row read before the change, the notice
//! handled before the insert). Per-shard epochs close that gap: an insert is skipped if any
//! invalidation touched the key's shard since the read began. The epoch check and the insert
//! happen under the shard's lock, which every invalidation of that shard also takes, so no
//! invalidation can fall between the check and the insert.

pub mod listener;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::db::api_keys::ApiKeyRow;
use crate::db::oauth_tokens::StoredAccessToken;
use crate::db::organizations::{Membership, RoleStatements};
use crate::db::sessions::SessionRef;
use crate::db::users::User;

const SHARDS: usize = 256;

/// Settings for `RowCache`.
#[derive(Debug, Clone, Copy)]
pub struct RowCacheSettings {
    /// Whether rows are cached at all (`USER_CACHE`).
    pub enabled: bool,
    /// An upper bound on a cached row's age (`USER_CACHE_TTL_SECS`).
    pub ttl: Duration,
    /// The memory the cached rows may take, all kinds together (`USER_CACHE_MB`).
    pub bytes: u64,
}

impl Default for RowCacheSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: Duration::from_secs(60),
            bytes: 16 * 1024 * 1024,
        }
    }
}

/// What one entry costs beyond what it points to: the cache's slot and bookkeeping and the
/// allocator's rounding. Measured with moka, which needed about 400 bytes an entry (filling a
/// cache with 16,000 entries and reading the process's RSS); a bound on the lighter cache used
/// now.
const ENTRY_OVERHEAD: usize = 400;

/// What a cached value weighs in memory, roughly: its own size and the text it owns.
trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for User {
    fn weight(&self) -> usize {
        size_of::<Self>()
            + self.id.len()
            + self.name.len()
            + self.email.len()
            + self.image.as_ref().map_or(0, String::len)
            + self.role.as_ref().map_or(0, String::len)
            + self.ban_reason.as_ref().map_or(0, String::len)
    }
}

impl Weight for SessionRef {
    fn weight(&self) -> usize {
        size_of::<Self>()
            + self.id.len()
            + self.user_id.len()
            + self.active_organization_id.as_ref().map_or(0, String::len)
            + self.impersonated_by.as_ref().map_or(0, String::len)
    }
}

impl Weight for ApiKeyRow {
    fn weight(&self) -> usize {
        let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
        size_of::<Self>()
            + self.id.len()
            + self.config_id.len()
            + self.reference_id.len()
            + text(&self.name)
            + text(&self.start)
            + text(&self.prefix)
            + text(&self.permissions)
            + text(&self.metadata)
    }
}

impl Weight for StoredAccessToken {
    fn weight(&self) -> usize {
        let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
        let list = |l: &Vec<String>| l.iter().map(|s| 24 + s.len()).sum::<usize>();
        size_of::<Self>()
            + self.client_id.len()
            + text(&self.user_id)
            + text(&self.session_id)
            + text(&self.jkt)
            + list(&self.resources)
            + list(&self.scopes)
    }
}

/// Whether an OAuth client may be served (exists and is not disabled), as cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientState {
    /// Exists and is not disabled.
    pub enabled: bool,
}

impl Weight for ClientState {
    fn weight(&self) -> usize {
        size_of::<Self>()
    }
}

impl Weight for Vec<Membership> {
    fn weight(&self) -> usize {
        size_of::<Self>()
            + self
                .iter()
                .map(|m| size_of::<Membership>() + m.organization_id.len() + m.member_id.len() + m.role.len())
                .sum::<usize>()
    }
}

impl Weight for Vec<(String, RoleStatements)> {
    fn weight(&self) -> usize {
        size_of::<Self>()
            + self
                .iter()
                .map(|(role, statements)| {
                    64 + role.len()
                        + statements
                            .iter()
                            .map(|(r, actions)| {
                                64 + r.len() + actions.iter().map(|a| 24 + a.len()).sum::<usize>()
                            })
                            .sum::<usize>()
                })
                .sum::<usize>()
    }
}

/// A cache of one kind of row by id, bounded by memory. Each entry carries the moment it was
/// read; one older than the time-to-live is never returned (it stays until evicted or
/// overwritten: the memory bound holds either way).
struct Rows<V: Send + Sync + 'static> {
    cache: quick_cache::sync::Cache<String, (Arc<V>, Instant), ByWeight>,
    ttl: Duration,
}

impl<V: Weight + Send + Sync + 'static> std::fmt::Debug for Rows<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("entries", &self.cache.len())
            .field("bytes", &self.cache.weight())
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Weighs an entry for the cache's memory bound: the key, the row and the bookkeeping.
#[derive(Clone, Copy)]
struct ByWeight;

impl<V: Weight> quick_cache::Weighter<String, (Arc<V>, Instant)> for ByWeight {
    fn weight(&self, key: &String, value: &(Arc<V>, Instant)) -> u64 {
        (key.len() + value.0.weight() + ENTRY_OVERHEAD) as u64
    }
}

/// About what a cached row weighs, to size each table up front.
const TYPICAL_ENTRY: u64 = 600;

impl<V: Weight + Send + Sync + 'static> Rows<V> {
    /// Room for about `bytes` of rows, none older than `ttl`.
    fn new(bytes: u64, ttl: Duration) -> Self {
        let items = usize::try_from((bytes / TYPICAL_ENTRY).max(16)).unwrap_or(usize::MAX);
        Self {
            cache: quick_cache::sync::Cache::with_weighter(items, bytes.max(1), ByWeight),
            ttl,
        }
    }

    fn get(&self, key: &str) -> Option<Arc<V>> {
        let (value, read_at) = self.cache.get(key)?;
        (read_at.elapsed() < self.ttl).then_some(value)
    }

    fn insert(&self, key: String, value: Arc<V>) {
        self.cache.insert(key, (value, Instant::now()));
    }

    fn invalidate(&self, key: &str) {
        self.cache.remove(key);
    }

    fn invalidate_all(&self) {
        self.cache.clear();
    }
}

/// User rows and session references, invalidated by database notifications.
#[derive(Debug)]
pub struct RowCache {
    users: Option<Rows<User>>,
    sessions: Option<Rows<SessionRef>>,
    /// A user's organization memberships, by user id.
    memberships: Option<Rows<Vec<Membership>>>,
    /// An organization's dynamic roles, by organization id.
    org_roles: Option<Rows<Vec<(String, RoleStatements)>>>,
    /// API keys' rows, by their stored form (their counters are stale: only the claim reads
    /// those, fresh).
    api_keys: Option<Rows<ApiKeyRow>>,
    /// Opaque OAuth access tokens by the hex SHA-256 of their stored form.
    access_tokens: Option<Rows<StoredAccessToken>>,
    /// OAuth clients' state by client id.
    oauth_clients: Option<Rows<ClientState>>,
    /// Whether the listener is connected and has been heard from recently.
    trusted: AtomicBool,
    /// Per shard: the count of invalidations so far, behind the shard's lock.
    epochs: Box<[Mutex<u64>]>,
    hasher: std::hash::RandomState,
    /// Runs between the epoch check and the insert (tests of the race only).
    #[cfg(test)]
    before_insert: TestHook,
}

#[cfg(test)]
#[derive(Default)]
struct TestHook(Mutex<Option<Box<dyn Fn() + Send + Sync>>>);

#[cfg(test)]
impl std::fmt::Debug for TestHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestHook")
    }
}

/// What a reader must hand back when inserting: the key's epoch when the read began.
#[derive(Debug, Clone, Copy)]
pub struct ReadTicket(Option<(usize, u64)>);

impl RowCache {
    /// An empty cache, untrusted (so unused) until the listener reports in through
    /// [`set_trusted`](Self::set_trusted).
    pub fn new(settings: RowCacheSettings) -> Self {
        // The memory budget, shared: users take half, sessions 5/32, API keys, memberships,
        // organization roles and opaque access tokens 1/16 each, OAuth clients 1/32.
        let on = settings.enabled;
        let (bytes, ttl) = (settings.bytes, settings.ttl);
        Self {
            users: on.then(|| Rows::new(bytes / 2, ttl)),
            sessions: on.then(|| Rows::new(bytes / 32 * 5, ttl)),
            api_keys: on.then(|| Rows::new(bytes / 16, ttl)),
            memberships: on.then(|| Rows::new(bytes / 16, ttl)),
            org_roles: on.then(|| Rows::new(bytes / 16, ttl)),
            access_tokens: on.then(|| Rows::new(bytes / 16, ttl)),
            oauth_clients: on.then(|| Rows::new(bytes / 32, ttl)),
            trusted: AtomicBool::new(false),
            epochs: (0..SHARDS).map(|_| Mutex::new(0)).collect(),
            hasher: std::hash::RandomState::new(),
            #[cfg(test)]
            before_insert: TestHook::default(),
        }
    }

    /// A cache that never holds anything (`USER_CACHE=false`).
    pub fn disabled() -> Self {
        Self::new(RowCacheSettings {
            enabled: false,
            ttl: Duration::from_secs(1),
            bytes: 0,
        })
    }

    /// Whether the cache was built to hold rows, trusted right now or not.
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

    /// The shard's epoch, locked. A poisoned lock only means a panic elsewhere while it was
    /// held; the counter inside is still a counter.
    fn lock(&self, shard: usize) -> MutexGuard<'_, u64> {
        self.epochs[shard]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a read of `key` from the database; pass the ticket to the insert.
    pub fn ticket(&self, key: &str) -> ReadTicket {
        if !self.trusted() {
            return ReadTicket(None);
        }
        let shard = self.shard(key);
        let epoch = *self.lock(shard);
        ReadTicket(Some((shard, epoch)))
    }

    /// Inserts through `insert` only if no invalidation touched the key's shard since the
    /// ticket was taken, atomically with respect to invalidations.
    fn put_if_current(&self, ticket: ReadTicket, insert: impl FnOnce()) {
        let Some((shard, epoch)) = ticket.0 else { return };
        let current = self.lock(shard);
        if !self.trusted() || *current != epoch {
            return;
        }
        #[cfg(test)]
        if let Ok(hook) = self.before_insert.0.lock()
            && let Some(hook) = hook.as_ref()
        {
            hook();
        }
        insert();
        drop(current);
    }

    /// Outdates reads of the key's shard and drops the entry, under the shard's lock.
    fn invalidate(&self, key: &str, drop_entry: impl FnOnce()) {
        let mut epoch = self.lock(self.shard(key));
        *epoch += 1;
        drop_entry();
    }

    /// The cached user row, while the cache is trusted.
    pub fn user(&self, id: &str) -> Option<Arc<User>> {
        if !self.trusted() {
            return None;
        }
        self.users.as_ref()?.get(id)
    }

    /// Caches `user`, read from the database under `ticket`, unless an invalidation came in
    /// between.
    pub fn put_user(&self, user: Arc<User>, ticket: ReadTicket) {
        if let Some(rows) = &self.users {
            self.put_if_current(ticket, || rows.insert(user.id.clone(), user));
        }
    }

    /// The cached session, while the cache is trusted.
    pub fn session(&self, id: &str) -> Option<Arc<SessionRef>> {
        if !self.trusted() {
            return None;
        }
        self.sessions.as_ref()?.get(id)
    }

    /// Caches `session`, read from the database under `ticket`, unless an invalidation came in
    /// between.
    pub fn put_session(&self, session: Arc<SessionRef>, ticket: ReadTicket) {
        if let Some(rows) = &self.sessions {
            self.put_if_current(ticket, || rows.insert(session.id.clone(), session));
        }
    }

    /// A user row changed or went away.
    pub fn invalidate_user(&self, id: &str) {
        self.invalidate(id, || {
            if let Some(rows) = &self.users {
                rows.invalidate(id);
            }
        });
    }

    /// A session changed or went away.
    pub fn invalidate_session(&self, id: &str) {
        self.invalidate(id, || {
            if let Some(rows) = &self.sessions {
                rows.invalidate(id);
            }
        });
    }

    /// Sessions warden itself just deleted (their notifications are on the way; a request right
    /// after the write must not find them here meanwhile).
    #[cfg(feature = "server")]
    pub fn invalidate_sessions(&self, ids: &[String]) {
        for id in ids {
            self.invalidate_session(id);
        }
    }

    /// Outdates every read in flight, then drops what `drop_entries` drops.
    fn invalidate_all(&self, drop_entries: impl FnOnce()) {
        for shard in 0..SHARDS {
            *self.lock(shard) += 1;
        }
        // Entries inserted before the bumps go here; inserts after them fail their check.
        drop_entries();
    }

    /// A user's memberships, when cached and trusted.
    pub fn memberships(&self, user_id: &str) -> Option<Arc<Vec<Membership>>> {
        if !self.trusted() {
            return None;
        }
        self.memberships.as_ref()?.get(user_id)
    }

    /// Caches a user's memberships read under `ticket`.
    pub fn put_memberships(&self, user_id: &str, list: Arc<Vec<Membership>>, ticket: ReadTicket) {
        if let Some(rows) = &self.memberships {
            self.put_if_current(ticket, || rows.insert(user_id.to_owned(), list));
        }
    }

    /// An organization's dynamic roles, when cached and trusted.
    pub fn org_roles(&self, organization_id: &str) -> Option<Arc<Vec<(String, RoleStatements)>>> {
        if !self.trusted() {
            return None;
        }
        self.org_roles.as_ref()?.get(organization_id)
    }

    /// Caches an organization's dynamic roles read under `ticket`.
    pub fn put_org_roles(
        &self,
        organization_id: &str,
        roles: Arc<Vec<(String, RoleStatements)>>,
        ticket: ReadTicket,
    ) {
        if let Some(rows) = &self.org_roles {
            self.put_if_current(ticket, || rows.insert(organization_id.to_owned(), roles));
        }
    }

    /// The cached row of the API key stored as `stored`, while the cache is trusted.
    pub fn api_key(&self, stored: &str) -> Option<Arc<ApiKeyRow>> {
        if !self.trusted() {
            return None;
        }
        self.api_keys.as_ref()?.get(stored)
    }

    /// Caches the row of the API key stored as `stored`, read under `ticket`.
    pub fn put_api_key(&self, stored: &str, row: Arc<ApiKeyRow>, ticket: ReadTicket) {
        if let Some(rows) = &self.api_keys {
            self.put_if_current(ticket, || rows.insert(stored.to_owned(), row));
        }
    }

    /// Something that decides the verdict of the key stored as `stored` changed, or it went.
    pub fn invalidate_api_key(&self, stored: &str) {
        self.invalidate(stored, || {
            if let Some(rows) = &self.api_keys {
                rows.invalidate(stored);
            }
        });
    }

    /// The apikey table was truncated.
    pub fn clear_api_keys(&self) {
        self.invalidate_all(|| {
            if let Some(rows) = &self.api_keys {
                rows.invalidate_all();
            }
        });
    }

    /// The cached opaque access token in `slot` (the hex SHA-256 of its stored form), while
    /// the cache is trusted.
    pub fn access_token(&self, slot: &str) -> Option<Arc<StoredAccessToken>> {
        if !self.trusted() {
            return None;
        }
        self.access_tokens.as_ref()?.get(slot)
    }

    /// Caches the opaque access token of `slot`, read under `ticket`.
    pub fn put_access_token(&self, slot: &str, row: Arc<StoredAccessToken>, ticket: ReadTicket) {
        if let Some(rows) = &self.access_tokens {
            self.put_if_current(ticket, || rows.insert(slot.to_owned(), row));
        }
    }

    /// The access token of `slot` changed or went away.
    pub fn invalidate_access_token(&self, slot: &str) {
        self.invalidate(slot, || {
            if let Some(rows) = &self.access_tokens {
                rows.invalidate(slot);
            }
        });
    }

    /// The cached state of OAuth client `client_id`, while the cache is trusted.
    pub fn oauth_client(&self, client_id: &str) -> Option<Arc<ClientState>> {
        if !self.trusted() {
            return None;
        }
        self.oauth_clients.as_ref()?.get(client_id)
    }

    /// Caches the state of OAuth client `client_id`, read under `ticket`.
    pub fn put_oauth_client(&self, client_id: &str, state: Arc<ClientState>, ticket: ReadTicket) {
        if let Some(rows) = &self.oauth_clients {
            self.put_if_current(ticket, || rows.insert(client_id.to_owned(), state));
        }
    }

    /// OAuth client `client_id` was disabled, enabled, or deleted.
    pub fn invalidate_oauth_client(&self, client_id: &str) {
        self.invalidate(client_id, || {
            if let Some(rows) = &self.oauth_clients {
                rows.invalidate(client_id);
            }
        });
    }

    /// The oauth_access_token or oauth_client table was truncated.
    pub fn clear_oauth(&self) {
        self.invalidate_all(|| {
            if let Some(rows) = &self.access_tokens {
                rows.invalidate_all();
            }
            if let Some(rows) = &self.oauth_clients {
                rows.invalidate_all();
            }
        });
    }

    /// A membership of this user was added, changed or removed.
    pub fn invalidate_memberships(&self, user_id: &str) {
        self.invalidate(user_id, || {
            if let Some(rows) = &self.memberships {
                rows.invalidate(user_id);
            }
        });
    }

    /// A dynamic role of this organization was added, changed or removed.
    pub fn invalidate_org_roles(&self, organization_id: &str) {
        self.invalidate(organization_id, || {
            if let Some(rows) = &self.org_roles {
                rows.invalidate(organization_id);
            }
        });
    }

    /// The member table was truncated.
    pub fn clear_memberships(&self) {
        self.invalidate_all(|| {
            if let Some(rows) = &self.memberships {
                rows.invalidate_all();
            }
        });
    }

    /// The organization_role table was truncated.
    pub fn clear_org_roles(&self) {
        self.invalidate_all(|| {
            if let Some(rows) = &self.org_roles {
                rows.invalidate_all();
            }
            if let Some(rows) = &self.api_keys {
                rows.invalidate_all();
            }
        });
    }

    /// The user table was truncated.
    pub fn clear_users(&self) {
        self.invalidate_all(|| {
            if let Some(rows) = &self.users {
                rows.invalidate_all();
            }
        });
    }

    /// The session table was truncated.
    pub fn clear_sessions(&self) {
        self.invalidate_all(|| {
            if let Some(rows) = &self.sessions {
                rows.invalidate_all();
            }
        });
    }

    /// Forgets everything (and outdates every read in flight).
    pub fn clear(&self) {
        self.invalidate_all(|| {
            if let Some(rows) = &self.users {
                rows.invalidate_all();
            }
            if let Some(rows) = &self.sessions {
                rows.invalidate_all();
            }
            if let Some(rows) = &self.memberships {
                rows.invalidate_all();
            }
            if let Some(rows) = &self.org_roles {
                rows.invalidate_all();
            }
            if let Some(rows) = &self.access_tokens {
                rows.invalidate_all();
            }
            if let Some(rows) = &self.oauth_clients {
                rows.invalidate_all();
            }
            if let Some(rows) = &self.api_keys {
                rows.invalidate_all();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn user(id: &str) -> Arc<User> {
        Arc::new(User::sample(id))
    }

    fn cache() -> RowCache {
        RowCache::new(RowCacheSettings {
            enabled: true,
            ttl: Duration::from_secs(60),
            bytes: 1024 * 1024,
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

    /// The interleaving that lost invalidations before the check and the insert shared a lock:
    /// the read's ticket is current, the row changes (the notice arrives) after the check but
    /// before the insert. The stale row must not survive.
    #[test]
    fn an_invalidation_between_check_and_insert_is_not_lost() {
        let c = Arc::new(cache());
        c.set_trusted(true);
        let t = c.ticket("a");
        let other = Arc::clone(&c);
        let invalidator: Arc<Mutex<Option<std::thread::JoinHandle<()>>>> = Arc::default();
        let slot = Arc::clone(&invalidator);
        *c.before_insert.0.lock().unwrap() = Some(Box::new(move || {
            let other = Arc::clone(&other);
            let handle = std::thread::spawn(move || other.invalidate_user("a"));
            // Give the invalidation every chance to run now, between check and insert.
            let deadline = std::time::Instant::now() + Duration::from_millis(200);
            while !handle.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            *slot.lock().unwrap() = Some(handle);
        }));
        c.put_user(user("a"), t);
        invalidator.lock().unwrap().take().unwrap().join().unwrap();
        assert!(
            c.user("a").is_none(),
            "the row read before the change must not be served after it"
        );
    }

    #[test]
    fn truncating_a_table_forgets_it() {
        let c = cache();
        c.set_trusted(true);
        let t = c.ticket("a");
        c.put_user(user("a"), t);
        let t = c.ticket("s");
        c.put_session(
            Arc::new(SessionRef {
                id: "s".into(),
                user_id: "a".into(),
                expires_at: OffsetDateTime::now_utc(),
                active_organization_id: None,
                impersonated_by: None,
            }),
            t,
        );
        c.clear_sessions();
        assert!(c.session("s").is_none());
        assert!(
            c.user("a").is_some(),
            "users stay when only sessions were truncated"
        );
        c.clear_users();
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

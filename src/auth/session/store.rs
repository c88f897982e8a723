//! Where sessions are found and ended: the `session` table, or Better-Auth's secondary storage
//! (Redis), in each of Better-Auth 1.7's four modes, asked as Better-Auth asks them:
//!
//! | mode (`SESSION_STORE`, ...)            | a token is looked up in            | listed from | ended in |
//! |----------------------------------------|------------------------------------|-------------|----------|
//! | `database` (no secondary storage)      | the table                          | the table   | the table (deleted) |
//! | `redis`                                | Redis                              | Redis       | Redis |
//! | `redis` + `STORE_SESSION_IN_DATABASE`  | Redis; the table when Redis has no key | the table | both (row deleted) |
//! | ... + `PRESERVE_SESSION_IN_DATABASE`   | Redis only                         | Redis       | both (row kept, its end moved to now) |
//!
//! With both stores, Redis decides: it is what Better-Auth's `findSession` reads first, and
//! only Redis holds the revoked-before mark a bulk revocation writes. A session Redis holds
//! but marks revoked is refused without asking the table, as Better-Auth does; the table
//! answers only for a key Redis does not have, and only where Better-Auth would ask it
//! (`storeSessionInDatabase` without `preserveSessionInDatabase`).
//!
//! A JWT names its session by id (`sid`), while Redis keys sessions by token: the token is found
//! through the user's `active-sessions-` list (or the table, when rows are kept) once, and
//! remembered (a session's token never changes).

// Ending sessions (warden's own revocations), listing them and `warden check`'s probe serve the
// server's routes; the library alone (`default-features = false`) only finds sessions.
#![cfg_attr(not(feature = "server"), allow(dead_code))]

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::db::sessions::{self, Ended, Session, SessionRef};
use crate::error::ApiError;
use crate::redis::api_keys::RedisApiKeys;
use crate::redis::sessions::{ActiveRef, Lookup, RedisSessions, StoredSession};
use crate::redis::{BadUrl, Unavailable};
use crate::secret::Secret;

/// Where Better-Auth keeps its sessions: tell warden what the Better-Auth server was told.
#[derive(Debug, Clone, Default)]
pub enum SessionStorage {
    /// The `session` table (Better-Auth without `secondaryStorage`; `SESSION_STORE=database`).
    #[default]
    Database,
    /// Better-Auth's `secondaryStorage` in Redis (`SESSION_STORE=redis`).
    Redis(RedisStorage),
}

/// Sessions in Redis: where, under which prefix, and Better-Auth's two session options.
#[derive(Debug, Clone)]
pub struct RedisStorage {
    /// `REDIS_URL`: `redis://`, `rediss://` (TLS) or `redis+unix://`; Redis 6 or later, or Valkey.
    pub url: Secret,
    /// `REDIS_KEY_PREFIX`: the storage's key prefix (`@better-auth/redis-storage`'s
    /// `keyPrefix`, `better-auth:` by default).
    pub key_prefix: String,
    /// `STORE_SESSION_IN_DATABASE`: Better-Auth's `session.storeSessionInDatabase`.
    pub store_in_database: bool,
    /// `PRESERVE_SESSION_IN_DATABASE`: Better-Auth's `session.preserveSessionInDatabase`.
    pub preserve_in_database: bool,
    /// `REDIS_CACHE_ENTRIES`: values kept in memory under client tracking (0: none, every
    /// lookup asks Redis).
    pub cache_entries: usize,
    /// An upper bound on a cached value's age, behind the invalidations (`USER_CACHE_TTL_SECS`).
    pub cache_ttl: Duration,
}

impl RedisStorage {
    /// Redis at `url` with Better-Auth's defaults: prefix `better-auth:`, sessions in Redis
    /// only, 100,000 cached values for at most a minute.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url.into()),
            key_prefix: "better-auth:".into(),
            store_in_database: false,
            preserve_in_database: false,
            cache_entries: 100_000,
            cache_ttl: Duration::from_secs(60),
        }
    }
}

/// The sessions as the configured mode keeps them.
#[derive(Debug)]
pub(crate) enum SessionStore {
    Database,
    Redis {
        redis: RedisSessions,
        /// API keys in the same storage, when the api-key plugin keeps them there.
        api_keys: RedisApiKeys,
        /// `storeSessionInDatabase`: rows exist too.
        rows: bool,
        /// `preserveSessionInDatabase`: rows outlive their sessions.
        preserve: bool,
    },
}

impl From<Unavailable> for ApiError {
    fn from(err: Unavailable) -> Self {
        ApiError::SessionStoreUnavailable(err.0)
    }
}

impl SessionStore {
    /// The store `storage` names; a Redis store starts disconnected (see [`SessionStore::spawn`]).
    pub(crate) fn new(storage: &SessionStorage) -> Result<Self, BadUrl> {
        Ok(match storage {
            SessionStorage::Database => Self::Database,
            SessionStorage::Redis(r) => {
                let redis = RedisSessions::new(r.url.expose(), &r.key_prefix, r.cache_entries, r.cache_ttl)?;
                Self::Redis {
                    api_keys: redis.api_keys(),
                    redis,
                    rows: r.store_in_database,
                    preserve: r.store_in_database && r.preserve_in_database,
                }
            }
        })
    }

    /// Starts Redis's connection keeper, if there is Redis.
    pub(crate) fn spawn(&self) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            Self::Database => None,
            Self::Redis { redis, .. } => Some(redis.spawn()),
        }
    }

    /// Redis, when sessions are there.
    pub(crate) fn redis(&self) -> Option<&RedisSessions> {
        match self {
            Self::Database => None,
            Self::Redis { redis, .. } => Some(redis),
        }
    }

    /// API keys in Redis, when there is Redis.
    pub(crate) fn api_keys(&self) -> Option<&RedisApiKeys> {
        match self {
            Self::Database => None,
            Self::Redis { api_keys, .. } => Some(api_keys),
        }
    }

    /// Redis's store and the two row options (`storeSessionInDatabase`, `preserve...`), when
    /// sessions are in Redis.
    fn redis_mode(&self) -> Option<(&RedisSessions, bool, bool)> {
        match self {
            Self::Database => None,
            Self::Redis {
                redis,
                rows,
                preserve,
                ..
            } => Some((redis, *rows, *preserve)),
        }
    }

    /// Whether sessions are read from the table by id (and so cached and batched with rows).
    pub(crate) fn in_table(&self) -> bool {
        matches!(self, Self::Database)
    }

    /// Whether Better-Auth falls back to the table for a token Redis lacks
    /// (`databaseSessionFallbackEnabled`).
    fn table_fallback(&self) -> bool {
        matches!(
            self,
            Self::Redis {
                rows: true,
                preserve: false,
                ..
            }
        )
    }

    /// The session with this (raw) token, expired or not.
    pub(crate) async fn by_token(&self, db: &PgPool, token: &str) -> Result<Option<SessionRef>, ApiError> {
        self.by_token_in(&mut Db::Pool(db), token).await
    }

    async fn by_token_in(&self, db: &mut Db<'_>, token: &str) -> Result<Option<SessionRef>, ApiError> {
        let Self::Redis { redis, .. } = self else {
            return Ok(db.find_ref_by_token(token).await?);
        };
        match redis.by_token(token).await? {
            Lookup::Found(session) => Ok(Some(as_ref(&session))),
            Lookup::Refused => Ok(None),
            Lookup::Absent if self.table_fallback() => Ok(db.find_ref_by_token(token).await?),
            Lookup::Absent => Ok(None),
        }
    }

    /// The session with this id, expired or not. `owner`: whose it should be (a JWT's `sub`),
    /// which finds it in Redis; without one (an admin's question) Redis is searched.
    pub(crate) async fn by_id(
        &self,
        db: &PgPool,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<SessionRef>, ApiError> {
        self.by_id_in(&mut Db::Pool(db), owner, id).await
    }

    async fn by_id_in(
        &self,
        db: &mut Db<'_>,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<SessionRef>, ApiError> {
        if let Self::Database = self {
            return Ok(db.find_ref_by_id(id).await?);
        }
        let Some(token) = self.token_of(db, owner, id).await? else {
            return Ok(None);
        };
        Ok(self.by_token_in(db, &token).await?.filter(|s| s.id == id))
    }

    /// The token of session `id` (of `owner`, when given): through Redis's list of the owner's
    /// sessions, or the row where rows are kept; without an owner and without rows, by walking
    /// Redis's lists.
    async fn token_of(
        &self,
        db: &mut Db<'_>,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<String>, ApiError> {
        let Self::Redis { redis, rows, .. } = self else {
            return Ok(db.token_by_id(id).await?.map(|(_, token)| token));
        };
        if let Some(owner) = owner
            && let Some(token) = redis.token_of(owner, id).await?
        {
            return Ok(Some(token));
        }
        if *rows {
            return Ok(db
                .token_by_id(id)
                .await?
                .filter(|(user, _)| owner.is_none_or(|o| o == user))
                .map(|(_, token)| token));
        }
        match owner {
            Some(_) => Ok(None),
            None => Ok(redis.owner_of(id).await?.map(|(_, token)| token)),
        }
    }

    /// The user's sessions that have not expired, newest first (Better-Auth's `listSessions`).
    pub(crate) async fn list_live(&self, db: &PgPool, user_id: &str) -> Result<Vec<Session>, ApiError> {
        Ok(self
            .list_live_in(&mut Db::Pool(db), user_id)
            .await?
            .into_iter()
            .map(|(session, _)| session)
            .collect())
    }

    /// [`SessionStore::list_live`], each session with its token when Redis listed it.
    async fn list_live_in(
        &self,
        db: &mut Db<'_>,
        user_id: &str,
    ) -> Result<Vec<(Session, Option<String>)>, ApiError> {
        match self {
            Self::Redis { redis, .. } if !self.table_fallback() => {
                let now = OffsetDateTime::now_utc();
                let mut list: Vec<(Session, Option<String>)> = redis
                    .list(user_id)
                    .await?
                    .iter()
                    .filter(|(_, s)| s.expires_at > now)
                    .map(|(token, s)| (as_listed(s), Some(token.clone())))
                    .collect();
                list.sort_by(|(a, _), (b, _)| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
                Ok(list)
            }
            _ => Ok(db
                .list_live_for_user(user_id)
                .await?
                .into_iter()
                .map(|s| (s, None))
                .collect()),
        }
    }

    // ---------------------------------------------------------------- ending sessions
    //
    // Each does what Better-Auth's own route does, reading and writing the table through `conn`
    // (the caller's transaction): the table's part, then Redis's, so a Redis error leaves the
    // table as it was (the caller does not commit). A commit that fails after Redis's part
    // leaves the session ended in Redis only.

    /// Ends one of `user_id`'s sessions (Better-Auth's `revokeSession`); `false` when the user has
    /// no such live session.
    pub(crate) async fn end_one(
        &self,
        conn: &mut PgConnection,
        user_id: &str,
        id: &str,
    ) -> Result<bool, ApiError> {
        let Some((redis, rows, preserve)) = self.redis_mode() else {
            return Ok(sessions::end_for_user(conn, user_id, id, false).await?.is_some());
        };
        let live = self
            .by_id_in(&mut Db::Conn(&mut *conn), Some(user_id), id)
            .await?;
        let token = match &live {
            Some(_) => {
                self.token_of(&mut Db::Conn(&mut *conn), Some(user_id), id)
                    .await?
            }
            None => None,
        };
        let row = if rows {
            sessions::end_for_user(conn, user_id, id, preserve).await?
        } else {
            None
        };
        if let Some(token) = token.as_deref().or(row.as_ref().map(|r| r.token.as_str())) {
            redis.delete(token).await?;
        }
        Ok(live.is_some() || row.is_some())
    }

    /// Ends all `user_id`'s sessions but `keep` (Better-Auth's `revokeOtherSessions`: each
    /// listed session deleted, no revoked-before mark); returns the ids ended.
    pub(crate) async fn end_others(
        &self,
        conn: &mut PgConnection,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<Vec<String>, ApiError> {
        let Some((redis, rows, preserve)) = self.redis_mode() else {
            return Ok(ids(sessions::end_all_for_user(conn, user_id, keep, false).await?));
        };
        let mut ended: Vec<(String, Option<String>)> = self
            .list_live_in(&mut Db::Conn(&mut *conn), user_id)
            .await?
            .into_iter()
            .filter(|(s, _)| Some(s.id.as_str()) != keep)
            .map(|(s, token)| (s.id, token))
            .collect();
        if rows {
            for row in sessions::end_all_for_user(conn, user_id, keep, preserve).await? {
                match ended.iter_mut().find(|(id, _)| *id == row.id) {
                    Some((_, token)) => *token = Some(row.token),
                    None => ended.push((row.id, Some(row.token))),
                }
            }
        }
        for token in ended.iter().filter_map(|(_, t)| t.as_deref()) {
            redis.delete(token).await?;
        }
        Ok(ended.into_iter().map(|(id, _)| id).collect())
    }

    /// Ends all `user_id`'s sessions at once (Better-Auth's `deleteUserSessions`: a ban, "revoke
    /// all", a removal): in Redis, the revoked-before mark moved to now; returns the ids ended.
    pub(crate) async fn end_all(
        &self,
        conn: &mut PgConnection,
        user_id: &str,
    ) -> Result<Vec<String>, ApiError> {
        let Some((redis, rows, preserve)) = self.redis_mode() else {
            return Ok(ids(sessions::end_all_for_user(conn, user_id, None, false).await?));
        };
        let refs = redis.refs(user_id).await?;
        let mut ended: Vec<String> = self
            .list_live_in(&mut Db::Conn(&mut *conn), user_id)
            .await?
            .into_iter()
            .map(|(s, _)| s.id)
            .collect();
        let mut tokens: Vec<ActiveRef> = refs.iter().cloned().collect();
        if rows {
            for row in sessions::end_all_for_user(conn, user_id, None, preserve).await? {
                if !ended.contains(&row.id) {
                    ended.push(row.id);
                }
                tokens.push(ActiveRef::new(row.token));
            }
        }
        redis.revoke_user(user_id, &tokens).await?;
        Ok(ended)
    }

    /// Ends session `id`, whoever's it is (an admin's revocation, Better-Auth's
    /// `revokeUserSession`); returns its owner when there was such a live session.
    pub(crate) async fn end_by_id(
        &self,
        conn: &mut PgConnection,
        id: &str,
    ) -> Result<Option<String>, ApiError> {
        let Some((redis, rows, preserve)) = self.redis_mode() else {
            return Ok(sessions::end_by_id(conn, id, false).await?.map(|e| e.user_id));
        };
        let found = if rows {
            sessions::token_by_id(&mut *conn, id).await?
        } else {
            redis.owner_of(id).await?
        };
        let live = match &found {
            Some((owner, _)) => self
                .by_id_in(&mut Db::Conn(&mut *conn), Some(owner), id)
                .await?
                .map(|s| s.user_id),
            None => None,
        };
        let row = if rows {
            sessions::end_by_id(conn, id, preserve).await?
        } else {
            None
        };
        if let Some((_, token)) = &found {
            redis.delete(token).await?;
        }
        Ok(live.or(row.map(|r| r.user_id)))
    }
}

/// Where the table is read: the pool (a request's lookups), or the caller's connection (its
/// transaction, so that ending a session takes one connection, never a second while holding one).
enum Db<'a> {
    Pool(&'a PgPool),
    Conn(&'a mut PgConnection),
}

impl Db<'_> {
    async fn find_ref_by_token(&mut self, token: &str) -> Result<Option<SessionRef>, sqlx::Error> {
        match self {
            Db::Pool(pool) => sessions::find_ref_by_token(*pool, token).await,
            Db::Conn(conn) => sessions::find_ref_by_token(&mut **conn, token).await,
        }
    }

    async fn find_ref_by_id(&mut self, id: &str) -> Result<Option<SessionRef>, sqlx::Error> {
        match self {
            Db::Pool(pool) => sessions::find_ref_by_id(*pool, id).await,
            Db::Conn(conn) => sessions::find_ref_by_id(&mut **conn, id).await,
        }
    }

    async fn token_by_id(&mut self, id: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        match self {
            Db::Pool(pool) => sessions::token_by_id(*pool, id).await,
            Db::Conn(conn) => sessions::token_by_id(&mut **conn, id).await,
        }
    }

    async fn list_live_for_user(&mut self, user_id: &str) -> Result<Vec<Session>, sqlx::Error> {
        match self {
            Db::Pool(pool) => sessions::list_live_for_user(*pool, user_id).await,
            Db::Conn(conn) => sessions::list_live_for_user(&mut **conn, user_id).await,
        }
    }
}

fn ids(ended: Vec<Ended>) -> Vec<String> {
    ended.into_iter().map(|e| e.id).collect()
}

fn as_ref(s: &StoredSession) -> SessionRef {
    SessionRef {
        id: s.id.clone(),
        user_id: s.user_id.clone(),
        expires_at: s.expires_at,
        active_organization_id: s.active_organization_id.clone(),
        impersonated_by: s.impersonated_by.clone(),
    }
}

fn as_listed(s: &StoredSession) -> Session {
    let created = s.created_at.or(s.updated_at).unwrap_or(s.expires_at);
    Session {
        id: s.id.clone(),
        user_id: s.user_id.clone(),
        created_at: created,
        updated_at: s.updated_at.unwrap_or(created),
        expires_at: s.expires_at,
        ip_address: s.ip_address.clone(),
        user_agent: s.user_agent.clone(),
        impersonated_by: s.impersonated_by.clone(),
    }
}

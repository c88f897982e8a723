//! Better-Auth's sessions in its secondary storage, read and written as Better-Auth 1.7 does
//! (`better-auth/dist/db/internal-adapter.mjs`; `@better-auth/redis-storage` puts every key
//! under its prefix, `better-auth:` by default):
//!
//! - `<token>`: `{"session": {...}, "user": {...}}` as JSON, with a TTL to the session's
//!   `expiresAt`. A session is found by its token alone.
//! - `active-sessions-<userId>`: the user's sessions as a JSON list of
//!   `{"token", "expiresAt" (ms)}`, its TTL to the last one's end.
//! - `revoked-sessions-before-<userId>`: a time in ms, written when all the user's sessions are
//!   revoked at once (a ban, "revoke all"); a session created before it is revoked
//!   (`isRevokedSession`), whatever else Redis still holds.
//!
//! The user object in a session's value is Better-Auth's copy; warden reads users from
//! PostgreSQL, where every change lands first (and tells warden at once).

// Ending sessions (warden's own revocations), listing them and `warden check`'s probe serve the
// server's routes; the library alone (`default-features = false`) only finds sessions.
#![cfg_attr(not(feature = "server"), allow(dead_code))]

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde::Deserialize;
use serde_json::Value as Json;
use time::OffsetDateTime;

use super::Cached;
use super::conn::{BadUrl, Link, Unavailable};
use super::js::{js_date, js_date_opt, now_ms, unix_ms};
use super::tracked::Tracked;

/// A session as Better-Auth stores it in secondary storage (the fields warden uses).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredSession {
    pub(crate) id: String,
    pub(crate) user_id: String,
    #[serde(deserialize_with = "js_date")]
    pub(crate) expires_at: OffsetDateTime,
    #[serde(default, deserialize_with = "js_date_opt")]
    pub(crate) created_at: Option<OffsetDateTime>,
    #[serde(default, deserialize_with = "js_date_opt")]
    pub(crate) updated_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub(crate) ip_address: Option<String>,
    #[serde(default)]
    pub(crate) user_agent: Option<String>,
    #[serde(default)]
    pub(crate) active_organization_id: Option<String>,
    #[serde(default)]
    pub(crate) impersonated_by: Option<String>,
}

#[derive(Deserialize)]
struct StoredValue {
    session: StoredSession,
}

/// One entry of `active-sessions-<userId>`, kept as read so that writing the list back
/// changes nothing but what Better-Auth would change.
#[derive(Debug, Clone)]
pub(crate) struct ActiveRef {
    pub(crate) token: String,
    /// ms since the epoch.
    pub(crate) expires_at: f64,
    raw: Json,
}

impl ActiveRef {
    /// An entry for `token` alone (a session known from its row), to delete by.
    pub(crate) fn new(token: String) -> Self {
        Self {
            raw: serde_json::json!({ "token": token }),
            token,
            expires_at: 0.0,
        }
    }
}

/// A session token looked up as Better-Auth's `findSession` does in secondary storage.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    Found(Arc<StoredSession>),
    /// The key is there but its session is revoked (created before the user's revoked-before
    /// mark) or unreadable: no session, and no fallback to the database.
    Refused,
    /// No such key (Better-Auth may then look in the database, see `SessionStore`).
    Absent,
}

/// Sessions in Redis, with the cache that client tracking keeps true.
#[derive(Debug)]
pub(crate) struct RedisSessions {
    link: Arc<Link<Cached>>,
    prefix: String,
    /// Session id → (user id, token): a session's token never changes, so what was once seen
    /// stays true (the session may end; its token then finds nothing).
    ids: quick_cache::sync::Cache<String, (String, String)>,
}

/// How long a revoked-before mark lives when warden writes one: Better-Auth's is the longest of
/// its session lifetime (7 days by default) and a day; warden takes 7 days, or longer when one
/// of the user's sessions lasts longer.
const MARKER_TTL_SECS: i64 = 7 * 24 * 3600;

impl RedisSessions {
    /// Sessions at `url` under `prefix`; `cache` keeps up to that many values (0: none, every
    /// read goes to Redis). Starts nothing: see [`RedisSessions::spawn`].
    pub(crate) fn new(url: &str, prefix: &str, cache: usize, max_age: Duration) -> Result<Self, BadUrl> {
        let tracked = Tracked::new(cache, max_age);
        Ok(Self {
            link: Arc::new(Link::new(url, tracked, cache > 0)?),
            prefix: prefix.to_owned(),
            ids: quick_cache::sync::Cache::new(100_000),
        })
    }

    /// Starts the connection's keeper.
    pub(crate) fn spawn(&self) -> tokio::task::JoinHandle<()> {
        Link::spawn(&self.link)
    }

    /// Whether Redis is connected (readiness).
    pub(crate) fn connected(&self) -> bool {
        self.link.connected()
    }

    /// Whether reads are cached (client tracking on).
    pub(crate) fn tracking(&self) -> bool {
        self.link.tracking()
    }

    /// API keys in the same storage (the api-key plugin's `storage: "secondary-storage"`),
    /// over the same connection and cache.
    pub(crate) fn api_keys(&self) -> super::api_keys::RedisApiKeys {
        super::api_keys::RedisApiKeys::new(Arc::clone(&self.link), &self.prefix)
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn refs_key(&self, user_id: &str) -> String {
        self.key(&format!("active-sessions-{user_id}"))
    }

    fn marker_key(&self, user_id: &str) -> String {
        self.key(&format!("revoked-sessions-before-{user_id}"))
    }

    /// `key`'s value, from the cache or Redis, parsed by `parse`. A session key found absent
    /// is not kept: tokens come from clients, and made-up ones must not push real sessions out
    /// of the cache (the refusal memory of `auth::session::refused` answers repeats); a user's
    /// absent mark or list is kept (most users have no mark, and every request asks for it).
    async fn read(
        &self,
        key: &str,
        parse: fn(Option<String>) -> Cached,
        keep_absent: bool,
    ) -> Result<Cached, Unavailable> {
        let cache = &self.link.cache;
        if let Some(hit) = cache.get(key) {
            return Ok(hit);
        }
        let ticket = cache.ticket(key);
        let mut conn = self.link.conn()?;
        let raw: Option<String> = redis::cmd("GET").arg(key).query_async(&mut conn).await?;
        let value = parse(raw);
        if keep_absent || !matches!(value, Cached::Absent) {
            cache.put(key, value.clone(), ticket);
        }
        Ok(value)
    }

    /// The session stored under `token`, as Better-Auth's `findSession` sees it.
    pub(crate) async fn by_token(&self, token: &str) -> Result<Lookup, Unavailable> {
        let session = match self.read(&self.key(token), parse_session, false).await? {
            Cached::Session(session) => session,
            Cached::Absent => return Ok(Lookup::Absent),
            _ => return Ok(Lookup::Refused),
        };
        self.remember(&session, token);
        if self.revoked(&session).await? {
            return Ok(Lookup::Refused);
        }
        Ok(Lookup::Found(session))
    }

    fn remember(&self, session: &StoredSession, token: &str) {
        if self.ids.get(&session.id).is_none() {
            self.ids
                .insert(session.id.clone(), (session.user_id.clone(), token.to_owned()));
        }
    }

    /// Better-Auth's `isRevokedSession`: created before the user's revoked-before mark.
    async fn revoked(&self, session: &StoredSession) -> Result<bool, Unavailable> {
        let Cached::Marker(before) = self
            .read(&self.marker_key(&session.user_id), parse_marker, true)
            .await?
        else {
            return Ok(false);
        };
        // `new Date(createdAt).getTime() < revokedBefore`; a missing date is NaN: never revoked.
        Ok(session.created_at.is_some_and(|at| (unix_ms(at) as f64) < before))
    }

    /// The user's `active-sessions-` list (empty when there is none or it is unreadable).
    pub(crate) async fn refs(&self, user_id: &str) -> Result<Arc<Vec<ActiveRef>>, Unavailable> {
        match self.read(&self.refs_key(user_id), parse_refs, true).await? {
            Cached::Refs(refs) => Ok(refs),
            _ => Ok(Arc::new(Vec::new())),
        }
    }

    /// The token of `user_id`'s session `id`, when Redis still lists it (or it was seen before).
    pub(crate) async fn token_of(&self, user_id: &str, id: &str) -> Result<Option<String>, Unavailable> {
        if let Some((owner, token)) = self.ids.get(id) {
            return Ok((owner == user_id).then_some(token));
        }
        let now = now_ms();
        for r in self.refs(user_id).await?.iter() {
            if r.expires_at <= now {
                continue;
            }
            if let Cached::Session(session) = self.read(&self.key(&r.token), parse_session, false).await? {
                self.remember(&session, &r.token);
                if session.id == id && session.user_id == user_id {
                    return Ok(Some(r.token.clone()));
                }
            }
        }
        Ok(None)
    }

    /// The owner and token of session `id`, whoever's it is: remembered, or found by walking
    /// every user's list (`SCAN`; an admin's rare question, O(sessions)).
    pub(crate) async fn owner_of(&self, id: &str) -> Result<Option<(String, String)>, Unavailable> {
        if let Some(found) = self.ids.get(id) {
            return Ok(Some(found));
        }
        let mut conn = self.link.conn()?;
        let pattern = format!("{}active-sessions-*", escape_glob(&self.prefix));
        let list_prefix = self.refs_key("");
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            for key in keys {
                let Some(user_id) = key.strip_prefix(&list_prefix) else {
                    continue;
                };
                if let Some(token) = self.token_of(user_id, id).await? {
                    return Ok(Some((user_id.to_owned(), token)));
                }
            }
            if next == 0 {
                return Ok(None);
            }
            cursor = next;
        }
    }

    /// Better-Auth's `listSessions` from secondary storage: the listed sessions that have not
    /// expired, are there and are not revoked, each once, in the list's order, with their tokens.
    pub(crate) async fn list(&self, user_id: &str) -> Result<Vec<(String, Arc<StoredSession>)>, Unavailable> {
        let now = now_ms();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for r in self.refs(user_id).await?.iter() {
            if r.expires_at <= now || !seen.insert(r.token.clone()) {
                continue;
            }
            if let Lookup::Found(session) = self.by_token(&r.token).await? {
                out.push((r.token.clone(), session));
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- writes

    async fn del(&self, conn: &mut MultiplexedConnection, key: &str) -> Result<(), Unavailable> {
        redis::cmd("DEL").arg(key).query_async::<()>(conn).await?;
        self.link.cache.invalidate(key.as_bytes());
        Ok(())
    }

    async fn set(
        &self,
        conn: &mut MultiplexedConnection,
        key: &str,
        value: &str,
        ttl: i64,
    ) -> Result<(), Unavailable> {
        redis::cmd("SETEX")
            .arg(key)
            .arg(ttl)
            .arg(value)
            .query_async::<()>(conn)
            .await?;
        self.link.cache.invalidate(key.as_bytes());
        Ok(())
    }

    /// The user's list read fresh from Redis (not the cache), for a write.
    async fn fresh_refs(
        &self,
        conn: &mut MultiplexedConnection,
        user_id: &str,
    ) -> Result<Vec<ActiveRef>, Unavailable> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.refs_key(user_id))
            .query_async(conn)
            .await?;
        Ok(match parse_refs(raw) {
            Cached::Refs(refs) => refs.as_ref().clone(),
            _ => Vec::new(),
        })
    }

    /// Better-Auth's `setActiveSessionReferences`: sorted by end, the TTL to the last end, or
    /// deleted when none is left.
    async fn set_refs(
        &self,
        conn: &mut MultiplexedConnection,
        user_id: &str,
        mut refs: Vec<ActiveRef>,
        now: f64,
    ) -> Result<(), Unavailable> {
        refs.sort_by(|a, b| a.expires_at.total_cmp(&b.expires_at));
        let key = self.refs_key(user_id);
        let ttl = refs.last().map_or(0, |r| ttl_secs(r.expires_at, now));
        if ttl > 0 {
            let json = Json::Array(refs.into_iter().map(|r| r.raw).collect()).to_string();
            self.set(conn, &key, &json, ttl).await
        } else {
            self.del(conn, &key).await
        }
    }

    /// Better-Auth's `deleteSession` in secondary storage: the token off its user's list,
    /// then its key deleted.
    pub(crate) async fn delete(&self, token: &str) -> Result<(), Unavailable> {
        let mut conn = self.link.conn()?;
        let key = self.key(token);
        let raw: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
        if let Cached::Session(session) = parse_session(raw) {
            let now = now_ms();
            let list = self.fresh_refs(&mut conn, &session.user_id).await?;
            let kept = list
                .into_iter()
                .filter(|r| r.expires_at > now && r.token != token)
                .collect();
            self.set_refs(&mut conn, &session.user_id, kept, now).await?;
        }
        self.del(&mut conn, &key).await
    }

    /// Better-Auth's `deleteUserSessions` in secondary storage (`deleteCachedUserSessions`):
    /// the revoked-before mark moved to now, the sessions of `refs` (the list as read before)
    /// deleted, and the list rewritten without them.
    pub(crate) async fn revoke_user(&self, user_id: &str, refs: &[ActiveRef]) -> Result<(), Unavailable> {
        let mut conn = self.link.conn()?;
        let now = now_ms();
        let marker_key = self.marker_key(user_id);
        let raw: Option<String> = redis::cmd("GET").arg(&marker_key).query_async(&mut conn).await?;
        let previous = match parse_marker(raw) {
            Cached::Marker(m) if m.is_finite() => m,
            _ => 0.0,
        };
        // The mark must outlive every session it revokes: never shorter than the one there
        // (Better-Auth's own, of its session lifetime), nor than the sessions listed.
        let left_ms: i64 = redis::cmd("PTTL").arg(&marker_key).query_async(&mut conn).await?;
        let longest = refs
            .iter()
            .map(|r| ttl_secs(r.expires_at, now))
            .max()
            .unwrap_or(0);
        let mark = format_js_number(previous.max(now));
        if left_ms == -1 {
            // There without an expiry: kept so.
            redis::cmd("SET")
                .arg(&marker_key)
                .arg(&mark)
                .query_async::<()>(&mut conn)
                .await?;
            self.link.cache.invalidate(marker_key.as_bytes());
        } else {
            let ttl = longest.max(MARKER_TTL_SECS).max((left_ms + 999) / 1000);
            self.set(&mut conn, &marker_key, &mark, ttl).await?;
        }
        let deleted: std::collections::HashSet<&str> = refs.iter().map(|r| r.token.as_str()).collect();
        for token in &deleted {
            self.del(&mut conn, &self.key(token)).await?;
        }
        let current = self.fresh_refs(&mut conn, user_id).await?;
        let kept = current
            .into_iter()
            .filter(|r| r.expires_at > now && !deleted.contains(r.token.as_str()))
            .collect();
        self.set_refs(&mut conn, user_id, kept, now).await
    }
}

// ---------------------------------------------------------------- parsing

fn parse_session(raw: Option<String>) -> Cached {
    match raw {
        None => Cached::Absent,
        Some(raw) => match serde_json::from_str::<StoredValue>(&raw) {
            Ok(v) => Cached::Session(Arc::new(v.session)),
            Err(_) => Cached::Unreadable,
        },
    }
}

/// JavaScript's `Number(value)` of the stored mark: absent or empty is 0, `Infinity` is
/// infinite, a decimal number is itself, anything else NaN (Rust's own parser also takes
/// `inf` and `nan`, which JavaScript does not).
fn parse_marker(raw: Option<String>) -> Cached {
    let Some(raw) = raw else {
        return Cached::Marker(0.0);
    };
    let t = raw.trim();
    Cached::Marker(match t {
        "" => 0.0,
        "Infinity" | "+Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ if t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) =>
        {
            t.parse::<f64>().unwrap_or(f64::NAN)
        }
        _ => f64::NAN,
    })
}

fn parse_refs(raw: Option<String>) -> Cached {
    let Some(raw) = raw else { return Cached::Absent };
    let Ok(Json::Array(items)) = serde_json::from_str::<Json>(&raw) else {
        return Cached::Refs(Arc::new(Vec::new()));
    };
    let refs = items
        .into_iter()
        .filter_map(|raw| {
            let token = raw.get("token")?.as_str()?.to_owned();
            let expires_at = raw.get("expiresAt")?.as_f64()?;
            Some(ActiveRef {
                token,
                expires_at,
                raw,
            })
        })
        .collect();
    Cached::Refs(Arc::new(refs))
}

/// Better-Auth's `getTTLSeconds`: whole seconds left, never negative.
fn ttl_secs(expires_at_ms: f64, now_ms: f64) -> i64 {
    ((expires_at_ms - now_ms) / 1000.0).floor().max(0.0) as i64
}

/// `String(n)` of a whole number of ms.
fn format_js_number(n: f64) -> String {
    format!("{}", n.round() as i64)
}

/// `SCAN MATCH` treats `*?[]\` specially; a prefix is matched literally.
pub(crate) fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_value_as_better_auth_writes_it_is_read() {
        let raw = r#"{"session":{"id":"S1","ipAddress":"127.0.0.1","userAgent":"curl/7.88.1","expiresAt":"2026-12-14T11:58:40.706Z","userId":"U1","token":"T","createdAt":"2026-12-07T11:58:40.706Z","updatedAt":"2026-12-07T11:58:40.706Z","activeTeamId":null},"user":{"id":"U1"}}"#;
        let Cached::Session(s) = parse_session(Some(raw.into())) else {
            panic!("not read")
        };
        assert_eq!(s.id, "S1");
        assert_eq!(s.user_id, "U1");
        assert_eq!(unix_ms(s.expires_at), 1_797_249_520_706);
        assert_eq!(s.created_at.map(unix_ms), Some(1_796_644_720_706));
        assert_eq!(s.active_organization_id, None);
        assert!(matches!(parse_session(Some("{}".into())), Cached::Unreadable));
        assert!(matches!(parse_session(Some("nope".into())), Cached::Unreadable));
        assert!(matches!(parse_session(None), Cached::Absent));
    }

    #[test]
    fn the_mark_is_read_as_javascript_numbers_are() {
        let n = |raw: Option<&str>| match parse_marker(raw.map(str::to_owned)) {
            Cached::Marker(m) => m,
            _ => unreachable!(),
        };
        assert_eq!(n(None), 0.0);
        assert_eq!(n(Some("")), 0.0);
        assert_eq!(n(Some(" 1796644720706 ")), 1_796_644_720_706.0);
        assert!(n(Some("soon")).is_nan());
        assert!(n(Some("inf")).is_nan() && n(Some("nan")).is_nan());
        assert_eq!(n(Some("Infinity")), f64::INFINITY);
    }

    #[test]
    fn the_list_keeps_its_entries_as_read_and_skips_broken_ones() {
        let Cached::Refs(refs) = parse_refs(Some(
            r#"[{"token":"a","expiresAt":2},{"token":"b"},{"token":"c","expiresAt":3,"x":1}]"#.into(),
        )) else {
            panic!("not read")
        };
        assert_eq!(refs.len(), 2);
        assert_eq!(
            refs[1].raw,
            serde_json::json!({"token": "c", "expiresAt": 3, "x": 1})
        );
        assert!(matches!(parse_refs(Some("{}".into())), Cached::Refs(r) if r.is_empty()));
    }

    #[test]
    fn ttl_and_glob_escaping() {
        assert_eq!(ttl_secs(10_999.0, 1_000.0), 9);
        assert_eq!(ttl_secs(0.0, 1_000.0), 0);
        assert_eq!(escape_glob("app:*[x]"), "app:\\*\\[x\\]");
    }
}

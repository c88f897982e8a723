//! The api-key plugin's keys in Better-Auth's secondary storage (`storage:
//! "secondary-storage"`), laid out as `@better-auth/api-key` 1.7 writes them (every key under
//! the storage's prefix):
//!
//! - `api-key:<hashed key>` and `api-key:by-id:<id>`: the key, as JSON (the row, dates as ISO
//!   strings), the same value under both, each with a TTL to `expiresAt` in whole seconds (none
//!   when the key never expires, or expires within a second);
//! - `api-key:by-ref:<referenceId>`: its owner's key ids, a JSON list without a TTL (how the
//!   plugin lists keys when there is no table).
//!
//! The plugin counts a use by reading the key, computing the new counters and merging them
//! onto a second read (a read-modify-write that, as its own source says, can lose updates
//! under concurrency). warden computes the same changes (`crate::auth::api_key::secondary`)
//! on the value it read, and [`RedisApiKeys::replace`] writes them only while the key still
//! holds exactly that value (a compare-and-set, one Lua script); otherwise the script returns
//! the current value and the caller decides again on it. warden's own uses are each counted
//! once and never overdraw a quota. (The plugin's claim, and its `updateApiKey`, still write
//! values computed from an earlier read: one of them racing warden's on the same key can put
//! back a count from before warden's use, as it can with another of its own.)

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::Cached;
use super::conn::{Link, Unavailable};
use super::js::{date_of, iso};
use crate::db::api_keys::ApiKeyRow;

/// A key as the plugin stored it: the row warden decides on, its counters at full width, and
/// the exact value read (what a compare-and-set compares, and what a write merges onto).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredApiKey {
    /// The key as a row of the table. Its counters are clamped to the column's `int4` (which
    /// keeps whether each is set, zero or negative, all the checks before a claim ask); the
    /// claim counts with [`StoredApiKey::counters`].
    pub(crate) row: ApiKeyRow,
    pub(crate) counters: Counters,
    raw: String,
    fields: Map<String, Json>,
}

/// A key's counters as JavaScript numbers hold them: without a table behind it, the plugin
/// takes any number (a monthly refill, 2,592,000,000 ms, is beyond an `int4`). Whole numbers
/// only: a fractional one is not read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) remaining: Option<i64>,
    pub(crate) refill_interval: Option<i64>,
    pub(crate) refill_amount: Option<i64>,
    pub(crate) rate_limit_time_window: Option<i64>,
    pub(crate) rate_limit_max: Option<i64>,
    pub(crate) request_count: Option<i64>,
}

impl StoredApiKey {
    /// The value as the plugin's `deserializeApiKey` reads it; `None` when it cannot (the
    /// plugin then finds no key), or when a field warden decides on holds something no key of
    /// the plugin's would.
    pub(crate) fn parse(raw: String) -> Option<Self> {
        let Json::Object(fields) = serde_json::from_str::<Json>(&raw).ok()? else {
            return None;
        };
        let (row, counters) = row_of(&fields)?;
        Some(Self {
            row,
            counters,
            raw,
            fields,
        })
    }

    /// Its stored form (`key`: the hash, or the key itself without hashing).
    fn stored(&self) -> &str {
        self.fields.get("key").and_then(Json::as_str).unwrap_or_default()
    }

    /// The value with `changes` merged over it (`{...stored, ...changes}`), serialized.
    fn merged(&self, changes: &[(&str, Json)]) -> String {
        let mut fields = self.fields.clone();
        for (name, value) in changes {
            fields.insert((*name).to_owned(), value.clone());
        }
        Json::Object(fields).to_string()
    }
}

/// A date as the plugin's JSON holds one (`null` for none).
pub(crate) fn js_date(at: Option<time::OffsetDateTime>) -> Json {
    at.map_or(Json::Null, |at| Json::String(iso(at)))
}

fn row_of(f: &Map<String, Json>) -> Option<(ApiKeyRow, Counters)> {
    // Absent and null are both none; anything else must be of the field's type.
    fn opt<'a>(f: &'a Map<String, Json>, name: &str) -> Option<&'a Json> {
        f.get(name).filter(|v| !v.is_null())
    }
    let text = |name: &str| -> Result<Option<String>, ()> {
        match opt(f, name) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(()),
        }
    };
    let int = |name: &str| -> Result<Option<i64>, ()> {
        match opt(f, name) {
            None => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) => Ok(Some(n)),
                // 2.0 as some writers put it; 2.5 is no count.
                None => v
                    .as_f64()
                    .filter(|n| n.fract() == 0.0 && n.abs() < 9.0e15)
                    .map(|n| Some(n as i64))
                    .ok_or(()),
            },
        }
    };
    let clamp = |n: Option<i64>| n.map(|n| n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
    let flag = |name: &str| -> Result<Option<bool>, ()> {
        match opt(f, name) {
            None => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or(()),
        }
    };
    let date = |name: &str| -> Result<Option<time::OffsetDateTime>, ()> {
        match opt(f, name) {
            None => Ok(None),
            Some(v) => date_of(v).map(Some).ok_or(()),
        }
    };
    let read = || -> Result<(ApiKeyRow, Counters), ()> {
        let counters = Counters {
            remaining: int("remaining")?,
            refill_interval: int("refillInterval")?,
            refill_amount: int("refillAmount")?,
            rate_limit_time_window: int("rateLimitTimeWindow")?,
            rate_limit_max: int("rateLimitMax")?,
            request_count: int("requestCount")?,
        };
        let row = ApiKeyRow {
            id: text("id")?.ok_or(())?,
            config_id: text("configId")?.unwrap_or_else(|| "default".to_owned()),
            name: text("name")?,
            start: text("start")?,
            reference_id: text("referenceId")?.ok_or(())?,
            prefix: text("prefix")?,
            refill_interval: clamp(counters.refill_interval),
            refill_amount: clamp(counters.refill_amount),
            last_refill_at: date("lastRefillAt")?,
            enabled: flag("enabled")?,
            rate_limit_enabled: flag("rateLimitEnabled")?,
            rate_limit_time_window: clamp(counters.rate_limit_time_window),
            rate_limit_max: clamp(counters.rate_limit_max),
            request_count: clamp(counters.request_count),
            remaining: clamp(counters.remaining),
            last_request: date("lastRequest")?,
            expires_at: date("expiresAt")?,
            created_at: date("createdAt")?.ok_or(())?,
            updated_at: date("updatedAt")?.ok_or(())?,
            permissions: text("permissions")?,
            // An object as the plugin stores it; a string (an older plugin's) as it is.
            metadata: match opt(f, "metadata") {
                None => None,
                Some(Json::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            },
        };
        Ok((row, counters))
    };
    read().ok()
}

fn parse_key(raw: Option<String>) -> Cached {
    match raw {
        None => Cached::Absent,
        Some(raw) => StoredApiKey::parse(raw).map_or(Cached::Unreadable, |k| Cached::ApiKey(Arc::new(k))),
    }
}

/// Writes `ARGV[2]` under the key's two names (with TTL `ARGV[3]`, 0: none) if its hash name
/// still holds `ARGV[1]`, and adds its id (`ARGV[4]`) to its owner's list, as the plugin's
/// `setApiKey` does. Returns 1, or else the value there now (nil: gone). Everything that can
/// fail is read before the first write (a list that is not a JSON array counts as empty, as the
/// plugin reads one; one that is not a string is left alone).
const REPLACE: &str = r"
local now = redis.call('GET', KEYS[1])
if now ~= ARGV[1] then return now end
local raw = redis.pcall('GET', KEYS[3])
local ids, listed, writable = {}, false, type(raw) ~= 'table'
if writable and raw then
  local ok, parsed = pcall(cjson.decode, raw)
  if ok and type(parsed) == 'table' and (parsed[1] ~= nil or next(parsed) == nil) then ids = parsed end
end
for _, id in ipairs(ids) do
  if id == ARGV[4] then listed = true end
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[2], ARGV[2])
end
if writable and not listed then
  table.insert(ids, ARGV[4])
  redis.call('SET', KEYS[3], cjson.encode(ids))
end
return 1
";

/// Deletes the key under both names if its hash name still holds `ARGV[1]`, and takes its id
/// (`ARGV[2]`) off its owner's list (deleted when empty), as the plugin's
/// `deleteApiKeyFromStorage` does. Returns 1 if deleted, 0 if the value changed meanwhile.
const DELETE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local raw = redis.pcall('GET', KEYS[3])
redis.call('DEL', KEYS[1], KEYS[2])
if type(raw) == 'table' then return 1 end
local kept = {}
if raw then
  local ok, ids = pcall(cjson.decode, raw)
  if ok and type(ids) == 'table' then
    for _, id in ipairs(ids) do
      if id ~= ARGV[2] then table.insert(kept, id) end
    end
  end
end
if #kept == 0 then redis.call('DEL', KEYS[3]) else redis.call('SET', KEYS[3], cjson.encode(kept)) end
return 1
";

/// How a compare-and-set went.
#[derive(Debug)]
pub(crate) enum Replaced {
    /// Written.
    Done,
    /// The key holds another value now: decide again on it.
    Changed(Arc<StoredApiKey>),
    /// The key is gone (or holds what the plugin could not read).
    Gone,
}

/// Locks that order one process's claims of a key (by id, striped): concurrent uses of one
/// key then meet in line here rather than in retried compare-and-sets.
const LOCKS: usize = 64;

/// API keys in Redis, over the sessions' connection and cache.
#[derive(Debug)]
pub(crate) struct RedisApiKeys {
    link: Arc<Link<Cached>>,
    prefix: String,
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl RedisApiKeys {
    pub(crate) fn new(link: Arc<Link<Cached>>, prefix: &str) -> Self {
        Self {
            link,
            prefix: prefix.to_owned(),
            locks: (0..LOCKS).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    /// Held while this process claims a use of key `id`.
    pub(crate) async fn lock(&self, id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let stripe = BuildHasherDefault::<DefaultHasher>::default().hash_one(id) as usize % LOCKS;
        self.locks[stripe].lock().await
    }

    fn key(&self, stored: &str) -> String {
        format!("{}api-key:{stored}", self.prefix)
    }

    fn id_key(&self, id: &str) -> String {
        format!("{}api-key:by-id:{id}", self.prefix)
    }

    fn ref_key(&self, reference_id: &str) -> String {
        format!("{}api-key:by-ref:{reference_id}", self.prefix)
    }

    /// The key stored as `stored` if the cache holds it (no I/O).
    pub(crate) fn cached(&self, stored: &str) -> Option<Arc<StoredApiKey>> {
        match self.link.cache.get(&self.key(stored))? {
            Cached::ApiKey(key) => Some(key),
            _ => None,
        }
    }

    /// The key stored as `stored` (its hash, or itself without hashing), as the plugin's
    /// `getApiKey` finds it; kept in the cache while Redis says it is unchanged. An absent key
    /// is not kept (keys come from clients; made-up ones must not push real ones out).
    pub(crate) async fn find(&self, stored: &str) -> Result<Option<Arc<StoredApiKey>>, Unavailable> {
        let key = self.key(stored);
        let cache = &self.link.cache;
        if let Some(Cached::ApiKey(hit)) = cache.get(&key) {
            return Ok(Some(hit));
        }
        let ticket = cache.ticket(&key);
        let mut conn = self.link.conn()?;
        let raw: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
        let mut value = parse_key(raw);
        // Only a key stored under its own stored form: `by-id:<id>` sent as a key (without
        // hashing, the stored form is what the client sends) names a key's other copy.
        if matches!(&value, Cached::ApiKey(found) if found.stored() != stored) {
            value = Cached::Unreadable;
        }
        if let Cached::ApiKey(found) = &value {
            let found = Arc::clone(found);
            cache.put(&key, value, ticket);
            return Ok(Some(found));
        }
        Ok(None)
    }

    /// Writes `changes` over `current` if the key still holds it (see the module doc).
    pub(crate) async fn replace(
        &self,
        current: &StoredApiKey,
        changes: &[(&str, Json)],
        ttl_secs: Option<i64>,
    ) -> Result<Replaced, Unavailable> {
        let row = &current.row;
        let stored = current.stored();
        let (key, id_key) = (self.key(stored), self.id_key(&row.id));
        let mut conn = self.link.conn()?;
        let answer: redis::Value = redis::cmd("EVAL")
            .arg(REPLACE)
            .arg(3)
            .arg(&key)
            .arg(&id_key)
            .arg(self.ref_key(&row.reference_id))
            .arg(&current.raw)
            .arg(current.merged(changes))
            .arg(ttl_secs.unwrap_or(0))
            .arg(&row.id)
            .query_async(&mut conn)
            .await?;
        self.link.cache.invalidate(key.as_bytes());
        self.link.cache.invalidate(id_key.as_bytes());
        Ok(match answer {
            redis::Value::Int(1) => Replaced::Done,
            redis::Value::BulkString(bytes) => String::from_utf8(bytes)
                .ok()
                .and_then(StoredApiKey::parse)
                .filter(|k| k.stored() == stored)
                .map_or(Replaced::Gone, |k| Replaced::Changed(Arc::new(k))),
            _ => Replaced::Gone,
        })
    }

    /// The plugin's deletion of a key from secondary storage (expired, or used up), unless it
    /// changed since it was read (given a later expiry, or more uses).
    pub(crate) async fn delete(&self, current: &StoredApiKey) -> Result<(), Unavailable> {
        let row = &current.row;
        let stored = current.stored();
        let (key, id_key) = (self.key(stored), self.id_key(&row.id));
        let mut conn = self.link.conn()?;
        redis::cmd("EVAL")
            .arg(DELETE)
            .arg(3)
            .arg(&key)
            .arg(&id_key)
            .arg(self.ref_key(&row.reference_id))
            .arg(&current.raw)
            .arg(&row.id)
            .query_async::<i64>(&mut conn)
            .await?;
        self.link.cache.invalidate(key.as_bytes());
        self.link.cache.invalidate(id_key.as_bytes());
        Ok(())
    }

    /// With `fallbackToDatabase`, Redis holds copies of rows: drops the copies of a key warden
    /// changed in the table (and its owner's cached list when `reference_id` is given, as the
    /// plugin drops it when a key is deleted), so that the plugin reads the table again.
    pub(crate) async fn forget(
        &self,
        stored: &str,
        id: &str,
        reference_id: Option<&str>,
    ) -> Result<(), Unavailable> {
        let mut conn = self.link.conn()?;
        let mut del = redis::cmd("DEL");
        del.arg(self.key(stored)).arg(self.id_key(id));
        if let Some(reference_id) = reference_id {
            del.arg(self.ref_key(reference_id));
        }
        del.query_async::<()>(&mut conn).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key as `@better-auth/api-key` 1.7.29 wrote it with `storage: "secondary-storage"`.
    const WRITTEN: &str = r#"{"configId":"default","createdAt":"2026-12-07T15:02:11.412Z","updatedAt":"2026-12-07T15:02:11.412Z","name":null,"prefix":null,"start":"Xq3hT","key":"h4sh","enabled":true,"expiresAt":null,"referenceId":"U1","lastRefillAt":null,"lastRequest":null,"metadata":{"plan":"pro"},"rateLimitMax":10,"rateLimitTimeWindow":86400000,"remaining":null,"refillAmount":null,"refillInterval":null,"rateLimitEnabled":true,"requestCount":0,"permissions":"{\"files\":[\"read\"]}","id":"K1"}"#;

    #[test]
    fn a_key_as_the_plugin_writes_it_is_read() {
        let key = StoredApiKey::parse(WRITTEN.into()).unwrap();
        let row = &key.row;
        assert_eq!((row.id.as_str(), row.reference_id.as_str()), ("K1", "U1"));
        assert_eq!(row.config_id, "default");
        assert_eq!(row.enabled, Some(true));
        assert_eq!(
            (row.rate_limit_max, row.rate_limit_time_window),
            (Some(10), Some(86_400_000))
        );
        assert_eq!(row.remaining, None);
        assert_eq!(row.request_count, Some(0));
        assert_eq!(row.permissions.as_deref(), Some(r#"{"files":["read"]}"#));
        assert_eq!(row.metadata.as_deref(), Some(r#"{"plan":"pro"}"#));
        assert_eq!(iso(row.created_at), "2026-12-07T15:02:11.412Z");
        assert_eq!(row.expires_at, None);
        assert_eq!(key.stored(), "h4sh");
    }

    #[test]
    fn counters_beyond_an_int4_are_read_at_full_width() {
        let monthly = WRITTEN
            .replace(r#""refillInterval":null"#, r#""refillInterval":2592000000"#)
            .replace(r#""remaining":null"#, r#""remaining":3.0"#)
            .replace(r#""refillAmount":null"#, r#""refillAmount":100"#);
        let key = StoredApiKey::parse(monthly).unwrap();
        assert_eq!(key.counters.refill_interval, Some(2_592_000_000));
        assert_eq!(key.row.refill_interval, Some(i32::MAX), "clamped in the row");
        assert_eq!(key.counters.remaining, Some(3));
        let half = WRITTEN.replace(r#""remaining":null"#, r#""remaining":2.5"#);
        assert!(StoredApiKey::parse(half).is_none());
    }

    #[test]
    fn what_the_plugin_could_not_read_is_no_key() {
        assert!(StoredApiKey::parse("nope".into()).is_none());
        assert!(StoredApiKey::parse("[]".into()).is_none());
        let no_id = WRITTEN.replace(r#","id":"K1""#, "");
        assert!(StoredApiKey::parse(no_id).is_none());
        let bad_count = WRITTEN.replace(r#""remaining":null"#, r#""remaining":"many""#);
        assert!(StoredApiKey::parse(bad_count).is_none());
        assert!(matches!(parse_key(None), Cached::Absent));
        assert!(matches!(parse_key(Some("{}".into())), Cached::Unreadable));
    }

    #[test]
    fn a_write_merges_its_changes_and_keeps_every_other_field() {
        let key = StoredApiKey::parse(WRITTEN.into()).unwrap();
        let merged: Json = serde_json::from_str(&key.merged(&[
            ("requestCount", Json::from(1)),
            ("lastRequest", Json::String("2026-12-07T15:03:00.000Z".into())),
        ]))
        .unwrap();
        let before: Json = serde_json::from_str(WRITTEN).unwrap();
        assert_eq!(merged["requestCount"], 1);
        assert_eq!(merged["lastRequest"], "2026-12-07T15:03:00.000Z");
        for (name, value) in before.as_object().unwrap() {
            if !["requestCount", "lastRequest"].contains(&name.as_str()) {
                assert_eq!(&merged[name], value, "{name}");
            }
        }
        assert_eq!(js_date(None), Json::Null);
    }
}

//! Redis, where Better-Auth keeps sessions when the app gives it secondary storage
//! (`@better-auth/redis-storage`; warden's `SESSION_STORE=redis`).
//!
//! - `conn`: one RESP3 connection, kept up in the background, with client tracking on; while it
//!   is down every read fails at once (503 `session_store_unavailable`), never a guess.
//! - `tracked`: the values read, kept until Redis pushes that they changed (so freshness needs
//!   no keyspace notifications, no server configuration and no polling).
//! - `sessions`: Better-Auth's key layout and its rules (`findSession`, `listSessions`, the
//!   revoked-before mark, and the writes of `deleteSession` and `deleteUserSessions`).
//! - `api_keys`: the api-key plugin's keys in the same storage (`storage: "secondary-storage"`):
//!   read, and one use claimed with a compare-and-set, never a lost update.
//! - `js`: dates and times as Better-Auth's JavaScript writes them.
//!
//! Which of Redis and PostgreSQL is asked, in each of Better-Auth's storage modes, is decided
//! one level up (`crate::auth::session::store`).

// Ending sessions (warden's own revocations), listing them and `warden check`'s probe serve the
// server's routes; the library alone (`default-features = false`) only finds sessions.
#![cfg_attr(not(feature = "server"), allow(dead_code))]

pub(crate) mod api_keys;
pub(crate) mod conn;
mod js;
pub(crate) mod sessions;
pub(crate) mod tracked;

use std::sync::Arc;

pub use conn::{BadUrl, Unavailable};

/// What a key held, parsed; what the cache keeps.
#[derive(Debug, Clone)]
pub(crate) enum Cached {
    /// No such key.
    Absent,
    /// A value Better-Auth could not read (a session, or an API key).
    Unreadable,
    Session(Arc<sessions::StoredSession>),
    /// `revoked-sessions-before-<userId>` as JavaScript's `Number()` reads it (absent: 0).
    Marker(f64),
    Refs(Arc<Vec<sessions::ActiveRef>>),
    /// An API key's value (`api-key:<hash>`); absent keys are not kept.
    ApiKey(Arc<api_keys::StoredApiKey>),
}

/// What `warden check` learns of a Redis: its version, whether it tracks keys for clients
/// (Redis 6+, Valkey), and how many keys a first `SCAN` page found under the prefix.
#[derive(Debug)]
pub(crate) struct Probe {
    pub(crate) server: String,
    pub(crate) tracking: bool,
    pub(crate) keys_seen: usize,
}

/// Connects once to `url` and looks (changes nothing).
pub(crate) async fn probe(url: &str, prefix: &str) -> Result<Probe, String> {
    use ::redis::IntoConnectionInfo;
    let info = url.into_connection_info().map_err(|_| BadUrl.to_string())?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(::redis::ProtocolVersion::RESP3);
    let client = ::redis::Client::open(info.set_redis_settings(settings)).map_err(|e| e.to_string())?;
    let config = ::redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(3)))
        .set_response_timeout(Some(std::time::Duration::from_secs(3)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    let info: String = ::redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
            .map(|v| v.trim().to_owned())
    };
    let server = match (
        field("server_name"),
        field("valkey_version"),
        field("redis_version"),
    ) {
        (_, Some(v), _) => format!("Valkey {v}"),
        (Some(name), None, Some(v)) => format!("{name} {v}"),
        (None, None, Some(v)) => format!("Redis {v}"),
        _ => "an unknown server".to_owned(),
    };
    let tracking = ::redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .query_async::<()>(&mut conn)
        .await
        .is_ok();
    let pattern = format!("{}*", sessions::escape_glob(prefix));
    let (_, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg(&pattern)
        .arg("COUNT")
        .arg(1000)
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Probe {
        server,
        tracking,
        keys_seen: keys.len(),
    })
}

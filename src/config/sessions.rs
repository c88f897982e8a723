//! The session-store group: `SESSION_STORE`, `REDIS_URL`, `REDIS_KEY_PREFIX`,
//! `STORE_SESSION_IN_DATABASE`, `PRESERVE_SESSION_IN_DATABASE` and `REDIS_CACHE_ENTRIES`:
//! where Better-Auth keeps its sessions, told to warden in the same words Better-Auth's
//! options use (`secondaryStorage`, `session.storeSessionInDatabase`,
//! `session.preserveSessionInDatabase`).

use std::time::Duration;

use super::env::{Env, invalid};
use crate::auth::{RedisStorage, SessionStorage};
use crate::error::ConfigError;
use crate::secret::Secret;

/// `REDIS_URL`'s default: a Redis on this machine's standard port.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

#[derive(Clone, Copy)]
enum Kind {
    Database,
    Redis,
}

/// `cache_ttl`: `USER_CACHE_TTL_SECS`, the bound on any cached value's age.
pub(super) fn read(env: &Env<'_>, cache_ttl: Duration) -> Result<SessionStorage, ConfigError> {
    let kind = env.choice(
        "SESSION_STORE",
        Kind::Database,
        &[("database", Kind::Database), ("redis", Kind::Redis)],
    )?;
    let store_in_database = env.flag("STORE_SESSION_IN_DATABASE", false)?;
    let preserve_in_database = env.flag("PRESERVE_SESSION_IN_DATABASE", false)?;
    if let Kind::Database = kind {
        for var in ["STORE_SESSION_IN_DATABASE", "PRESERVE_SESSION_IN_DATABASE"] {
            if env.flag(var, false)? {
                return Err(invalid(
                    var,
                    "applies to sessions in secondary storage: set SESSION_STORE=redis",
                ));
            }
        }
        return Ok(SessionStorage::Database);
    }
    if preserve_in_database && !store_in_database {
        return Err(invalid(
            "PRESERVE_SESSION_IN_DATABASE",
            "needs STORE_SESSION_IN_DATABASE=true (it keeps the rows that one writes), as in Better-Auth",
        ));
    }
    let url = env
        .get("REDIS_URL")
        .unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
    if ![
        "redis://",
        "rediss://",
        "redis+unix://",
        "unix://",
        "valkey://",
        "valkeys://",
    ]
    .iter()
    .any(|scheme| url.starts_with(scheme))
    {
        return Err(invalid(
            "REDIS_URL",
            "expected redis://[user:password@]host[:port][/db], rediss:// (TLS) or redis+unix:///path",
        ));
    }
    Ok(SessionStorage::Redis(RedisStorage {
        url: Secret::new(url),
        key_prefix: env
            .get("REDIS_KEY_PREFIX")
            .unwrap_or_else(|| "better-auth:".into()),
        store_in_database,
        preserve_in_database,
        cache_entries: env.number("REDIS_CACHE_ENTRIES", 100_000usize, 0..=10_000_000)?,
        cache_ttl,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, config};
    use super::*;

    #[test]
    fn database_by_default_and_redis_when_asked() {
        let c = config(&[("DATABASE_URL", "postgres://localhost/db")]).unwrap();
        assert!(matches!(c.sessions, SessionStorage::Database));
        let c = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("SESSION_STORE", "redis"),
            ("STORE_SESSION_IN_DATABASE", "true"),
        ])
        .unwrap();
        let SessionStorage::Redis(r) = c.sessions else {
            panic!("not redis")
        };
        assert_eq!(r.url.expose(), DEFAULT_REDIS_URL);
        assert_eq!(r.key_prefix, "better-auth:");
        assert!(r.store_in_database && !r.preserve_in_database);
        assert_eq!(r.cache_entries, 100_000);
        assert_eq!(r.cache_ttl, Duration::from_secs(60));
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        assert_each_refused(&[
            ("SESSION_STORE", "memcached"),
            ("STORE_SESSION_IN_DATABASE", "true"),
            ("PRESERVE_SESSION_IN_DATABASE", "yes please"),
        ]);
        for (var, value) in [
            ("REDIS_URL", "http://127.0.0.1:6379"),
            ("PRESERVE_SESSION_IN_DATABASE", "true"),
            ("REDIS_CACHE_ENTRIES", "-1"),
        ] {
            let err = config(&[
                ("DATABASE_URL", "postgres://localhost/db"),
                ("SESSION_STORE", "redis"),
                (var, value),
            ])
            .unwrap_err()
            .to_string();
            assert!(err.starts_with(var), "{var}={value:?} gave {err:?}");
        }
    }
}

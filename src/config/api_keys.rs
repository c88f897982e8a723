//! The API-key group: `API_KEYS`, `API_KEY_HEADERS`, `API_KEY_HASHING`, `API_KEY_RATE_LIMIT`,
//! `API_KEY_CONFIG_ID`, `API_KEY_ORGANIZATION_CONFIGS`, `API_KEYS_AS_USERS` and
//! `API_KEY_STAMP_SECS`, `API_KEY_STORAGE` and `API_KEY_FALLBACK_TO_DATABASE`: the options of
//! Better-Auth's api-key plugin that decide how a key is read and judged, which warden must be
//! told because they live in the auth server's code.

use axum::http::HeaderName;

use super::env::{Env, invalid};
use crate::auth::ApiKeySettings;
use crate::auth::api_key::{ApiKeyStorage, DEFAULT_API_KEY_HEADER};
use crate::error::ConfigError;

impl ApiKeySettings {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let headers = env
            .list("API_KEY_HEADERS", DEFAULT_API_KEY_HEADER)
            .iter()
            .map(|name| {
                let name = name.to_ascii_lowercase();
                if matches!(name.as_str(), "authorization" | "cookie" | "host") {
                    return Err(invalid(
                        "API_KEY_HEADERS",
                        format!(
                            "{name:?} carries other credentials; name a header of its own, such as x-api-key"
                        ),
                    ));
                }
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| invalid("API_KEY_HEADERS", format!("{name:?} is not a header name")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if headers.is_empty() {
            return Err(invalid("API_KEY_HEADERS", "names no header"));
        }
        let secondary = env.choice(
            "API_KEY_STORAGE",
            false,
            &[("database", false), ("secondary-storage", true)],
        )?;
        let fallback = env.flag("API_KEY_FALLBACK_TO_DATABASE", false)?;
        let storage = match (secondary, fallback) {
            (false, false) => ApiKeyStorage::Database,
            (false, true) => {
                return Err(invalid(
                    "API_KEY_FALLBACK_TO_DATABASE",
                    "applies to keys in secondary storage: set API_KEY_STORAGE=secondary-storage",
                ));
            }
            (true, false) => ApiKeyStorage::SecondaryStorage,
            (true, true) => ApiKeyStorage::SecondaryStorageWithFallback,
        };
        Ok(Self {
            enabled: env.flag("API_KEYS", true)?,
            headers,
            hashing: env.flag("API_KEY_HASHING", true)?,
            rate_limits: env.flag("API_KEY_RATE_LIMIT", true)?,
            config_id: env.get("API_KEY_CONFIG_ID"),
            organization_configs: env.list("API_KEY_ORGANIZATION_CONFIGS", ""),
            as_users: env.flag("API_KEYS_AS_USERS", false)?,
            stamp_every: env.secs("API_KEY_STAMP_SECS", 1, 1..=3600)?,
            storage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, config};
    use crate::auth::ApiKeySettings;
    use crate::auth::api_key::ApiKeyStorage;

    #[test]
    fn the_plugins_defaults() {
        let c = config(&[("DATABASE_URL", "postgres://localhost/db")]).unwrap();
        assert_eq!(c.api_keys, ApiKeySettings::default());
        assert_eq!(c.api_keys.headers[0].as_str(), "x-api-key");
    }

    #[test]
    fn every_setting_is_read() {
        let c = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("API_KEY_HEADERS", "X-Key, x-other"),
            ("API_KEY_HASHING", "false"),
            ("API_KEY_RATE_LIMIT", "false"),
            ("API_KEY_CONFIG_ID", "public"),
            ("API_KEY_ORGANIZATION_CONFIGS", "org,team"),
            ("API_KEYS_AS_USERS", "true"),
        ])
        .unwrap()
        .api_keys;
        let headers: Vec<&str> = c.headers.iter().map(|h| h.as_str()).collect();
        assert_eq!(headers, ["x-key", "x-other"]);
        assert!(!c.hashing && !c.rate_limits && c.as_users && c.enabled);
        assert_eq!(c.config_id.as_deref(), Some("public"));
        assert_eq!(c.organization_configs, ["org", "team"]);
    }

    #[test]
    fn keys_in_secondary_storage_need_sessions_there() {
        let refused = config(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("API_KEY_STORAGE", "secondary-storage"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            refused.contains("API_KEY_STORAGE") && refused.contains("SESSION_STORE=redis"),
            "{refused}"
        );
        for (fallback, storage) in [
            ("false", ApiKeyStorage::SecondaryStorage),
            ("true", ApiKeyStorage::SecondaryStorageWithFallback),
        ] {
            let c = config(&[
                ("DATABASE_URL", "postgres://localhost/db"),
                ("SESSION_STORE", "redis"),
                ("API_KEY_STORAGE", "secondary-storage"),
                ("API_KEY_FALLBACK_TO_DATABASE", fallback),
            ])
            .unwrap();
            assert_eq!(c.api_keys.storage, storage);
        }
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        assert_each_refused(&[
            ("API_KEY_HEADERS", "x key"),
            ("API_KEY_HEADERS", "authorization"),
            ("API_KEY_HEADERS", " , "),
            ("API_KEYS", "maybe"),
            ("API_KEY_HASHING", "2"),
            ("API_KEYS_AS_USERS", "yes please"),
            ("API_KEY_STAMP_SECS", "0"),
            ("API_KEY_STORAGE", "redis"),
            ("API_KEY_FALLBACK_TO_DATABASE", "true"),
        ]);
    }
}

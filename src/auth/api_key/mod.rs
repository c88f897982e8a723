//! API keys made by Better-Auth's api-key plugin (`@better-auth/api-key`), decided as its
//! `verifyApiKey` decides them, on the same rows, in the same order:
//!
//! 1. the key is found by its stored form ([`stored_form`]: SHA-256, base64url without
//!    padding; or the key itself when the plugin runs with `disableKeyHashing`);
//! 2. of the expected configuration (`configId`, when one is set: [`ApiKeySettings::config_id`]);
//! 3. `enabled` is not `false`;
//! 4. not expired (an expired key is deleted, as the plugin deletes it);
//! 5. the requested permissions granted by the key's own `permissions` (every action asked,
//!    with the same statement shapes as roles);
//! 6. a key with no use left and no refill is deleted and refused;
//! 7. one use claimed: the quota and its refill, then the rate-limit window, in one guarded
//!    statement ([`crate::db::api_keys::claim`]).
//!
//! Steps 2–5 are [`verdict::precheck`] (no I/O), step 6 [`verdict::used_up`] on the counters
//! the claim reads; the request side (`request::identify`) does the reads and writes around
//! them, and before the claim checks the owner (warden's fresh-state
//! rule: a banned or deleted user's keys, or a deleted organization's, stop on the next
//! request; the plugin's `verifyApiKey` does not look at the owner).

pub mod known;
pub(crate) mod secondary;
pub mod stamps;
pub mod verdict;

use axum::http::HeaderName;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::auth::policy::Statements;
use crate::db::api_keys::ApiKeyRow;

/// The header Better-Auth's plugin reads a key from unless told otherwise (`apiKeyHeaders`).
pub const DEFAULT_API_KEY_HEADER: &str = "x-api-key";

/// The longest key read (bytes). The plugin makes 64 characters after a prefix of at most 32;
/// anything far longer is refused before it is hashed or looked up.
pub const MAX_API_KEY_LEN: usize = 1024;

/// How API keys are read and decided: the plugin's options, for the configuration warden
/// serves (`API_KEY_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeySettings {
    /// Accept API keys at all (`API_KEYS`, default on).
    pub enabled: bool,
    /// Where the key is read, the first present wins (`API_KEY_HEADERS`; the plugin's
    /// `apiKeyHeaders`, default `x-api-key`).
    pub headers: Vec<HeaderName>,
    /// Keys are stored hashed (`API_KEY_HASHING`, default on; off is the plugin's
    /// `disableKeyHashing: true`).
    pub hashing: bool,
    /// The configuration's rate limiting is on (`API_KEY_RATE_LIMIT`, default on: the plugin's
    /// `rateLimit.enabled`). Off, a key's own window is never asked, as in the plugin.
    pub rate_limits: bool,
    /// Only keys of this configuration (`API_KEY_CONFIG_ID`; unset: any, as `verifyApiKey`
    /// without `configId`). `default` and a missing `configId` are the same configuration.
    pub config_id: Option<String>,
    /// Configurations whose keys belong to organizations (`references: "organization"`;
    /// `API_KEY_ORGANIZATION_CONFIGS`): their `referenceId` is an organization's id.
    pub organization_configs: Vec<String>,
    /// A user's key stands in for its owner wherever a user is needed (`AuthUser` and the
    /// extractors built on it, warden's `/users` and `/admin`): the plugin's
    /// `enableSessionForAPIKeys` (`API_KEYS_AS_USERS`, default off).
    pub as_users: bool,
    /// How often the use of a key that counts nothing is written (`updatedAt`, `lastRequest`),
    /// per key (`API_KEY_STAMP_SECS`, default 1 s; the plugin writes every use).
    pub stamp_every: std::time::Duration,
    /// Where the plugin keeps keys (`API_KEY_STORAGE`, `API_KEY_FALLBACK_TO_DATABASE`: its
    /// `storage` and `fallbackToDatabase`). Secondary storage is the sessions' Redis, so it
    /// needs [`crate::SessionStorage::Redis`].
    pub storage: ApiKeyStorage,
}

/// Where Better-Auth's api-key plugin keeps keys: its `storage` option, and `fallbackToDatabase`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApiKeyStorage {
    /// The `apikey` table (`storage: "database"`, the plugin's default).
    #[default]
    Database,
    /// Better-Auth's secondary storage alone (`storage: "secondary-storage"`): each key a JSON
    /// value in Redis, under its hash and its id; no row. Decided and counted there
    /// (`crate::redis::api_keys`).
    SecondaryStorage,
    /// Secondary storage in front of the table (`storage: "secondary-storage"`,
    /// `fallbackToDatabase: true`): the table decides and counts, as the plugin's own
    /// verification does in this mode; Redis holds copies, which warden drops when it changes a
    /// key, so that the plugin reads the table again.
    SecondaryStorageWithFallback,
}

impl ApiKeyStorage {
    /// Whether keys are kept in secondary storage at all (which must then be configured).
    pub fn uses_secondary_storage(self) -> bool {
        !matches!(self, Self::Database)
    }
}

impl Default for ApiKeySettings {
    /// The plugin's defaults: `x-api-key`, hashed keys, rate limiting on, any configuration,
    /// user-owned keys that do not stand in for users.
    fn default() -> Self {
        Self {
            enabled: true,
            headers: vec![HeaderName::from_static(DEFAULT_API_KEY_HEADER)],
            hashing: true,
            rate_limits: true,
            config_id: None,
            organization_configs: Vec::new(),
            as_users: false,
            stamp_every: stamps::STAMP_EVERY,
            storage: ApiKeyStorage::Database,
        }
    }
}

impl ApiKeySettings {
    /// Who owns keys of configuration `config_id`.
    pub fn owner_of(&self, config_id: &str, reference_id: &str) -> ApiKeyOwner {
        if self
            .organization_configs
            .iter()
            .any(|c| same_config(c, config_id))
        {
            ApiKeyOwner::Organization(reference_id.to_owned())
        } else {
            ApiKeyOwner::User(reference_id.to_owned())
        }
    }
}

/// The plugin's `configIdMatches`: a missing configuration id and `default` are one.
pub fn same_config(a: &str, b: &str) -> bool {
    let default = |c: &str| c.is_empty() || c == "default";
    (default(a) && default(b)) || a == b
}

/// What `apikey.key` holds for `key`: base64url (no padding) of its SHA-256 (the prefix
/// included), or the key itself without hashing.
pub fn stored_form(key: &str, hashing: bool) -> String {
    if !hashing {
        return key.to_owned();
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Where a key's row is cached and what the `warden_api_key` notification names: the hex
/// SHA-256 of its stored form (the notification never carries the stored form itself, which
/// without hashing is the key).
pub fn cache_slot(stored: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, stored.as_bytes());
    let mut slot = String::with_capacity(64);
    for byte in digest.as_ref() {
        slot.push(char::from(HEX[usize::from(byte >> 4)]));
        slot.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    slot
}

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyOwner {
    /// A user (the plugin's default, `references: "user"`): the user's id.
    User(String),
    /// An organization (`references: "organization"`): its id.
    Organization(String),
}

impl ApiKeyOwner {
    /// The owner's id (`referenceId`).
    pub fn id(&self) -> &str {
        match self {
            Self::User(id) | Self::Organization(id) => id,
        }
    }

    /// `user` or `organization`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Organization(_) => "organization",
        }
    }
}

/// A verified API key: what a handler learns of it (never the key itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// The key's id.
    pub id: String,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Its first characters, kept in clear to recognise it (`start`).
    pub start: Option<String>,
    /// The prefix it was made with.
    pub prefix: Option<String>,
    /// Its plugin configuration (`configId`).
    pub config_id: String,
    /// Who it belongs to.
    pub owner: ApiKeyOwner,
    /// Its own permissions (`None`: none were given).
    pub permissions: Option<Statements>,
    /// What the app stored with it (`None`: nothing).
    pub metadata: Option<serde_json::Value>,
    /// Uses left after this request (`None`: unlimited).
    pub remaining: Option<i64>,
    /// When it expires (`None`: never).
    pub expires_at: Option<OffsetDateTime>,
}

impl ApiKey {
    /// The key a row describes, with `remaining` as left after the claim.
    pub(crate) fn of(row: &ApiKeyRow, settings: &ApiKeySettings, remaining: Option<i64>) -> Self {
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            start: row.start.clone(),
            prefix: row.prefix.clone(),
            config_id: row.config_id.clone(),
            owner: settings.owner_of(&row.config_id, &row.reference_id),
            permissions: verdict::permissions_of(row),
            metadata: metadata_of(row.metadata.as_deref()),
            remaining,
            expires_at: row.expires_at,
        }
    }
}

/// The stored metadata as the plugin reads it: JSON, and a value stored twice stringified (an
/// older plugin's bug, which the plugin migrates on read) read through to the object inside.
fn metadata_of(text: Option<&str>) -> Option<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(text?).ok()?;
    if let serde_json::Value::String(inner) = &value
        && let Ok(parsed @ serde_json::Value::Object(_)) = serde_json::from_str(inner)
    {
        return Some(parsed);
    }
    (!value.is_null()).then_some(value)
}

/// A key row as the plugin creates one by default (10 requests a day, no quota), made at `now`.
#[cfg(test)]
pub(crate) fn sample_row(now: OffsetDateTime) -> ApiKeyRow {
    ApiKeyRow {
        id: "k".into(),
        config_id: "default".into(),
        name: None,
        start: None,
        reference_id: "u".into(),
        prefix: None,
        refill_interval: None,
        refill_amount: None,
        last_refill_at: None,
        enabled: Some(true),
        rate_limit_enabled: Some(true),
        rate_limit_time_window: Some(86_400_000),
        rate_limit_max: Some(10),
        request_count: Some(0),
        remaining: None,
        last_request: None,
        expires_at: None,
        created_at: now,
        updated_at: now,
        permissions: None,
        metadata: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_is_the_plugins_hash() {
        // base64url(SHA-256("abc")) without padding.
        assert_eq!(
            stored_form("abc", true),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert_eq!(stored_form("abc", false), "abc");
    }

    #[test]
    fn the_cache_slot_is_the_hex_digest_the_trigger_sends() {
        // SELECT encode(sha256(convert_to('abc', 'UTF8')), 'hex')
        assert_eq!(
            cache_slot("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn default_and_no_configuration_are_one() {
        assert!(same_config("default", ""));
        assert!(same_config("", "default"));
        assert!(same_config("org", "org"));
        assert!(!same_config("org", "default"));
    }

    #[test]
    fn metadata_reads_through_a_double_stringified_value() {
        assert_eq!(
            metadata_of(Some(r#"{"plan":"pro"}"#)),
            Some(serde_json::json!({"plan": "pro"}))
        );
        assert_eq!(
            metadata_of(Some(r#""{\"plan\":\"pro\"}""#)),
            Some(serde_json::json!({"plan": "pro"}))
        );
        assert_eq!(metadata_of(Some("null")), None);
        assert_eq!(metadata_of(Some("not json")), None);
        assert_eq!(metadata_of(None), None);
    }
}

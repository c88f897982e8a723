//! The checks of the plugin's `validateApiKey` that need no write, in its order, on a row
//! already read (maybe cached: every column they read sends a notification when it changes):
//! configuration, `enabled`, expiry, permissions. The next check, a used-up key without
//! refill, reads the counters, which change on every use without a notification, so it is
//! asked of the fresh row the claim locks ([`used_up`]). Pure, so every branch is a unit test;
//! the request side acts on the answers (deleting what the plugin deletes).

use time::OffsetDateTime;

use super::{ApiKeySettings, same_config};
use crate::auth::policy::Statements;
use crate::auth::policy::access::{Connector, Role};
use crate::db::api_keys::ApiKeyRow;

/// Why a key is refused before any use is claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Of another configuration than the one warden serves (`INVALID_API_KEY`).
    OtherConfiguration,
    /// `enabled: false` (`KEY_DISABLED`).
    Disabled,
    /// Past `expiresAt` (`KEY_EXPIRED`); the plugin deletes the key.
    Expired,
    /// The key's permissions do not grant what was asked (the plugin's `KEY_NOT_FOUND`).
    NotPermitted,
}

impl Refusal {
    /// Whether the plugin deletes the key when it refuses it so.
    pub fn deletes(self) -> bool {
        matches!(self, Self::Expired)
    }
}

/// Steps 2–5 of the module doc for `row`, at `now`, for a request asking `permissions`.
pub fn precheck(
    row: &ApiKeyRow,
    settings: &ApiKeySettings,
    permissions: Option<&Statements>,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    if let Some(expected) = &settings.config_id
        && !same_config(&row.config_id, expected)
    {
        return Err(Refusal::OtherConfiguration);
    }
    if row.enabled == Some(false) {
        return Err(Refusal::Disabled);
    }
    // `Date.now() > expiresAt`, in milliseconds (the plugin's clock).
    if row
        .expires_at
        .is_some_and(|expires| millis(now) > millis(expires))
    {
        return Err(Refusal::Expired);
    }
    if let Some(asked) = permissions
        && !grants(permissions_of(row).as_ref(), asked)
    {
        return Err(Refusal::NotPermitted);
    }
    Ok(())
}

/// Whether a key's own permissions (`None`: it has none) grant everything `asked`, as the
/// plugin's `role(permissions).authorize(asked)`.
pub fn grants(own: Option<&Statements>, asked: &Statements) -> bool {
    own.is_some_and(|own| Role::new(own.clone()).authorize(asked, Connector::And))
}

/// Step 6, on the fresh counters of a key with no use left: the plugin deletes it when
/// `remaining` is exactly 0 and it has no `refillAmount`; otherwise (a refill not due yet, a
/// negative count) it only refuses.
pub fn used_up(remaining: Option<i32>, refill_amount: Option<i32>) -> bool {
    remaining == Some(0) && refill_amount.is_none()
}

/// A key whose use counts nothing: no quota (`remaining` NULL) and no rate-limit window
/// (limits off in the configuration or on the key, or no window or no max). A use of it only
/// stamps the row, so its row may be cached and its verdict reached without the database.
/// `Some(true)`: the plugin stamps `last_request` too (limits off); `Some(false)`: only
/// `updated_at` (no window or no max); `None`: the use counts something.
pub fn counts_nothing(row: &ApiKeyRow, settings: &ApiKeySettings) -> Option<bool> {
    if row.remaining.is_some() {
        return None;
    }
    if !settings.rate_limits || row.rate_limit_enabled == Some(false) {
        return Some(true);
    }
    (row.rate_limit_time_window.is_none() || row.rate_limit_max.is_none()).then_some(false)
}

/// The key's own permissions, as the plugin parses them (`safeJSONParse`): `None` when there
/// are none, or when they are not `resource → [actions]`.
pub fn permissions_of(row: &ApiKeyRow) -> Option<Statements> {
    serde_json::from_str(row.permissions.as_deref()?).ok()
}

/// Milliseconds since the epoch.
fn millis(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos() / 1_000_000
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn row() -> ApiKeyRow {
        super::super::sample_row(OffsetDateTime::now_utc())
    }

    fn asked(pairs: &[(&str, &[&str])]) -> Statements {
        pairs
            .iter()
            .map(|(r, a)| ((*r).to_owned(), a.iter().map(|a| (*a).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn the_plugins_order_decides_which_refusal_is_heard() {
        let settings = ApiKeySettings::default();
        let now = OffsetDateTime::now_utc();
        let mut key = row();
        assert_eq!(precheck(&key, &settings, None, now), Ok(()));
        key.remaining = Some(0);
        assert_eq!(precheck(&key, &settings, None, now), Ok(()), "the claim decides");
        key.permissions = Some(r#"{"files":["read"]}"#.into());
        let write = asked(&[("files", &["write"])]);
        assert_eq!(
            precheck(&key, &settings, Some(&write), now),
            Err(Refusal::NotPermitted),
            "permissions before the quota"
        );
        key.expires_at = Some(now - Duration::seconds(1));
        assert_eq!(
            precheck(&key, &settings, Some(&write), now),
            Err(Refusal::Expired)
        );
        key.enabled = Some(false);
        assert_eq!(
            precheck(&key, &settings, Some(&write), now),
            Err(Refusal::Disabled)
        );
        let other = ApiKeySettings {
            config_id: Some("org".into()),
            ..settings
        };
        assert_eq!(
            precheck(&key, &other, Some(&write), now),
            Err(Refusal::OtherConfiguration)
        );
    }

    #[test]
    fn a_refill_keeps_a_used_up_key_and_null_enabled_counts_as_on() {
        let settings = ApiKeySettings::default();
        let now = OffsetDateTime::now_utc();
        let mut key = row();
        key.enabled = None;
        key.remaining = Some(0);
        key.refill_amount = Some(5);
        assert_eq!(precheck(&key, &settings, None, now), Ok(()), "the claim decides");
        key.expires_at = Some(now);
        assert_eq!(
            precheck(&key, &settings, None, now),
            Ok(()),
            "expires at now: not past"
        );
    }

    #[test]
    fn only_keys_without_quota_or_window_count_nothing() {
        let settings = ApiKeySettings::default();
        let mut key = row();
        assert_eq!(
            counts_nothing(&key, &settings),
            None,
            "the plugin's default: 10 a day"
        );
        key.rate_limit_enabled = Some(false);
        assert_eq!(counts_nothing(&key, &settings), Some(true));
        key.remaining = Some(3);
        assert_eq!(counts_nothing(&key, &settings), None);
        key.remaining = None;
        key.rate_limit_enabled = None;
        key.rate_limit_max = None;
        assert_eq!(counts_nothing(&key, &settings), Some(false), "no max: no window");
        let off = ApiKeySettings {
            rate_limits: false,
            ..settings
        };
        assert_eq!(counts_nothing(&row(), &off), Some(true));
    }

    #[test]
    fn permissions_need_every_action_and_a_key_without_any_grants_nothing() {
        let settings = ApiKeySettings::default();
        let now = OffsetDateTime::now_utc();
        let mut key = row();
        let read = asked(&[("files", &["read"])]);
        assert_eq!(
            precheck(&key, &settings, Some(&read), now),
            Err(Refusal::NotPermitted)
        );
        key.permissions = Some(r#"{"files":["read","write"],"billing":["view"]}"#.into());
        assert_eq!(precheck(&key, &settings, Some(&read), now), Ok(()));
        let both = asked(&[("files", &["read"]), ("billing", &["view"])]);
        assert_eq!(precheck(&key, &settings, Some(&both), now), Ok(()));
        let more = asked(&[("files", &["read", "delete"])]);
        assert_eq!(
            precheck(&key, &settings, Some(&more), now),
            Err(Refusal::NotPermitted)
        );
        key.permissions = Some("not json".into());
        assert_eq!(
            precheck(&key, &settings, Some(&read), now),
            Err(Refusal::NotPermitted)
        );
    }
}

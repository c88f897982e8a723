//! One use of a key kept in secondary storage alone, decided as the plugin's
//! `claimUsageInSecondaryStorage` decides it, which differs from its database claim
//! (`crate::db::api_keys::claim`) in three ways that a client can see:
//!
//! - a due refill sets `remaining` to `refillAmount` and then takes one, as in the table, but
//!   only `remaining === 0` is refused: a negative count is decremented further;
//! - the rate limit is asked after the quota in both, but here a refusal writes nothing, so a
//!   rate-limited request costs no quota;
//! - the counters are absolute values computed from the key as read (what the caller writes
//!   with a compare-and-set, `crate::redis::api_keys`).
//!
//! Pure: the caller reads, writes and retries.

use serde_json::Value as Json;
use time::OffsetDateTime;

use super::ApiKeySettings;
use crate::db::api_keys::ApiKeyRow;
use crate::redis::api_keys::{Counters, js_date};

/// What a use does to a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Use {
    /// Granted: `remaining` left after it (`None`: unlimited), and the fields to write.
    Granted {
        /// Uses left.
        remaining: Option<i64>,
        /// The plugin's `mutations`, merged over the stored key.
        changes: Vec<(&'static str, Json)>,
    },
    /// `USAGE_EXCEEDED`: no use left and no refill due. Nothing is written.
    UsageExceeded,
    /// `RATE_LIMITED`: the window is full; retry in this many ms. Nothing is written.
    RateLimited {
        /// The plugin's `tryAgainIn`.
        retry_after_ms: i64,
    },
}

/// The use of `row`, whose counters are `counters`, at `now` (ms precision, the plugin's clock).
pub(crate) fn claim(
    row: &ApiKeyRow,
    counters: &Counters,
    settings: &ApiKeySettings,
    now: OffsetDateTime,
) -> Use {
    let now_ms = ms(now);
    let mut remaining = counters.remaining;
    let mut last_refill_at = row.last_refill_at;
    if let Some(mut left) = remaining {
        let last = ms(row.last_refill_at.unwrap_or(row.created_at));
        // `refillInterval && refillAmount && now - lastTime > refillInterval` (0 and null are false).
        if let (Some(interval), Some(amount)) = (counters.refill_interval, counters.refill_amount)
            && interval != 0
            && amount != 0
            && now_ms - last > i128::from(interval)
        {
            left = amount;
            last_refill_at = Some(now);
        }
        if left == 0 {
            return Use::UsageExceeded;
        }
        remaining = Some(left.saturating_sub(1));
    }
    let mut changes = Vec::with_capacity(6);
    // The plugin's `evaluateRateLimit`, then `applyRateLimitToSnapshot`.
    if !settings.rate_limits || row.rate_limit_enabled == Some(false) {
        changes.push(("lastRequest", js_date(Some(now))));
    } else if let (Some(window), Some(max)) = (counters.rate_limit_time_window, counters.rate_limit_max) {
        let count = counters.request_count.unwrap_or(0);
        match row.last_request {
            Some(last) if now_ms - ms(last) <= i128::from(window) => {
                if count >= max {
                    let since = now_ms - ms(last);
                    return Use::RateLimited {
                        retry_after_ms: i64::try_from(i128::from(window) - since).unwrap_or(0),
                    };
                }
                changes.push(("lastRequest", js_date(Some(now))));
                changes.push(("requestCount", Json::from(count.saturating_add(1))));
            }
            // First request, or the window has passed: a new window.
            _ => {
                changes.push(("lastRequest", js_date(Some(now))));
                changes.push(("requestCount", Json::from(1)));
            }
        }
    }
    changes.push(("remaining", remaining.map_or(Json::Null, Json::from)));
    changes.push(("lastRefillAt", js_date(last_refill_at)));
    changes.push(("updatedAt", js_date(Some(now))));
    Use::Granted { remaining, changes }
}

/// The plugin's `calculateTTL` for a key expiring at `expires_at`: whole seconds left, `None`
/// (no TTL) when it never expires or less than a second is left.
pub fn ttl_secs(expires_at: Option<OffsetDateTime>, now: OffsetDateTime) -> Option<i64> {
    let left = ms(expires_at?) - ms(now);
    let secs = i64::try_from(left.div_euclid(1000)).ok()?;
    (secs > 0).then_some(secs)
}

fn ms(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos() / 1_000_000
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    /// A window of 2 a minute, the key five minutes old.
    fn row(now: OffsetDateTime) -> ApiKeyRow {
        ApiKeyRow {
            rate_limit_time_window: Some(60_000),
            rate_limit_max: Some(2),
            created_at: now - Duration::minutes(5),
            ..super::super::sample_row(now)
        }
    }

    fn counters(row: &ApiKeyRow) -> Counters {
        Counters {
            remaining: row.remaining.map(i64::from),
            refill_interval: row.refill_interval.map(i64::from),
            refill_amount: row.refill_amount.map(i64::from),
            rate_limit_time_window: row.rate_limit_time_window.map(i64::from),
            rate_limit_max: row.rate_limit_max.map(i64::from),
            request_count: row.request_count.map(i64::from),
        }
    }

    fn claim(row: &ApiKeyRow, settings: &ApiKeySettings, now: OffsetDateTime) -> Use {
        super::claim(row, &counters(row), settings, now)
    }

    fn changed<'a>(u: &'a Use, name: &str) -> Option<&'a Json> {
        match u {
            Use::Granted { changes, .. } => changes.iter().find(|(n, _)| *n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    #[test]
    fn a_window_starts_counts_and_refuses_without_writing() {
        let settings = ApiKeySettings::default();
        let now = OffsetDateTime::now_utc();
        let mut key = row(now);
        let first = claim(&key, &settings, now);
        assert_eq!(changed(&first, "requestCount"), Some(&Json::from(1)));
        key.request_count = Some(1);
        key.last_request = Some(now - Duration::seconds(5));
        assert_eq!(
            changed(&claim(&key, &settings, now), "requestCount"),
            Some(&Json::from(2))
        );
        key.request_count = Some(2);
        assert_eq!(
            claim(&key, &settings, now),
            Use::RateLimited {
                retry_after_ms: 55_000
            }
        );
        key.last_request = Some(now - Duration::seconds(61));
        assert_eq!(
            changed(&claim(&key, &settings, now), "requestCount"),
            Some(&Json::from(1))
        );
    }

    #[test]
    fn a_rate_limited_use_costs_no_quota() {
        let settings = ApiKeySettings::default();
        let now = OffsetDateTime::now_utc();
        let mut key = row(now);
        key.remaining = Some(3);
        key.request_count = Some(2);
        key.last_request = Some(now);
        assert!(matches!(claim(&key, &settings, now), Use::RateLimited { .. }));
    }

    #[test]
    fn quota_refill_and_the_plugins_strict_zero() {
        let settings = ApiKeySettings {
            rate_limits: false,
            ..ApiKeySettings::default()
        };
        let now = OffsetDateTime::now_utc();
        let mut key = row(now);
        key.remaining = Some(1);
        let used = claim(&key, &settings, now);
        assert!(matches!(
            used,
            Use::Granted {
                remaining: Some(0),
                ..
            }
        ));
        assert!(changed(&used, "lastRequest").is_some(), "limits off: stamped");
        key.remaining = Some(0);
        assert_eq!(claim(&key, &settings, now), Use::UsageExceeded);
        key.refill_amount = Some(5);
        key.refill_interval = Some(1000);
        let refilled = claim(&key, &settings, now);
        assert!(matches!(
            refilled,
            Use::Granted {
                remaining: Some(4),
                ..
            }
        ));
        assert_eq!(changed(&refilled, "lastRefillAt"), Some(&js_date(Some(now))));
        key.last_refill_at = Some(now - Duration::milliseconds(500));
        assert_eq!(claim(&key, &settings, now), Use::UsageExceeded, "not due yet");
        key.remaining = Some(-1);
        assert!(
            matches!(
                claim(&key, &settings, now),
                Use::Granted {
                    remaining: Some(-2),
                    ..
                }
            ),
            "only exactly 0 is refused"
        );
    }

    #[test]
    fn no_window_writes_no_request_and_the_ttl_is_whole_seconds() {
        let settings = ApiKeySettings::default();
        let now = OffsetDateTime::now_utc();
        let mut key = row(now);
        key.rate_limit_max = None;
        let used = claim(&key, &settings, now);
        assert_eq!(changed(&used, "lastRequest"), None);
        assert_eq!(changed(&used, "remaining"), Some(&Json::Null));
        assert_eq!(ttl_secs(None, now), None);
        assert_eq!(ttl_secs(Some(now + Duration::milliseconds(1999)), now), Some(1));
        assert_eq!(ttl_secs(Some(now + Duration::milliseconds(999)), now), None);
        assert_eq!(ttl_secs(Some(now - Duration::seconds(3)), now), None);
    }
}

//! Values as Better-Auth's JavaScript writes and reads them in secondary storage: dates as
//! `JSON.stringify` (`toISOString`) writes them, read back as `new Date(...)` reads them, and
//! time in milliseconds since the epoch, JavaScript's clock.

use serde::Deserialize;
use serde_json::Value as Json;
use time::OffsetDateTime;

/// A date as `JSON.stringify` writes one (ISO 8601 with ms and `Z`), or ms since the epoch.
pub(super) fn js_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
    js_date_opt(d)?.ok_or_else(|| serde::de::Error::custom("not a date"))
}

/// [`js_date`], where `null` (or anything not a date) is none.
pub(super) fn js_date_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<OffsetDateTime>, D::Error> {
    Ok(date_of(&Json::deserialize(d)?))
}

/// The date a JSON value holds, if it holds one.
pub(super) fn date_of(value: &Json) -> Option<OffsetDateTime> {
    match value {
        Json::String(s) => OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok(),
        Json::Number(n) => {
            let nanos = match n.as_i64() {
                Some(ms) => i128::from(ms) * 1_000_000,
                None => (n.as_f64()? * 1e6) as i128,
            };
            OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
        }
        _ => None,
    }
}

/// `date.toISOString()`: `2026-12-07T14:23:54.123Z`.
pub(super) fn iso(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

pub(super) fn unix_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(super) fn now_ms() -> f64 {
    unix_ms(OffsetDateTime::now_utc()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_as_javascript_writes_them() {
        let text = "2026-12-07T14:23:54.123Z";
        let at = date_of(&Json::String(text.into())).unwrap();
        assert_eq!(iso(at), text);
        assert_eq!(unix_ms(at), 1_796_653_434_123);
        assert_eq!(date_of(&serde_json::json!(1_796_653_434_123_i64)), Some(at));
        assert_eq!(date_of(&Json::Null), None);
        assert_eq!(iso(OffsetDateTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}

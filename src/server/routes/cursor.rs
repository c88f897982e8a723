//! `GET /admin/users`' keyset cursors: where the next page starts, as an opaque string.
//!
//! An offset walks every row it skips (PostgreSQL's btrees hold no counts: about 53 ns an
//! index entry, so offset 500,000 costs at least 26 ms whatever the query). A cursor names the
//! last user of a page, by its sort key and id, so the next page is an index range from there
//! and costs the same at any depth. The cursor is base64url JSON of that position and of the
//! sort it belongs to (not signed: a made-up position only moves the caller's own listing); a
//! cursor of another sort, or one that does not decode, is a 422 `validation_failed`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::users::{After, SortBy, SortDirection, SortKey};
use crate::error::ApiError;

/// The longest cursor read (characters): a position holds a user's name or email, which
/// Better-Auth does not bound; 32 KiB of cursor is a name of about 24,000 bytes.
pub(crate) const MAX_CURSOR_CHARS: usize = 32 * 1024;

#[derive(Serialize, Deserialize)]
struct Position {
    /// The sort, as `sortBy` and `sortDirection` name it.
    by: String,
    dir: String,
    /// The sort key: a time as nanoseconds since the epoch (decimal), the text itself otherwise.
    key: String,
    id: String,
}

fn by_name(sort_by: SortBy) -> &'static str {
    match sort_by {
        SortBy::CreatedAt => "createdAt",
        SortBy::UpdatedAt => "updatedAt",
        SortBy::Email => "email",
        SortBy::Name => "name",
    }
}

fn dir_name(direction: SortDirection) -> &'static str {
    match direction {
        SortDirection::Asc => "asc",
        SortDirection::Desc => "desc",
    }
}

/// The cursor of the page after `after`, in a listing sorted by `sort_by`, `direction`.
pub(crate) fn encode(after: &After, sort_by: SortBy, direction: SortDirection) -> String {
    let key = match &after.key {
        SortKey::Time(at) => at.unix_timestamp_nanos().to_string(),
        SortKey::Text(text) => text.clone(),
    };
    let position = Position {
        by: by_name(sort_by).to_owned(),
        dir: dir_name(direction).to_owned(),
        key,
        id: after.id.clone(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&position).unwrap_or_default())
}

/// The position `cursor` names, for a listing sorted by `sort_by`, `direction`.
pub(crate) fn decode(cursor: &str, sort_by: SortBy, direction: SortDirection) -> Result<After, ApiError> {
    let unknown = || ApiError::ValidationFailed("`cursor` is not one this listing gave".into());
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(unknown());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| unknown())?;
    let position: Position = serde_json::from_slice(&bytes).map_err(|_| unknown())?;
    if position.by != by_name(sort_by) || position.dir != dir_name(direction) {
        return Err(ApiError::ValidationFailed(format!(
            "`cursor` belongs to the order sortBy={} sortDirection={}: ask with that order, or start again without a cursor",
            position.by, position.dir
        )));
    }
    let key = match sort_by {
        SortBy::CreatedAt | SortBy::UpdatedAt => SortKey::Time(
            position
                .key
                .parse::<i128>()
                .ok()
                .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
                .ok_or_else(unknown)?,
        ),
        SortBy::Email | SortBy::Name => SortKey::Text(position.key),
    };
    // PostgreSQL's text has no NUL; a cursor with one was not made by warden.
    if position.id.contains('\0') || matches!(&key, SortKey::Text(t) if t.contains('\0')) {
        return Err(unknown());
    }
    Ok(After { key, id: position.id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_for_its_own_order_only() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_796_653_434_123_456_000).unwrap();
        let after = After {
            key: SortKey::Time(at),
            id: "u1".into(),
        };
        let cursor = encode(&after, SortBy::CreatedAt, SortDirection::Desc);
        assert_eq!(
            decode(&cursor, SortBy::CreatedAt, SortDirection::Desc).unwrap(),
            after
        );
        assert!(decode(&cursor, SortBy::CreatedAt, SortDirection::Asc).is_err());
        assert!(decode(&cursor, SortBy::Email, SortDirection::Desc).is_err());
        let text = After {
            key: SortKey::Text("ada@example.com".into()),
            id: "u2".into(),
        };
        let cursor = encode(&text, SortBy::Email, SortDirection::Asc);
        assert_eq!(decode(&cursor, SortBy::Email, SortDirection::Asc).unwrap(), text);
    }

    #[test]
    fn what_warden_did_not_make_is_refused() {
        for junk in ["", "!!!", "e30", &"A".repeat(MAX_CURSOR_CHARS + 1)] {
            assert!(decode(junk, SortBy::Name, SortDirection::Asc).is_err(), "{junk}");
        }
        for key in [
            "soon",
            "9999-12-31T23:59:59-00:01",
            "999999999999999999999999999999",
            "-1e30",
        ] {
            let bad_time = URL_SAFE_NO_PAD.encode(format!(
                r#"{{"by":"createdAt","dir":"asc","key":"{key}","id":"u"}}"#
            ));
            assert!(
                decode(&bad_time, SortBy::CreatedAt, SortDirection::Asc).is_err(),
                "{key}"
            );
        }
        let nul =
            URL_SAFE_NO_PAD.encode(b"{\"by\":\"name\",\"dir\":\"asc\",\"key\":\"a\\u0000\",\"id\":\"u\"}");
        assert!(decode(&nul, SortBy::Name, SortDirection::Asc).is_err());
    }
}

//! Scopes a route asks of an OAuth access token: all of a set (RFC 6749 §3.3: a token's
//! `scope` is space-separated, each scope case-sensitive). What is missing is named, every
//! one, in the 403 `insufficient_scope` refusal.

/// The scopes a route requires: `RequireScope<NotesRead>` where `NotesRead: Scopes`.
///
/// ```
/// struct NotesRead;
/// impl warden::Scopes for NotesRead {
///     const SCOPES: &'static [&'static str] = &["notes:read"];
/// }
/// ```
pub trait Scopes {
    /// Every scope required (all of them).
    const SCOPES: &'static [&'static str];
}

/// The scopes of `asked` that `held` (space-separated) does not hold, in the order asked.
pub fn missing<'a>(held: &str, asked: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    asked
        .into_iter()
        .filter(|scope| !held.split_ascii_whitespace().any(|h| h == *scope))
        .collect()
}

/// A list of scopes as a client sends it (`?scope=notes:read notes:write`; commas accepted
/// too): each one RFC 6749's `scope-token` (printable ASCII but space, `"` and `\`), or the
/// one that is not.
pub fn parse_list(text: &str) -> Result<Vec<&str>, &str> {
    let scopes: Vec<&str> = text.split([' ', ',']).filter(|s| !s.is_empty()).collect();
    for scope in &scopes {
        if !scope
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(scope);
        }
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_scope_is_named_and_matching_is_exact() {
        assert_eq!(missing("a b  c", ["a", "c"]), Vec::<&str>::new());
        assert_eq!(missing("a b", ["b", "c", "d"]), vec!["c", "d"]);
        assert_eq!(missing("notes:read", ["notes"]), vec!["notes"], "no prefix match");
        assert_eq!(missing("Notes", ["notes"]), vec!["notes"], "case-sensitive");
        assert_eq!(missing("", ["a"]), vec!["a"]);
    }

    #[test]
    fn a_scope_list_splits_on_spaces_and_commas_and_refuses_quotes() {
        assert_eq!(parse_list("a b,c  d").unwrap(), vec!["a", "b", "c", "d"]);
        assert_eq!(parse_list("").unwrap(), Vec::<&str>::new());
        assert_eq!(parse_list("a \"b").unwrap_err(), "\"b");
        assert_eq!(parse_list("a\\b").unwrap_err(), "a\\b");
    }
}

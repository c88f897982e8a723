//! The `WWW-Authenticate` challenges of a refused request, as an OAuth resource server writes
//! them: RFC 6750 §3 (`Bearer`, `error`, `error_description`, `scope` for
//! `insufficient_scope`), RFC 9728 §5.1 (`resource_metadata`, so a client learns where to get
//! a token) and RFC 9449 §7.1 (`DPoP` with `algs`).
//!
//! Which scheme carries the error: a DPoP proof's failure, a token sent with the DPoP scheme,
//! or any refusal when tokens must be DPoP-bound, is a `DPoP` challenge; anything else is a
//! `Bearer` one. The other scheme this resource accepts is offered beside it, bare, so a client
//! can choose (`DPOP_REQUIRED` offers no `Bearer`).

use std::sync::Arc;

use axum::http::HeaderValue;

/// What every challenge of this resource says besides the error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChallengeParams {
    /// The metadata document's URL (RFC 9728).
    pub resource_metadata: Option<String>,
    /// DPoP proof algorithms accepted, space-separated (`None`: no `DPoP` challenge).
    pub dpop_algs: Option<String>,
    /// Access tokens must be DPoP-bound: no `Bearer` challenge.
    pub dpop_required: bool,
}

/// The request's side of a challenge: did it use the DPoP scheme.
#[derive(Debug, Clone)]
pub struct Context {
    /// This resource's parameters.
    pub params: Arc<ChallengeParams>,
    /// The request sent its token with `Authorization: DPoP`.
    pub used_dpop: bool,
}

/// One refusal's error, as RFC 6750 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal<'a> {
    /// `invalid_token`, `insufficient_scope`, `invalid_dpop_proof`, or `None` when no
    /// credential was sent (a bare challenge, RFC 6750 §3.1).
    pub error: Option<&'a str>,
    /// The sentence for the client.
    pub description: &'a str,
    /// For `insufficient_scope`: the scopes needed, space-separated.
    pub scope: Option<&'a str>,
}

/// The `WWW-Authenticate` values for `refusal` (one per scheme offered).
pub fn challenges(refusal: &Refusal<'_>, context: &Context) -> Vec<HeaderValue> {
    let params = &context.params;
    let dpop_error = refusal.error == Some("invalid_dpop_proof")
        || (refusal.error.is_some() && (context.used_dpop || params.dpop_required));
    let mut out = Vec::with_capacity(2);
    let mut push = |text: String| {
        if let Ok(value) = HeaderValue::from_str(&text) {
            out.push(value);
        }
    };
    if let Some(algs) = &params.dpop_algs {
        let error = if dpop_error { Some(refusal) } else { None };
        push(write("DPoP", error, params, Some(algs)));
    }
    if !params.dpop_required {
        let error = if dpop_error { None } else { Some(refusal) };
        push(write("Bearer", error, params, None));
    }
    // The error's own scheme first.
    if !dpop_error && out.len() == 2 {
        out.swap(0, 1);
    }
    out
}

/// One challenge: `scheme` with the refusal's parameters (if it carries the error), `algs`
/// for DPoP, and `resource_metadata`.
fn write(
    scheme: &str,
    refusal: Option<&Refusal<'_>>,
    params: &ChallengeParams,
    algs: Option<&str>,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(refusal) = refusal
        && let Some(error) = refusal.error
    {
        parts.push(format!("error=\"{}\"", quoted(error)));
        if !refusal.description.is_empty() {
            parts.push(format!("error_description=\"{}\"", quoted(refusal.description)));
        }
        if let Some(scope) = refusal.scope {
            parts.push(format!("scope=\"{}\"", quoted(scope)));
        }
    }
    if let Some(algs) = algs {
        parts.push(format!("algs=\"{}\"", quoted(algs)));
    }
    if let Some(url) = &params.resource_metadata {
        parts.push(format!("resource_metadata=\"{}\"", quoted(url)));
    }
    if parts.is_empty() {
        scheme.to_owned()
    } else {
        format!("{scheme} {}", parts.join(", "))
    }
}

/// A quoted-string's content: characters RFC 6750 allows there (printable ASCII but `"` and
/// `\`), anything else replaced by `'`.
pub fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '"' || c == '\\' || !(' '..='~').contains(&c) {
                '\''
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(dpop_algs: Option<&str>, dpop_required: bool, used_dpop: bool) -> Context {
        Context {
            params: Arc::new(ChallengeParams {
                resource_metadata: Some("https://api.test/.well-known/oauth-protected-resource".into()),
                dpop_algs: dpop_algs.map(str::to_owned),
                dpop_required,
            }),
            used_dpop,
        }
    }

    fn texts(values: Vec<HeaderValue>) -> Vec<String> {
        values.iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }

    const META: &str = r#"resource_metadata="https://api.test/.well-known/oauth-protected-resource""#;

    #[test]
    fn a_bearer_refusal_names_the_error_and_the_metadata_and_offers_dpop_bare() {
        let refusal = Refusal {
            error: Some("invalid_token"),
            description: "the token has \"expired\"\n",
            scope: None,
        };
        assert_eq!(
            texts(challenges(&refusal, &context(Some("ES256 EdDSA"), false, false))),
            vec![
                format!(
                    r#"Bearer error="invalid_token", error_description="the token has 'expired''", {META}"#
                ),
                format!(r#"DPoP algs="ES256 EdDSA", {META}"#),
            ]
        );
        assert_eq!(
            texts(challenges(&refusal, &context(None, false, false))),
            vec![format!(
                r#"Bearer error="invalid_token", error_description="the token has 'expired''", {META}"#
            )]
        );
    }

    #[test]
    fn no_credential_is_a_bare_challenge_and_insufficient_scope_names_the_scopes() {
        let none = Refusal {
            error: None,
            description: "send a token",
            scope: None,
        };
        assert_eq!(
            texts(challenges(&none, &context(None, false, false))),
            vec![format!("Bearer {META}")]
        );
        let scope = Refusal {
            error: Some("insufficient_scope"),
            description: "needs notes:write",
            scope: Some("notes:read notes:write"),
        };
        assert_eq!(
            texts(challenges(&scope, &context(None, false, false))),
            vec![format!(
                r#"Bearer error="insufficient_scope", error_description="needs notes:write", scope="notes:read notes:write", {META}"#
            )]
        );
    }

    /// Whatever a description or scope holds (a detail can quote client input), each challenge
    /// is one valid header value of the scheme and parameters written, every quoted string
    /// closed.
    #[test]
    fn any_text_in_a_refusal_gives_well_formed_challenges() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..5_000 {
            let text: String = (0..next() % 60)
                .map(|_| char::from_u32((next() % 0x3000) as u32).unwrap_or('x'))
                .collect();
            let refusal = Refusal {
                error: Some(["invalid_token", "insufficient_scope", "invalid_dpop_proof"][round % 3]),
                description: &text,
                scope: (round % 2 == 0).then_some(text.as_str()),
            };
            let all = challenges(&refusal, &context(Some("ES256"), round % 5 == 0, round % 7 == 0));
            assert!(!all.is_empty(), "{text:?}");
            for value in all {
                let value = value.to_str().expect("visible ASCII");
                assert!(
                    value.starts_with("Bearer") || value.starts_with("DPoP"),
                    "{value}"
                );
                assert_eq!(value.matches('"').count() % 2, 0, "{value}");
                assert!(!value.contains('\\'), "{value}");
            }
        }
    }

    #[test]
    fn dpop_failures_and_dpop_requests_are_dpop_challenges() {
        let proof = Refusal {
            error: Some("invalid_dpop_proof"),
            description: "replayed",
            scope: None,
        };
        assert_eq!(
            texts(challenges(&proof, &context(Some("ES256"), false, false))),
            vec![
                format!(
                    r#"DPoP error="invalid_dpop_proof", error_description="replayed", algs="ES256", {META}"#
                ),
                format!("Bearer {META}"),
            ]
        );
        let token = Refusal {
            error: Some("invalid_token"),
            description: "expired",
            scope: None,
        };
        assert_eq!(
            texts(challenges(&token, &context(Some("ES256"), false, true)))[0],
            format!(r#"DPoP error="invalid_token", error_description="expired", algs="ES256", {META}"#)
        );
        // Required: only DPoP is offered, and it carries every error.
        assert_eq!(
            texts(challenges(&token, &context(Some("ES256"), true, false))),
            vec![format!(
                r#"DPoP error="invalid_token", error_description="expired", algs="ES256", {META}"#
            )]
        );
    }
}

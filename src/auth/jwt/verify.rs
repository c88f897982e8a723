//! Token verification: from the compact JWS string to checked [`Claims`].
//!
//! The order matters and is fixed: size limit, structure, header (`alg` allow-list, `kid`,
//! `crit`), key lookup, algorithm agreement between header and key, signature, and only then
//! the payload and its claims. Nothing in the header chooses a key or an algorithm by itself:
//! `jwk`, `jku`, `x5u` and `x5c` are never read.
//!
//! Parsing is ours rather than `jsonwebtoken::decode`'s because `jsonwebtoken` cannot parse an
//! ES512 header at all; one parser and one claim check serve all five algorithms.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::auth::jwt::keys::{Alg, VerifyingKey};

/// Tokens longer than this are refused before any parsing (Better-Auth's are ~1 KiB).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Why a token was refused. Each message is safe to show to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Longer than [`MAX_TOKEN_LEN`]: refused before any parsing.
    #[error("the token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// Not three base64url parts, or a header or payload that is not a JSON object; says which.
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    /// The header's `alg` (its first 32 characters, carried here) is not one of the five
    /// accepted JOSE names: `none` and the HMAC algorithms never pass.
    #[error("the token's algorithm {0:?} is not accepted")]
    AlgNotAllowed(String),
    /// The header names no key (`kid` absent or empty).
    #[error("the token's header has no kid")]
    NoKid,
    /// The header has `crit`: extensions warden does not implement cannot be ignored.
    #[error("the token's header carries critical parameters warden does not understand")]
    Critical,
    /// The JWKS has no key with the token's `kid`.
    #[error("the token was signed with an unknown key")]
    UnknownKid,
    /// The header's `alg` is not the algorithm the key is pinned to.
    #[error("the token's algorithm does not match its key")]
    AlgMismatch,
    /// The signature does not verify with the key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` plus the leeway is past (or `exp` is not a finite number).
    #[error("the token has expired")]
    Expired,
    /// `nbf` minus the leeway is still ahead (or `nbf` is not a finite number).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// A required claim (`sub`, `exp`, `iss` or `aud`) is absent or null, or `sub` is empty;
    /// names it.
    #[error("the token has no {0} claim")]
    MissingClaim(&'static str),
    /// `iss` is not the accepted issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// `aud` names none of the accepted audiences.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// An OAuth access token (`typ: at+jwt`) where none is accepted (`RESOURCE_URL` unset).
    #[error(
        "the token is an OAuth access token (typ at+jwt), and this server accepts none: it has no RESOURCE_URL"
    )]
    AccessTokensNotAccepted,
    /// An OAuth access token for another resource: its `aud` does not name `RESOURCE_URL`.
    #[error("the access token is for another resource: its aud does not name this one")]
    WrongResource,
}

/// The rules an OAuth access token (`typ: at+jwt`, RFC 9068) must pass instead of
/// [`ClaimRules`]: Better-Auth's OAuth provider signs them with the same keys, but another
/// issuer (`<BETTER_AUTH_URL>/api/auth`) and the resource as audience.
#[derive(Debug, Clone)]
pub struct AccessTokenRules {
    /// The only accepted `iss` (`OAUTH_ISSUER`).
    pub issuer: String,
    /// This server's resource identifiers (`RESOURCE_URL`): `aud` must name one.
    pub resources: Vec<String>,
}

/// What kind of JWT a token is, by its header's `typ`: Better-Auth's session JWTs (the jwt
/// plugin's, `typ: JWT` or none) and OAuth access tokens (`typ: at+jwt`) are signed with the
/// same keys, so `typ` decides which rules a token must pass, and one is never taken for the
/// other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenKind {
    /// A session JWT: [`ClaimRules`].
    #[default]
    Session,
    /// An OAuth access token: [`AccessTokenRules`].
    Access,
}

/// The rules every token's claims must pass.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    /// The only accepted `iss` (`JWT_ISSUER`).
    pub issuer: String,
    /// The accepted audiences: a token's `aud` must name one (`JWT_AUDIENCE`).
    pub audience: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (`JWT_LEEWAY_SECS`).
    pub leeway_secs: u64,
}

/// The JOSE header members warden reads.
#[derive(Debug, Deserialize)]
pub struct Header {
    /// The algorithm the token claims to be signed with.
    pub alg: String,
    /// The id of the key it claims to be signed with.
    pub kid: Option<String>,
    /// Critical extensions: present at all, the token is refused.
    pub crit: Option<serde_json::Value>,
    /// The token's media type: `at+jwt` (or `application/at+jwt`) for an OAuth access token.
    pub typ: Option<String>,
}

/// The claims warden uses. Better-Auth's payload also carries the whole user record; it is
/// deliberately not trusted here: the user is read fresh from the database.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// When the token expires, in seconds since the Unix epoch.
    pub exp: f64,
    /// When the token was issued, in seconds since the Unix epoch (not checked).
    #[serde(default)]
    pub iat: Option<f64>,
    /// When the token becomes valid, in seconds since the Unix epoch.
    #[serde(default)]
    pub nbf: Option<f64>,
    /// The issuer: in a verified token, always `ClaimRules::issuer`.
    #[serde(default)]
    pub iss: Option<String>,
    /// The audience: in a verified token, always naming one of `ClaimRules::audience`.
    #[serde(default)]
    pub aud: Option<Audience>,
    /// Session id, added by warden's auth server through `jwt.definePayload`; in an OAuth
    /// access token, the session the user granted it from.
    #[serde(default)]
    pub sid: Option<String>,
    /// An OAuth access token's scopes, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// An OAuth access token's client (`client_id`, else `azp`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The authorized party: Better-Auth's OAuth provider writes the client id here too.
    #[serde(default)]
    pub azp: Option<String>,
    /// The confirmation claim: `cnf.jkt` binds an access token to a DPoP key (RFC 9449).
    #[serde(default)]
    pub cnf: Option<Confirmation>,
    /// Session JWT or OAuth access token, from the header's `typ`.
    #[serde(skip)]
    pub kind: TokenKind,
}

/// `cnf`, as RFC 7800 and RFC 9449 define it: only `jkt` is read.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// The SHA-256 thumbprint (RFC 7638) of the DPoP key the token is bound to.
    #[serde(default)]
    pub jkt: Option<String>,
}

impl Claims {
    /// The OAuth client an access token was issued to: `azp`, as the provider's introspection
    /// reads it (it writes `client_id` too, the same).
    pub fn client(&self) -> Option<&str> {
        self.azp.as_deref().or(self.client_id.as_deref())
    }

    /// Whether an access token's `scope` holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split_ascii_whitespace().any(|held| held == scope))
    }

    /// The DPoP key thumbprint an access token is bound to (`cnf.jkt`).
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref().and_then(|c| c.jkt.as_deref())
    }

    /// Bound to its client by another method than DPoP (`cnf` without `jkt`, e.g. mTLS's
    /// `x5t#S256`), which warden does not check: such a token is refused, not taken as unbound.
    pub fn bound_otherwise(&self) -> bool {
        self.cnf.as_ref().is_some_and(|c| c.jkt.is_none())
    }
}

/// `aud` is a string in Better-Auth's tokens, but RFC 7519 allows an array.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Audience {
    /// One audience, as Better-Auth writes it.
    One(String),
    /// Several audiences; one accepted is enough.
    Many(Vec<String>),
}

impl Audience {
    /// The heap bytes the audience holds.
    pub(crate) fn heap_len(&self) -> usize {
        match self {
            Self::One(a) => a.len(),
            Self::Many(all) => all.iter().map(|a| a.len() + 24).sum(),
        }
    }

    fn contains_any(&self, accepted: &[String]) -> bool {
        match self {
            Self::One(a) => accepted.iter().any(|x| x == a),
            Self::Many(all) => all.iter().any(|a| accepted.iter().any(|x| x == a)),
        }
    }
}

/// A token split and its header decoded; the signature is not checked yet.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The header's `alg`, one of the accepted five.
    pub alg: Alg,
    /// The header's `kid` (never empty): the key to look up.
    pub kid: String,
    /// Session JWT or OAuth access token, by the header's `typ`.
    pub kind: TokenKind,
    signing_input: &'a [u8],
    payload_b64: &'a str,
    signature: Vec<u8>,
}

/// Steps 1–3: size, structure, header. Cheap, and refuses most garbage before any key lookup.
pub fn parse(token: &str) -> Result<Parsed<'_>, VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::TooLong);
    }
    let mut parts = token.splitn(4, '.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed("expected three dot-separated parts"));
    };
    let header_bytes = b64(header_b64, "header is not base64url")?;
    let header: Header = serde_json::from_slice(&header_bytes)
        .map_err(|_| VerifyError::Malformed("header is not a JSON object"))?;
    let alg = match Alg::from_name(&header.alg) {
        // `Ed25519` is a curve name, not a JWS alg: only exact JOSE names pass.
        Some(alg) if alg.name() == header.alg => alg,
        _ => return Err(VerifyError::AlgNotAllowed(truncate(&header.alg))),
    };
    if header.crit.is_some() {
        return Err(VerifyError::Critical);
    }
    let kid = header.kid.filter(|k| !k.is_empty()).ok_or(VerifyError::NoKid)?;
    let kind = match header.typ.as_deref() {
        Some(t) if t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt") => {
            TokenKind::Access
        }
        _ => TokenKind::Session,
    };
    let signature = b64(signature_b64, "signature is not base64url")?;
    let signing_input = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    Ok(Parsed {
        alg,
        kid,
        kind,
        signing_input,
        payload_b64,
        signature,
    })
}

impl Parsed<'_> {
    /// Steps 4–6: algorithm agreement, signature, claims: a session JWT's by `rules`, an OAuth
    /// access token's by `access` (refused when there are none).
    pub fn verify(
        &self,
        key: &VerifyingKey,
        rules: &ClaimRules,
        access: Option<&AccessTokenRules>,
        now_secs: f64,
    ) -> Result<Claims, VerifyError> {
        if self.kind == TokenKind::Access && access.is_none() {
            return Err(VerifyError::AccessTokensNotAccepted);
        }
        if key.alg() != self.alg {
            return Err(VerifyError::AlgMismatch);
        }
        if !key.verify(self.signing_input, &self.signature) {
            return Err(VerifyError::BadSignature);
        }
        let payload = b64(self.payload_b64, "payload is not base64url")?;
        let value: serde_json::Value =
            serde_json::from_slice(&payload).map_err(|_| VerifyError::Malformed("payload is not JSON"))?;
        let object = value
            .as_object()
            .ok_or(VerifyError::Malformed("payload is not a JSON object"))?;
        for claim in ["sub", "exp"] {
            if object.get(claim).is_none_or(|v| v.is_null()) {
                return Err(VerifyError::MissingClaim(claim));
            }
        }
        let mut claims: Claims = serde_json::from_value(value)
            .map_err(|_| VerifyError::Malformed("a registered claim has the wrong type"))?;
        claims.kind = self.kind;
        match access {
            Some(access) if self.kind == TokenKind::Access => {
                check_access_claims(&claims, access, rules, now_secs)?
            }
            _ => check_claims(&claims, rules, now_secs)?,
        }
        Ok(claims)
    }
}

fn check_claims(claims: &Claims, rules: &ClaimRules, now: f64) -> Result<(), VerifyError> {
    check_times(claims, rules.leeway_secs, now)?;
    match &claims.iss {
        Some(iss) if *iss == rules.issuer => {}
        Some(_) => return Err(VerifyError::WrongIssuer),
        None => return Err(VerifyError::MissingClaim("iss")),
    }
    match &claims.aud {
        Some(aud) if aud.contains_any(&rules.audience) => {}
        Some(_) => return Err(VerifyError::WrongAudience),
        None => return Err(VerifyError::MissingClaim("aud")),
    }
    Ok(())
}

/// `sub` present, `exp` not past and `nbf` not ahead (each with the leeway).
fn check_times(claims: &Claims, leeway_secs: u64, now: f64) -> Result<(), VerifyError> {
    let leeway = leeway_secs as f64;
    if claims.sub.is_empty() {
        return Err(VerifyError::MissingClaim("sub"));
    }
    if !claims.exp.is_finite() || claims.exp + leeway <= now {
        return Err(VerifyError::Expired);
    }
    if let Some(nbf) = claims.nbf
        && (!nbf.is_finite() || nbf - leeway > now)
    {
        return Err(VerifyError::NotYetValid);
    }
    Ok(())
}

/// An access token's claims: the times as for any token, then its issuer, its resource and
/// its client.
fn check_access_claims(
    claims: &Claims,
    access: &AccessTokenRules,
    rules: &ClaimRules,
    now: f64,
) -> Result<(), VerifyError> {
    // No leeway: the provider's introspection allows none, and an access token is warden's
    // to refuse the moment the provider would.
    let _ = rules;
    check_times(claims, 0, now)?;
    match &claims.iss {
        Some(iss) if *iss == access.issuer => {}
        Some(_) => return Err(VerifyError::WrongIssuer),
        None => return Err(VerifyError::MissingClaim("iss")),
    }
    match &claims.aud {
        Some(aud) if aud.contains_any(&access.resources) => {}
        Some(_) => return Err(VerifyError::WrongResource),
        None => return Err(VerifyError::MissingClaim("aud")),
    }
    // The provider's introspection calls a token without `azp` inactive.
    if claims.azp.as_deref().is_none_or(str::is_empty) {
        return Err(VerifyError::MissingClaim("azp"));
    }
    Ok(())
}

fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed(what))
}

/// Keeps attacker-chosen strings short in messages.
fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

/// Seconds since the Unix epoch, as JWT NumericDate.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn header_is_checked_before_any_key_is_looked_up() {
        assert_eq!(
            parse(&"a".repeat(MAX_TOKEN_LEN + 1)).unwrap_err(),
            VerifyError::TooLong
        );
        assert!(matches!(parse("abc").unwrap_err(), VerifyError::Malformed(_)));
        assert!(matches!(parse("a.b.c.d").unwrap_err(), VerifyError::Malformed(_)));
        for alg in ["none", "HS256", "HS512", "Ed25519", "RS512", "eddsa"] {
            let t = token(&format!(r#"{{"alg":"{alg}","kid":"k"}}"#), "{}");
            assert_eq!(
                parse(&t).unwrap_err(),
                VerifyError::AlgNotAllowed(alg.into()),
                "{alg}"
            );
        }
        let t = token(r#"{"alg":"EdDSA"}"#, "{}");
        assert_eq!(parse(&t).unwrap_err(), VerifyError::NoKid);
        let t = token(r#"{"alg":"EdDSA","kid":"k","crit":["b64"]}"#, "{}");
        assert_eq!(parse(&t).unwrap_err(), VerifyError::Critical);
        let t = token(r#"{"alg":"ES512","kid":"k"}"#, "{}");
        assert_eq!(parse(&t).unwrap().alg, Alg::Es512);
    }

    #[test]
    fn claims_rules() {
        let rules = ClaimRules {
            issuer: "https://a".into(),
            audience: vec!["https://a".into()],
            leeway_secs: 30,
        };
        let base = Claims {
            sub: "u".into(),
            exp: 1000.0,
            iat: None,
            nbf: None,
            iss: Some("https://a".into()),
            aud: Some(Audience::One("https://a".into())),
            sid: None,
            scope: None,
            client_id: None,
            azp: None,
            cnf: None,
            kind: TokenKind::Session,
        };
        assert_eq!(check_claims(&base, &rules, 1020.0), Ok(()));
        assert_eq!(check_claims(&base, &rules, 1031.0), Err(VerifyError::Expired));
        let c = Claims {
            nbf: Some(1100.0),
            ..base.clone()
        };
        assert_eq!(check_claims(&c, &rules, 1000.0), Err(VerifyError::NotYetValid));
        let c = Claims {
            iss: Some("https://b".into()),
            ..base.clone()
        };
        assert_eq!(check_claims(&c, &rules, 900.0), Err(VerifyError::WrongIssuer));
        let c = Claims {
            aud: Some(Audience::Many(vec!["x".into(), "https://a".into()])),
            ..base.clone()
        };
        assert_eq!(check_claims(&c, &rules, 900.0), Ok(()));
        let c = Claims {
            aud: Some(Audience::Many(vec!["x".into()])),
            ..base.clone()
        };
        assert_eq!(check_claims(&c, &rules, 900.0), Err(VerifyError::WrongAudience));
        let c = Claims { aud: None, ..base };
        assert_eq!(
            check_claims(&c, &rules, 900.0),
            Err(VerifyError::MissingClaim("aud"))
        );
    }
}

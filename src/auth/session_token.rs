//! Better-Auth session tokens as bearer credentials, as its `bearer` plugin accepts them:
//! the raw `session.token` (32 characters) or the signed cookie form
//! `token.base64(HMAC-SHA256(BETTER_AUTH_SECRET, token))`, possibly URL-encoded.
//!
//! The signature is checked in constant time when `BETTER_AUTH_SECRET` is configured. Without
//! the secret, the signed form is reduced to its token part: Better-Auth accepts the raw token
//! anyway, so the signature adds no protection a client could not skip. With
//! `REQUIRE_SIGNED_SESSION_TOKENS` (the bearer plugin's `requireSignature`), the raw form is
//! refused: a guess then needs the secret, and junk never reaches the database.
//!
//! `UnknownTokens` remembers, for a minute, tokens that matched no live session, so a flood
//! of junk tokens costs one query each at most once.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use crate::secret::Secret;

/// Session tokens are short; anything longer is not one.
const MAX_SESSION_TOKEN_LEN: usize = 256;

/// Why a credential is not a usable session token. Each message is safe to show to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionTokenError {
    /// Empty or too long, bad percent-encoding or base64, or characters no token has.
    #[error("it has a length, characters or an encoding no session token has")]
    Malformed,
    /// Signed, but not with `BETTER_AUTH_SECRET`.
    #[error("its signature (token.signature) is not BETTER_AUTH_SECRET's")]
    BadSignature,
    /// The raw token, where only the signed form is accepted.
    #[error("session tokens must be signed (token.signature), as Better-Auth hands them out")]
    Unsigned,
}

/// Whether a bearer credential is a JWT (three dot-separated parts) rather than a session token.
///
/// Every request asks this of a 300–900 byte token. The dots are counted with a byte-wide
/// counter per 255-byte chunk, which the compiler turns into 16 bytes a step; counted into a
/// `usize` byte by byte, it took 4 bytes a step: about 2,000 of the hot request's 77,000
/// instructions (`bench/load.py instructions`, BENCHMARKS.md).
pub fn looks_like_jwt(token: &str) -> bool {
    let dots = token
        .as_bytes()
        .chunks(255)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'.')))
        })
        .map(usize::from)
        .sum::<usize>();
    dots == 2
}

/// A session token as a credential presented it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    /// The raw token (`session.token`).
    pub token: String,
    /// Whether its HMAC was checked and is Better-Auth's: only Better-Auth (or whoever holds
    /// `BETTER_AUTH_SECRET`) can have made it, so looking it up is no guess.
    pub signed: bool,
}

/// The raw session token inside `credential`, its signature checked when a secret is set; with
/// `require_signature`, an unsigned credential is refused.
pub fn session_token(
    credential: &str,
    secret: Option<&Secret>,
    require_signature: bool,
) -> Result<SessionToken, SessionTokenError> {
    if credential.is_empty() || credential.len() > MAX_SESSION_TOKEN_LEN {
        return Err(SessionTokenError::Malformed);
    }
    let decoded = if credential.contains('%') {
        percent_decode(credential)?
    } else {
        credential.to_owned()
    };
    let Some((token, signature)) = decoded.split_once('.') else {
        if require_signature {
            return Err(SessionTokenError::Unsigned);
        }
        return Ok(SessionToken {
            token: valid_token(decoded)?,
            signed: false,
        });
    };
    let token = token.to_owned();
    let Some(secret) = secret else {
        return Ok(SessionToken {
            token: valid_token(token)?,
            signed: false,
        });
    };
    let signature = decode_base64(signature).ok_or(SessionTokenError::Malformed)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    // aws-lc-rs compares in constant time.
    hmac::verify(&key, token.as_bytes(), &signature).map_err(|_| SessionTokenError::BadSignature)?;
    Ok(SessionToken {
        token: valid_token(token)?,
        signed: true,
    })
}

fn valid_token(token: String) -> Result<String, SessionTokenError> {
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SessionTokenError::Malformed);
    }
    Ok(token)
}

/// Standard or URL-safe base64, with or without padding (Better-Auth writes standard, padded).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .ok()
}

fn percent_decode(text: &str) -> Result<String, SessionTokenError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(SessionTokenError::Malformed)?;
            let hex = std::str::from_utf8(hex).map_err(|_| SessionTokenError::Malformed)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| SessionTokenError::Malformed)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SessionTokenError::Malformed)
}

/// Why a session token was refused, remembered for a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No session has it (never issued, signed out, revoked).
    Unknown,
    /// Its session has expired (Better-Auth never extends an expired session).
    Expired,
}

/// Session tokens recently refused (by SHA-256), for a minute: each costs one read at most
/// once a minute, however often it is sent.
#[derive(Clone)]
pub(crate) struct UnknownTokens(moka::sync::Cache<[u8; 32], Refused>);

impl std::fmt::Debug for UnknownTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UnknownTokens")
            .field(&self.0.entry_count())
            .finish()
    }
}

impl Default for UnknownTokens {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(60))
                .build(),
        )
    }
}

impl UnknownTokens {
    fn key(token: &str) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref());
        key
    }

    /// Why `token` was refused within the last minute, if it was.
    pub fn refused(&self, token: &str) -> Option<Refused> {
        self.0.get(&Self::key(token))
    }

    /// Whether `token` matched no live session within the last minute.
    pub fn contains(&self, token: &str) -> bool {
        self.refused(token).is_some()
    }

    /// Remembers that `token` matched no session.
    pub fn insert(&self, token: &str) {
        self.remember(token, Refused::Unknown);
    }

    /// Remembers why `token` was refused.
    pub fn remember(&self, token: &str, why: Refused) {
        self.0.insert(Self::key(token), why);
    }
}

/// The signed form Better-Auth hands out (`set-auth-token`), for tests and tools.
pub fn sign(token: &str, secret: &Secret) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    let tag = hmac::sign(&key, token.as_bytes());
    format!(
        "{token}.{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_signed_and_url_encoded_forms() {
        let secret = Secret::new("better-auth-secret");
        let token = "AbCdEfGhIjKlMnOpQrStUvWxYz012345";
        assert_eq!(session_token(token, Some(&secret), false).unwrap().token, token);
        let signed = sign(token, &secret);
        assert_eq!(session_token(&signed, Some(&secret), false).unwrap().token, token);
        let encoded = signed.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        assert_eq!(
            session_token(&encoded, Some(&secret), false).unwrap().token,
            token
        );
        // Without the secret, the signed form is reduced to its token.
        assert_eq!(session_token(&signed, None, false).unwrap().token, token);
        // Only a checked HMAC says who made it.
        assert!(session_token(&signed, Some(&secret), false).unwrap().signed);
        assert!(!session_token(&signed, None, false).unwrap().signed);
        assert!(!session_token(token, Some(&secret), false).unwrap().signed);
        // requireSignature: the raw form is refused, the signed one accepted.
        assert_eq!(
            session_token(token, Some(&secret), true),
            Err(SessionTokenError::Unsigned)
        );
        assert_eq!(session_token(&signed, Some(&secret), true).unwrap().token, token);

        let other = sign(token, &Secret::new("another-secret"));
        assert_eq!(
            session_token(&other, Some(&secret), false),
            Err(SessionTokenError::BadSignature)
        );
        let swapped = format!("{}x.{}", token, signed.split_once('.').unwrap().1);
        assert_eq!(
            session_token(&swapped, Some(&secret), false),
            Err(SessionTokenError::BadSignature)
        );
        for bad in ["", "a b", "tok'en", "%zz", "x.%%%", &"a".repeat(300)] {
            assert!(session_token(bad, Some(&secret), false).is_err(), "{bad:?}");
        }
        assert!(looks_like_jwt("a.b.c") && !looks_like_jwt(&signed) && !looks_like_jwt(token));
    }

    #[test]
    fn a_jwt_has_exactly_two_dots_wherever_they_fall() {
        let naive = |t: &str| t.bytes().filter(|b| *b == b'.').count() == 2;
        let mut cases = vec![String::new(), ".".repeat(255), ".".repeat(256), ".".repeat(512)];
        // One to three dots on either side of each chunk boundary, in a 900-byte token.
        for first in [0, 1, 253, 254, 255, 256, 509, 510, 899] {
            for second in [254, 255, 509, 510, 511, 765, 898] {
                let mut t = vec![b'a'; 900];
                t[first] = b'.';
                t[second] = b'.';
                cases.push(String::from_utf8(t.clone()).unwrap());
                t[600] = b'.';
                cases.push(String::from_utf8(t).unwrap());
            }
        }
        for t in &cases {
            assert_eq!(looks_like_jwt(t), naive(t), "{} bytes", t.len());
        }
        assert!(looks_like_jwt("a.b.c") && !looks_like_jwt("a.b") && !looks_like_jwt("a.b.c.d"));
    }
}

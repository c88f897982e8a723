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
//! [`super::refused`] remembers, for a minute, tokens that matched no live session, so a
//! flood of junk tokens costs one query each at most once.

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

/// The signed form Better-Auth hands out (`set-auth-token`), for tests and tools.
#[cfg(any(test, feature = "testing"))]
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
    }
}

//! The JWT machinery: Better-Auth's JWTs from compact text to checked claims.
//!
//! - [`keys`]: one JWK → one [`keys::VerifyingKey`] with its algorithm pinned; key sets.
//! - [`jwks`]: the cache of Better-Auth's JWKS (fetch, refresh, single-flight, fallback to the
//!   database's `jwks` table) and its settings.
//! - [`verify`]: a compact JWS → checked [`verify::Claims`] (structure, algorithm, signature,
//!   claims), for all five algorithms Better-Auth signs with.
//! - [`tokens`]: verified tokens by hash, so each distinct token's signature is checked once.
//! - [`verifier`]: [`Verifier`], the protocol that ties them together: the token cache first;
//!   on a miss, the key (a JWKS fetch only when the caller allows it), the check, and the
//!   verified claims kept until the token expires.
//!
//! Nothing here knows about requests, users or sessions: [`crate::auth::request`] decides
//! whose token it is.

pub mod jwks;
pub mod keys;
pub mod tokens;
pub mod verifier;
pub mod verify;

pub use verifier::{DEFAULT_TOKEN_CACHE_BYTES, Verifier};

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

#[cfg(test)]
mod tests {
    use super::looks_like_jwt;

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

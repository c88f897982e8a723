//! Public keys: one JWK in, one [`VerifyingKey`] out, with its algorithm pinned.
//!
//! The algorithm a key verifies comes from the key itself (`kty`, `crv` and `alg` must agree),
//! never from a token's header: a token whose header names another algorithm is refused by
//! [`crate::auth::jwt::verify`]. Symmetric keys (`oct`), `none`, and anything we cannot check are
//! rejected here, so they never enter a key set.
//!
//! A DPoP proof (RFC 9449) carries its own key in its header: [`VerifyingKey::from_proof_jwk`]
//! takes it without a `kid`, refuses anything private in it, and requires its type to fit the
//! algorithm the proof's header names, so the header never picks a weaker verification.
//!
//! Four algorithms go through `jsonwebtoken` (on aws-lc-rs); ES512 (P-521) goes straight to
//! aws-lc-rs, because `jsonwebtoken` has no ES512. Both sit behind [`VerifyingKey::verify`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P521_SHA512_FIXED, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// The signature algorithms Better-Auth's jwt plugin can sign with, and no others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// EdDSA on Ed25519 (Better-Auth's default).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-521 with SHA-512.
    Es512,
}

impl Alg {
    /// The JOSE name (`alg` header / JWK parameter).
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::Es512 => "ES512",
        }
    }

    /// The algorithm a JWK's `alg` names: a JOSE name, or `Ed25519` (a curve name some
    /// JWKs use; a token's header must use the exact JOSE name, see [`crate::auth::jwt::verify`]).
    /// `None` for anything else, `none` and the HMAC algorithms included.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "EdDSA" | "Ed25519" => Self::EdDsa,
            "RS256" => Self::Rs256,
            "PS256" => Self::Ps256,
            "ES256" => Self::Es256,
            "ES512" => Self::Es512,
            _ => return None,
        })
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a JWK was not taken into the key set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The JWK has no `kid`, or an empty one: no token could name it.
    #[error("key has no kid")]
    NoKid,
    /// A key type or curve Better-Auth does not sign with (symmetric `oct` keys included).
    #[error("unsupported key type or curve: kty={kty:?} crv={crv:?}")]
    Unsupported {
        /// The JWK's `kty`.
        kty: String,
        /// The JWK's `crv`, if it has one.
        crv: Option<String>,
    },
    /// The JWK's `alg` is not the algorithm its key type and curve allow.
    #[error("unsupported or mismatched alg {alg:?} for kty={kty:?} crv={crv:?}")]
    AlgMismatch {
        /// The JWK's `alg`.
        alg: String,
        /// The JWK's `kty`.
        kty: String,
        /// The JWK's `crv`, if it has one.
        crv: Option<String>,
    },
    /// An RSA key without `alg`: it could be for RS256 or for PS256.
    #[error("RSA key without alg: RS256 and PS256 cannot be told apart")]
    RsaWithoutAlg,
    /// The JWK's `use` (carried here) is not `sig`.
    #[error("key is not for signatures (use={0:?})")]
    NotForSignatures(String),
    /// Key material missing, not base64url, or of the wrong size (RSA moduli under 2048 bits
    /// included); says which.
    #[error("malformed key material: {0}")]
    Malformed(&'static str),
    /// The JWK carries private key material (`d`, RSA's `p`, `q`, `dp`, `dq`, `qi`, `oth`, or
    /// a symmetric `k`): a key sent over the wire must be public only.
    #[error("the key carries private material")]
    Private,
}

/// JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The JWK members we read. Everything else (`use`, `key_ops`, `x5c`, ...) is ignored.
#[derive(Debug, Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

enum Material {
    Jwt(DecodingKey, Algorithm),
    P521(UnparsedPublicKey<Vec<u8>>),
}

/// A public key ready to check signatures for exactly one algorithm.
pub struct VerifyingKey {
    kid: String,
    alg: Alg,
    material: Material,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

impl VerifyingKey {
    /// The key's id, which a token names in its `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Parses one JWK (as JSON) and pins its algorithm.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Self, KeyError> {
        let raw: RawJwk =
            serde_json::from_value(jwk.clone()).map_err(|_| KeyError::Malformed("not a JWK object"))?;
        Self::from_raw(raw)
    }

    /// Parses the public JWK a DPoP proof carries in its header, for the algorithm `alg` the
    /// proof's header names. Unlike [`Self::from_jwk`], no `kid` is needed ([`Self::kid`] is
    /// then the JWK's `kid` or empty). Refused: private members ([`KeyError::Private`]), a key
    /// type or curve that does not sign with `alg`, a JWK `alg` other than `alg`, a `use` other
    /// than `sig`.
    pub fn from_proof_jwk(jwk: &serde_json::Value, alg: Alg) -> Result<Self, KeyError> {
        let object = jwk.as_object().ok_or(KeyError::Malformed("not a JWK object"))?;
        if PRIVATE_MEMBERS.iter().any(|m| object.contains_key(*m)) {
            return Err(KeyError::Private);
        }
        let raw: RawJwk =
            serde_json::from_value(jwk.clone()).map_err(|_| KeyError::Malformed("not a JWK object"))?;
        check_use(&raw)?;
        let by_key = alg_of_key(&raw)?;
        let fits = match by_key {
            Some(by_key) => by_key == alg,
            None => matches!(alg, Alg::Rs256 | Alg::Ps256),
        };
        // A JWK `alg`, when present, must name the header's algorithm exactly.
        if !fits || raw.alg.as_deref().is_some_and(|named| named != alg.name()) {
            return Err(KeyError::AlgMismatch {
                alg: alg.name().to_owned(),
                kty: raw.kty.clone(),
                crv: raw.crv.clone(),
            });
        }
        let kid = raw.kid.clone().unwrap_or_default();
        Self::with_material(kid, alg, &raw)
    }

    fn from_raw(raw: RawJwk) -> Result<Self, KeyError> {
        let kid = raw.kid.clone().filter(|k| !k.is_empty()).ok_or(KeyError::NoKid)?;
        check_use(&raw)?;
        let by_key = alg_of_key(&raw)?;
        let mismatch = || KeyError::AlgMismatch {
            alg: raw.alg.clone().unwrap_or_default(),
            kty: raw.kty.clone(),
            crv: raw.crv.clone(),
        };
        let alg = match (by_key, raw.alg.as_deref()) {
            (Some(alg), None) => alg,
            (Some(alg), Some(named)) if Alg::from_name(named) == Some(alg) => alg,
            (None, Some("RS256")) => Alg::Rs256,
            (None, Some("PS256")) => Alg::Ps256,
            (None, None) => return Err(KeyError::RsaWithoutAlg),
            _ => return Err(mismatch()),
        };
        Self::with_material(kid, alg, &raw)
    }

    /// Decodes the key material of `raw` for `alg` (already known to fit its key type).
    fn with_material(kid: String, alg: Alg, raw: &RawJwk) -> Result<Self, KeyError> {
        let field = |v: &Option<String>, name: &'static str| -> Result<Vec<u8>, KeyError> {
            let text = v.as_deref().ok_or(KeyError::Malformed(name))?;
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|_| KeyError::Malformed(name))
        };
        let material = match alg {
            Alg::EdDsa => {
                let x = field(&raw.x, "x")?;
                if x.len() != 32 {
                    return Err(KeyError::Malformed("Ed25519 x must be 32 bytes"));
                }
                Material::Jwt(DecodingKey::from_ed_der(&x), Algorithm::EdDSA)
            }
            Alg::Es256 => {
                let point = ec_point(&field(&raw.x, "x")?, &field(&raw.y, "y")?, 32)?;
                Material::Jwt(DecodingKey::from_ec_der(&point), Algorithm::ES256)
            }
            Alg::Es512 => {
                let point = ec_point(&field(&raw.x, "x")?, &field(&raw.y, "y")?, 66)?;
                Material::P521(UnparsedPublicKey::new(&ECDSA_P521_SHA512_FIXED, point))
            }
            Alg::Rs256 | Alg::Ps256 => {
                let n = field(&raw.n, "n")?;
                let e = field(&raw.e, "e")?;
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                if bits < 2048 {
                    return Err(KeyError::Malformed("RSA modulus shorter than 2048 bits"));
                }
                if e.is_empty() || e.len() > 8 {
                    return Err(KeyError::Malformed("RSA exponent"));
                }
                let algorithm = if alg == Alg::Rs256 {
                    Algorithm::RS256
                } else {
                    Algorithm::PS256
                };
                Material::Jwt(DecodingKey::from_rsa_raw_components(&n, &e), algorithm)
            }
        };
        Ok(Self { kid, alg, material })
    }

    /// Checks `signature` (raw bytes) over `message` (the JWS signing input).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Jwt(key, algorithm) => {
                // jsonwebtoken's verify takes the signature base64url-encoded.
                let encoded = URL_SAFE_NO_PAD.encode(signature);
                jsonwebtoken::crypto::verify(&encoded, message, key, *algorithm).unwrap_or(false)
            }
            Material::P521(key) => key.verify(message, signature).is_ok(),
        }
    }
}

/// Rejects a JWK whose `use` is present and not `sig`.
fn check_use(raw: &RawJwk) -> Result<(), KeyError> {
    match &raw.use_ {
        Some(u) if u != "sig" => Err(KeyError::NotForSignatures(u.clone())),
        _ => Ok(()),
    }
}

/// What the key type and curve allow: one algorithm, or `None` for RSA (RS256 or PS256: the
/// JWK's or the proof's `alg` decides); an error for any other key type or curve.
fn alg_of_key(raw: &RawJwk) -> Result<Option<Alg>, KeyError> {
    match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("OKP", Some("Ed25519")) => Ok(Some(Alg::EdDsa)),
        ("EC", Some("P-256")) => Ok(Some(Alg::Es256)),
        ("EC", Some("P-521")) => Ok(Some(Alg::Es512)),
        ("RSA", _) => Ok(None),
        _ => Err(KeyError::Unsupported {
            kty: raw.kty.clone(),
            crv: raw.crv.clone(),
        }),
    }
}

fn ec_point(x: &[u8], y: &[u8], coordinate_len: usize) -> Result<Vec<u8>, KeyError> {
    if x.len() != coordinate_len || y.len() != coordinate_len {
        return Err(KeyError::Malformed(
            "EC coordinates have the wrong length for the curve",
        ));
    }
    let mut point = Vec::with_capacity(1 + 2 * coordinate_len);
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    Ok(point)
}

/// An immutable set of keys by `kid`. Swapped whole when a fetch brings a new one.
#[derive(Debug, Default, Clone)]
pub struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
}

/// A JWK that was left out of a key set, and why (for the log).
#[derive(Debug)]
pub struct Skipped {
    /// The JWK's `kid`, if it has one.
    pub kid: Option<String>,
    /// Why it was left out.
    pub error: KeyError,
}

/// Why a whole JWKS document was refused.
#[derive(Debug, thiserror::Error)]
pub enum JwksParseError {
    /// The body is not JSON of the form `{"keys": [...]}`; carries the parser's message.
    #[error("not a JWKS document: {0}")]
    NotJwks(String),
}

impl KeySet {
    /// Parses a JWKS document (`{"keys":[...]}`). Keys we cannot use are skipped and
    /// returned so the caller can log them; a document that is not a JWKS at all is an error.
    pub fn from_jwks_json(body: &[u8]) -> Result<(Self, Vec<Skipped>), JwksParseError> {
        #[derive(Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(body).map_err(|e| JwksParseError::NotJwks(e.to_string()))?;
        Ok(Self::from_jwks(doc.keys.iter()))
    }

    /// Builds a key set from JWK values, skipping (and reporting) the unusable ones.
    pub fn from_jwks<'a>(jwks: impl IntoIterator<Item = &'a serde_json::Value>) -> (Self, Vec<Skipped>) {
        let mut set = Self::default();
        let mut skipped = Vec::new();
        for jwk in jwks {
            match VerifyingKey::from_jwk(jwk) {
                Ok(key) => set.insert(key),
                Err(error) => skipped.push(Skipped {
                    kid: jwk.get("kid").and_then(|k| k.as_str()).map(str::to_owned),
                    error,
                }),
            }
        }
        (set, skipped)
    }

    /// Adds `key`, replacing any key with the same `kid`.
    pub fn insert(&mut self, key: VerifyingKey) {
        self.keys.insert(key.kid.clone(), Arc::new(key));
    }

    /// Adds every key of `other` that this set does not have.
    pub fn merge_missing(&mut self, other: &KeySet) {
        for (kid, key) in &other.keys {
            self.keys.entry(kid.clone()).or_insert_with(|| Arc::clone(key));
        }
    }

    /// The key with this `kid`, if the set has it.
    pub fn get(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.keys.get(kid)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key at all (then no token can be verified).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The algorithms present, for logs and readiness.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<_> = self.keys.values().map(|k| k.alg.name()).collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn algorithm_comes_from_the_key() {
        let x32 = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let ok = VerifyingKey::from_jwk(&json!({"kty":"OKP","crv":"Ed25519","x":x32,"kid":"a"})).unwrap();
        assert_eq!(ok.alg(), Alg::EdDsa);
        // A JWK claiming another algorithm than its curve allows is refused.
        let err =
            VerifyingKey::from_jwk(&json!({"kty":"OKP","crv":"Ed25519","x":x32,"kid":"a","alg":"ES256"}));
        assert!(matches!(err, Err(KeyError::AlgMismatch { .. })));
        // Symmetric keys never enter a key set.
        let err = VerifyingKey::from_jwk(&json!({"kty":"oct","k":"c2VjcmV0","kid":"h","alg":"HS256"}));
        assert!(matches!(err, Err(KeyError::Unsupported { .. })));
        // RSA without alg is ambiguous.
        let n = URL_SAFE_NO_PAD.encode([0xffu8; 256]);
        let err = VerifyingKey::from_jwk(&json!({"kty":"RSA","n":n,"e":"AQAB","kid":"r"}));
        assert_eq!(err.unwrap_err(), KeyError::RsaWithoutAlg);
        let short = URL_SAFE_NO_PAD.encode([0xffu8; 128]);
        let err = VerifyingKey::from_jwk(&json!({"kty":"RSA","n":short,"e":"AQAB","kid":"r","alg":"RS256"}));
        assert!(matches!(err, Err(KeyError::Malformed(_))));
        let err = VerifyingKey::from_jwk(&json!({"kty":"OKP","crv":"Ed25519","x":x32}));
        assert_eq!(err.unwrap_err(), KeyError::NoKid);
        let err = VerifyingKey::from_jwk(&json!({"kty":"OKP","crv":"Ed25519","x":x32,"kid":"e","use":"enc"}));
        assert!(matches!(err, Err(KeyError::NotForSignatures(_))));
    }

    #[test]
    fn a_proof_key_is_public_needs_no_kid_and_fits_the_header_alg() {
        let x32 = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let ed = json!({"kty":"OKP","crv":"Ed25519","x":x32});
        let key = VerifyingKey::from_proof_jwk(&ed, Alg::EdDsa).unwrap();
        assert_eq!((key.kid(), key.alg()), ("", Alg::EdDsa));
        // The key type decides; the header's alg must be the one it allows.
        assert!(matches!(
            VerifyingKey::from_proof_jwk(&ed, Alg::Es256),
            Err(KeyError::AlgMismatch { .. })
        ));
        let with_alg = json!({"kty":"OKP","crv":"Ed25519","x":x32,"alg":"Ed25519"});
        assert!(matches!(
            VerifyingKey::from_proof_jwk(&with_alg, Alg::EdDsa),
            Err(KeyError::AlgMismatch { .. })
        ));
        // RSA: either of its two algorithms, as the header says.
        let n = URL_SAFE_NO_PAD.encode([0xffu8; 256]);
        let rsa = json!({"kty":"RSA","n":n,"e":"AQAB"});
        assert_eq!(
            VerifyingKey::from_proof_jwk(&rsa, Alg::Ps256).unwrap().alg(),
            Alg::Ps256
        );
        assert!(VerifyingKey::from_proof_jwk(&rsa, Alg::EdDsa).is_err());
        // Private members, whatever the key type.
        for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            let mut private = rsa.clone();
            private[member] = json!("AQAB");
            assert_eq!(
                VerifyingKey::from_proof_jwk(&private, Alg::Rs256).unwrap_err(),
                KeyError::Private,
                "{member}"
            );
        }
        let oct = json!({"kty":"oct","k":"c2VjcmV0"});
        assert_eq!(
            VerifyingKey::from_proof_jwk(&oct, Alg::EdDsa).unwrap_err(),
            KeyError::Private
        );
        let oct = json!({"kty":"oct"});
        assert!(matches!(
            VerifyingKey::from_proof_jwk(&oct, Alg::EdDsa),
            Err(KeyError::Unsupported { .. })
        ));
        assert!(VerifyingKey::from_proof_jwk(&json!("jwk"), Alg::EdDsa).is_err());
        // `from_jwk` is unchanged: a key set's JWK still needs its kid.
        assert_eq!(VerifyingKey::from_jwk(&ed).unwrap_err(), KeyError::NoKid);
    }

    #[test]
    fn jwks_document_skips_bad_keys_and_rejects_garbage() {
        let x32 = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let body =
            json!({"keys":[{"kty":"OKP","crv":"Ed25519","x":x32,"kid":"a","alg":"EdDSA"},{"kty":"X"},42]});
        let (set, skipped) = KeySet::from_jwks_json(body.to_string().as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(skipped.len(), 2);
        assert!(KeySet::from_jwks_json(b"<html>").is_err());
        assert!(KeySet::from_jwks_json(b"{\"keys\":{}}").is_err());
    }
}

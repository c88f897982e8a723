//! Verification of every algorithm Better-Auth signs with, and every refusal the foundation
//! promises. Keys are generated here; nothing is hard-coded.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use warden::testing::auth::keys::{Alg, KeySet};
use warden::testing::auth::verify::{self, VerifyError};

use crate::common::{ALL_ALGS, TestKey, claims, jwks_of, now, rules};

/// Verifies `token` against `keys` the way the server does.
fn check(keys: &KeySet, token: &str) -> Result<verify::Claims, VerifyError> {
    let parsed = verify::parse(token)?;
    let key = keys.get(&parsed.kid).ok_or(VerifyError::UnknownKid)?;
    parsed.verify(key, &rules(), None, verify::now_secs())
}

fn keyset(keys: &[&TestKey]) -> KeySet {
    let (set, skipped) = KeySet::from_jwks_json(jwks_of(keys).to_string().as_bytes()).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    set
}

#[test]
fn every_better_auth_algorithm_verifies() {
    for alg in ALL_ALGS {
        let key = TestKey::generate(alg);
        let set = keyset(&[&key]);
        assert_eq!(set.get(&key.kid).unwrap().alg(), alg);
        let token = key.sign(&claims("user-1"));
        let checked = check(&set, &token).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(checked.sub, "user-1", "{alg}");
    }
}

#[test]
fn tampered_signature_and_payload_are_refused() {
    for alg in ALL_ALGS {
        let key = TestKey::generate(alg);
        let set = keyset(&[&key]);
        let token = key.sign(&claims("user-1"));
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        raw[10] ^= 0x01;
        let tampered = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&raw));
        assert_eq!(check(&set, &tampered), Err(VerifyError::BadSignature), "{alg}");

        // Same signature, payload changed to another user.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload = URL_SAFE_NO_PAD.encode(claims("admin-1").to_string());
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(check(&set, &forged), Err(VerifyError::BadSignature), "{alg}");
    }
}

#[test]
fn time_issuer_audience_and_subject_are_checked() {
    let key = TestKey::generate(Alg::EdDsa);
    let set = keyset(&[&key]);
    let with = |patch: Value| {
        let mut c = claims("user-1");
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        check(&set, &key.sign(&c))
    };
    let t = now();
    assert_eq!(with(json!({"exp": t - 60})), Err(VerifyError::Expired));
    // Within the 30 s leeway an expired token still passes; a token not valid yet is refused.
    assert!(with(json!({"exp": t - 10})).is_ok());
    assert_eq!(with(json!({"nbf": t + 120})), Err(VerifyError::NotYetValid));
    assert!(with(json!({"nbf": t + 10})).is_ok());
    assert_eq!(
        with(json!({"iss": "http://evil.test"})),
        Err(VerifyError::WrongIssuer)
    );
    assert_eq!(
        with(json!({"aud": "http://other.test"})),
        Err(VerifyError::WrongAudience)
    );
    assert!(with(json!({"aud": ["http://other.test", crate::common::ISSUER]})).is_ok());
    assert_eq!(with(json!({"sub": null})), Err(VerifyError::MissingClaim("sub")));
    assert_eq!(with(json!({"exp": null})), Err(VerifyError::MissingClaim("exp")));
    assert_eq!(with(json!({"iss": null})), Err(VerifyError::MissingClaim("iss")));
    assert!(matches!(
        with(json!({"exp": "tomorrow"})),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn alg_none_and_hmac_with_the_public_key_are_refused() {
    let key = TestKey::generate(Alg::Rs256);
    let set = keyset(&[&key]);
    let payload = URL_SAFE_NO_PAD.encode(claims("user-1").to_string());

    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg":"none","kid":key.kid}).to_string());
    let none = format!("{none_header}.{payload}.");
    assert_eq!(check(&set, &none), Err(VerifyError::AlgNotAllowed("none".into())));

    // The classic confusion attack: HMAC keyed with the public key's bytes.
    let jwk = key.jwk();
    for secret in [jwk.to_string(), jwk["n"].as_str().unwrap().to_owned()] {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg":"HS256","kid":key.kid}).to_string());
        let input = format!("{header}.{payload}");
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            input.as_bytes(),
        );
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_eq!(
            check(&set, &token),
            Err(VerifyError::AlgNotAllowed("HS256".into()))
        );
    }
}

#[test]
fn header_alg_must_match_the_key() {
    // RS256 key, token claiming PS256 and really signed with PSS by the same RSA key.
    let rs = TestKey::generate(Alg::Rs256);
    let set = keyset(&[&rs]);
    let mut ps = TestKey::generate(Alg::Ps256);
    ps.kid = rs.kid.clone();
    let token = ps.sign(&claims("user-1"));
    assert_eq!(check(&set, &token), Err(VerifyError::AlgMismatch));

    // An EdDSA key named by a token whose header says ES256.
    let ed = TestKey::generate(Alg::EdDsa);
    let set = keyset(&[&ed]);
    let token = ed.sign_with_header(&json!({"alg":"ES256","kid":ed.kid}), &claims("user-1"));
    assert_eq!(check(&set, &token), Err(VerifyError::AlgMismatch));
}

#[test]
fn header_key_injection_is_ignored() {
    // A token carrying its own key in `jwk` (and pointing `jku` elsewhere) still needs a key
    // from the JWKS: the attacker's embedded key is never used.
    let trusted = TestKey::generate(Alg::EdDsa);
    let set = keyset(&[&trusted]);
    let attacker = TestKey::generate(Alg::EdDsa);
    let header =
        json!({"alg":"EdDSA","kid":trusted.kid,"jwk":attacker.jwk(),"jku":"http://127.0.0.1:1/jwks"});
    let token = attacker.sign_with_header(&header, &claims("user-1"));
    assert_eq!(check(&set, &token), Err(VerifyError::BadSignature));
}

#[test]
fn unknown_kid_oversized_and_garbage_are_refused() {
    let key = TestKey::generate(Alg::Es256);
    let set = keyset(&[&key]);
    let other = TestKey::generate(Alg::Es256);
    assert_eq!(
        check(&set, &other.sign(&claims("u"))),
        Err(VerifyError::UnknownKid)
    );

    let mut big = claims("u");
    big["padding"] = Value::String("x".repeat(9000));
    assert_eq!(check(&set, &key.sign(&big)), Err(VerifyError::TooLong));

    for garbage in ["", "garbage", "a.b", "a.b.c", "...", "\u{0}.\u{0}.\u{0}"] {
        assert!(
            matches!(check(&set, garbage), Err(VerifyError::Malformed(_))),
            "{garbage:?}"
        );
    }
    // A good header with a signature that is not base64url.
    let header = URL_SAFE_NO_PAD.encode(json!({"alg":"EdDSA","kid":key.kid}).to_string());
    assert!(matches!(
        check(&set, &format!("{header}.e30.!!!")),
        Err(VerifyError::Malformed(_))
    ));
    // A header that is JSON but not an object with alg.
    let header = URL_SAFE_NO_PAD.encode("[1,2]");
    assert!(matches!(
        check(&set, &format!("{header}.e30.c2ln")),
        Err(VerifyError::Malformed(_))
    ));
}

//! DPoP proofs (RFC 9449): any bytes as the `DPoP` header's value, and proofs correctly signed
//! by a real client key over fuzzed headers and claims, so the fuzzer gets past the signature
//! to the key, `typ`, `alg` and claim checks. Nothing panics; whatever is accepted has `typ`
//! `dpop+jwt`, an accepted `alg`, a public `jwk` whose thumbprint is the one returned, and
//! claims made for this request within the window; the replay cache takes it exactly once.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use warden::testing::auth::keys::Alg;
use warden::testing::auth::oauth::dpop::testing_proofs::DpopKey;
use warden::testing::auth::oauth::dpop::{
    DPOP_TYP, DpopError, DpopSettings, Expected, MAX_JTI_LEN, ReplayCache, access_token_hash, check_proof,
    jwk_thumbprint, same_htu,
};

const NOW: f64 = 1_700_000_000.0;
const URL: &str = "https://api.fuzz.test/notes";
const TOKEN: &str = "fuzz-access-token";

fn keys() -> &'static [DpopKey] {
    static KEYS: OnceLock<Vec<DpopKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [Alg::Es256, Alg::EdDsa, Alg::Es512]
            .into_iter()
            .map(DpopKey::generate)
            .collect()
    })
}

fn decode(part: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD.decode(part).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let keys = keys();
    let key = &keys[usize::from(flags >> 4) % keys.len()];
    let proof = match flags & 3 {
        // Any bytes at all.
        0 => String::from_utf8_lossy(rest).into_owned(),
        // The key's own header, fuzzed claims.
        1 => key.sign_bytes(key.header().to_string().as_bytes(), rest),
        // "header\0claims", either any bytes.
        _ => {
            let mut parts = rest.splitn(2, |b| *b == 0);
            let header = parts.next().unwrap_or_default();
            let claims = parts.next().unwrap_or_default();
            key.sign_bytes(header, claims)
        }
    };
    let bound = key.thumbprint();
    let expected = Expected {
        method: "GET",
        url: URL,
        access_token: (flags & 4 != 0).then_some(TOKEN),
        jkt: (flags & 8 != 0).then_some(bound.as_str()),
    };
    let settings = DpopSettings::default();
    let Ok(checked) = check_proof(&proof, &expected, &settings, NOW) else {
        return;
    };

    let mut parts = proof.split('.');
    let header = decode(parts.next().unwrap());
    let claims = decode(parts.next().unwrap());
    assert_eq!(header["typ"], DPOP_TYP);
    let alg = header["alg"].as_str().unwrap();
    assert!(settings.alg_names().contains(&alg));
    assert!(header.get("crit").is_none());
    let jwk = &header["jwk"];
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(jwk.get(private).is_none());
    }
    assert_eq!(jwk_thumbprint(jwk).as_deref(), Some(checked.jkt.as_str()));
    if let Some(bound) = expected.jkt {
        assert_eq!(checked.jkt, bound);
    }
    assert_eq!(claims["htm"], "GET");
    assert!(same_htu(claims["htu"].as_str().unwrap(), URL));
    assert_eq!(claims["jti"].as_str(), Some(checked.jti.as_str()));
    assert!(!checked.jti.is_empty() && checked.jti.len() <= MAX_JTI_LEN);
    assert!(checked.iat >= NOW - settings.iat_window_secs as f64);
    assert!(checked.iat <= NOW + settings.iat_leeway_secs as f64);
    if let Some(token) = expected.access_token {
        assert_eq!(claims["ath"].as_str(), Some(access_token_hash(token).as_str()));
    }

    let cache = ReplayCache::new(&settings);
    assert_eq!(cache.record(&checked, NOW), Ok(()));
    assert_eq!(cache.record(&checked, NOW), Err(DpopError::Replayed));
});

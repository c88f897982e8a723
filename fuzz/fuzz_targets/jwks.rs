//! Any bytes as a JWKS answer: parsing never panics, and every key it accepts can be asked to
//! verify without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::testing::auth::keys::KeySet;

fuzz_target!(|data: &[u8]| {
    if let Ok((set, _skipped)) = KeySet::from_jwks_json(data) {
        for alg in set.algorithms() {
            assert!(!alg.is_empty());
        }
        let _ = set.len();
    }
    // A JWKS wrapped around the input as one key, to reach key-material parsing quickly.
    if let Ok(jwk) = serde_json::from_slice::<serde_json::Value>(data) {
        let doc = serde_json::json!({ "keys": [jwk] });
        if let Ok((set, _)) = KeySet::from_jwks_json(doc.to_string().as_bytes()) {
            let _ = set.len();
        }
    }
});

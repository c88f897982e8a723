//! Correctly signed tokens with fuzzed headers and payloads: the signature is right, so the
//! fuzzer explores algorithm selection, header fields and every claim check behind it.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use warden::testing::auth::verify;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let fixture = common::fixture();
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let key = &fixture.keys[usize::from(selector) % fixture.keys.len()];
    // The rest is "header\0payload" (either may be any bytes).
    let mut parts = rest.splitn(2, |b| *b == 0);
    let header = parts.next().unwrap_or_default();
    let payload = parts.next().unwrap_or_default();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = key.sign_raw(input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    if let Ok(parsed) = verify::parse(&token)
        && let Some(found) = fixture.set.get(&parsed.kid)
        && let Ok(claims) = parsed.verify(found, &fixture.rules, None, verify::now_secs())
    {
        // Whatever passes satisfies every rule.
        assert_eq!(found.alg(), parsed.alg);
        assert!(!claims.sub.is_empty());
        assert_eq!(claims.iss.as_deref(), Some(common::ISSUER));
    }
});

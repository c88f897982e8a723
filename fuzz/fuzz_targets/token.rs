//! Any bytes as a bearer token: parsing, algorithm selection and verification against a fixed
//! JWKS of all five algorithms must never panic, and nothing unsigned may pass.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::testing::auth::verify;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let fixture = common::fixture();
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = verify::parse(token)
        && let Some(key) = fixture.set.get(&parsed.kid)
    {
        // The fuzzer cannot forge a signature: success here would be a bug.
        assert!(parsed.verify(key, &fixture.rules, None, verify::now_secs()).is_err());
    }
});

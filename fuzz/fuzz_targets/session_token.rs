//! Any bytes as a Better-Auth session token credential (raw, signed, URL-encoded).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::testing::auth::jwt::looks_like_jwt;
use warden::testing::auth::session_token::{session_token, sign};
use warden::config::Secret;

fuzz_target!(|data: &[u8]| {
    let Ok(credential) = std::str::from_utf8(data) else {
        return;
    };
    let secret = Secret::new("fuzz-secret");
    if let Ok(parsed) = session_token(credential, Some(&secret), false) {
        // Anything accepted with the secret is a plain token or carries its right signature.
        let token = parsed.token;
        assert!(!token.is_empty() && !token.contains('.'));
        assert_eq!(parsed.signed, credential.contains('.') || credential.contains("%2E") || credential.contains("%2e"));
        if credential.contains('.') && !credential.contains('%') {
            assert_eq!(
                sign(&token, &secret).split_once('.').map(|(t, _)| t),
                Some(token.as_str())
            );
        }
    }
    let _ = looks_like_jwt(credential);
});

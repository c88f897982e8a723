//! Any text as a refusal's description and scope, with any challenge parameters: the
//! `WWW-Authenticate` writer never panics, and every value it gives is visible ASCII of one
//! scheme (`Bearer` or `DPoP`) whose quoted strings are all closed.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use warden::testing::auth::oauth::challenge::{ChallengeParams, Context, Refusal, challenges};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (description, scope) = text.split_at(text.len() / 2);
    let errors = [None, Some("invalid_token"), Some("insufficient_scope"), Some("invalid_dpop_proof")];
    let refusal = Refusal {
        error: errors[usize::from(flags & 3)],
        description,
        scope: (flags & 4 == 4).then_some(scope),
    };
    let context = Context {
        params: Arc::new(ChallengeParams {
            resource_metadata: (flags & 8 == 8).then(|| scope.to_owned()),
            dpop_algs: (flags & 16 == 16).then(|| "ES256 EdDSA".to_owned()),
            dpop_required: flags & 32 == 32,
        }),
        used_dpop: flags & 64 == 64,
    };
    for value in challenges(&refusal, &context) {
        let value = value.to_str().expect("visible ASCII");
        assert!(value.starts_with("Bearer") || value.starts_with("DPoP"));
        assert_eq!(value.matches('"').count() % 2, 0);
    }
});

//! Any bytes as the `x-api-key` header (once or twice, beside an `Authorization` header or
//! not): the header parser and the stored form never panic, and a key it accepts is printable
//! ASCII without spaces, at most `MAX_API_KEY_LEN` bytes.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use warden::testing::auth::api_key::{stored_form, ApiKeySettings, MAX_API_KEY_LEN};
use warden::testing::auth::credential::{api_key, presented};
use warden::testing::auth::AuthPolicy;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, value)) = data.split_first() else {
        return;
    };
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.append("x-api-key", value.clone());
    if flags & 1 == 1 {
        headers.append("x-api-key", value);
    }
    if flags & 2 == 2 {
        headers.insert("authorization", HeaderValue::from_static("Bearer a.b.c"));
    }
    if let Ok(Some(key)) = api_key(&headers, &ApiKeySettings::default()) {
        assert!(!key.is_empty() && key.len() <= MAX_API_KEY_LEN);
        assert!(key.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(stored_form(key, true).len(), 43);
    }
    let _ = presented(&headers, &AuthPolicy::default());
});

//! Random request heads and bodies against the whole router with a real database: whatever a
//! client sends, warden answers with a 4xx (or 200s, 503s) and never a 500 or a panic.
//!
//! The generator is seeded (set `FUZZ_SEED` to replay a run, `FUZZ_CASES` for more cases) and
//! builds requests from the API's own routes with mutated ids, query strings, headers and
//! JSON bodies, plus junk: odd methods, control characters, percent-encoding, huge numbers.
//! `scripts/fuzz` runs the libFuzzer target `http_router` for the unguided variant.

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common;
use crate::world::World;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Each route with the methods it serves (a request uses one of them most of the time).
const ROUTES: &[(&str, &str)] = &[
    ("GET PATCH", "/users/me"),
    ("GET DELETE", "/users/me/sessions"),
    ("DELETE", "/users/me/sessions/{id}"),
    ("GET", "/users/me/accounts"),
    ("GET", "/admin/users"),
    ("GET DELETE", "/admin/users/{id}"),
    ("PUT", "/admin/users/{id}/role"),
    ("POST", "/admin/users/{id}/ban"),
    ("POST", "/admin/users/{id}/unban"),
    ("GET DELETE", "/admin/users/{id}/sessions"),
    ("DELETE", "/admin/sessions/{id}"),
    ("GET", "/admin/audit"),
    ("GET", "/auth/verify"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/nope"),
    ("GET", "/"),
];

const PARAMS: &[&str] = &[
    "search",
    "searchField",
    "searchOperator",
    "role",
    "banned",
    "sortBy",
    "sortDirection",
    "limit",
    "offset",
    "actor",
    "target",
    "permission",
    "verified",
    "junk",
];

const FIELDS: &[&str] = &[
    "name",
    "image",
    "role",
    "roles",
    "reason",
    "expiresIn",
    "junk",
    "",
];

fn text(rng: &mut Rng) -> String {
    let atoms = [
        "alice",
        "bob",
        "admin",
        "s-alice-2",
        "",
        "%00",
        "%ff",
        "%C3%A9",
        "a%2fb",
        "..",
        "%2e%2e",
        "'; DROP TABLE \"user\"; --",
        "%",
        "_",
        "\\",
        "email",
        "name",
        "contains",
        "starts_with",
        "ends_with",
        "createdAt",
        "asc",
        "desc",
        "true",
        "false",
        "-1",
        "0",
        "1",
        "200",
        "201",
        "99999999999999999999",
        "9223372036854775807",
        "1e9",
        "null",
        "%0a",
        "%20",
        "\u{1F600}",
    ];
    let mut out = String::new();
    for _ in 0..=rng.below(3) {
        out.push_str(rng.pick::<&str>(&atoms));
    }
    if rng.chance(5) {
        out.push_str(&"x".repeat(rng.below(3000)));
    }
    out
}

/// Text made safe for a URI (the generator wants junk *inside* the URI, not an unparsable one).
fn uri_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:@/".contains(c) {
                c.to_string()
            } else {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

fn value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!(rng.below(1000) as i64 - 10),
        4 => json!(f64::from(rng.below(1000) as u32) / 7.0),
        5 => json!(text(rng).replace("%00", "\u{0}")),
        6 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
        _ => {
            let mut map = serde_json::Map::new();
            for _ in 0..rng.below(4) {
                map.insert(rng.pick(FIELDS).to_string(), value(rng, depth + 1));
            }
            Value::Object(map)
        }
    }
}

fn request(rng: &mut Rng, w: &World) -> (String, Request<Body>) {
    let (methods, route) = *rng.pick(ROUTES);
    let served: Vec<&str> = methods.split(' ').collect();
    let served_method = rng.chance(70);
    let method = match if served_method { 12 } else { rng.below(12) } {
        12 => Method::from_bytes(rng.pick(&served).as_bytes()).unwrap_or(Method::GET),
        0..=3 => Method::GET,
        4 => Method::POST,
        5 => Method::PUT,
        6 => Method::PATCH,
        7 => Method::DELETE,
        8 => Method::HEAD,
        9 => Method::OPTIONS,
        10 => Method::from_bytes(b"PROPFIND").unwrap_or(Method::GET),
        _ => Method::from_bytes(format!("X{}", rng.next()).as_bytes()).unwrap_or(Method::GET),
    };
    let mut path = route.replace("{id}", &uri_safe(&text(rng)));
    if rng.chance(40) {
        let pairs: Vec<String> = (0..=rng.below(4))
            .map(|_| format!("{}={}", rng.pick(PARAMS), uri_safe(&text(rng))))
            .collect();
        path = format!("{path}?{}", pairs.join("&"));
    }
    let mut builder = Request::builder().method(method.clone()).uri(path.as_str());
    let token = match rng.below(6) {
        0 => None,
        1 => Some(w.alice.clone()),
        2 | 3 => Some(w.admin.clone()),
        4 => Some(text(rng).replace('%', "")),
        _ => Some(format!("{}.{}.{}", text(rng), text(rng), text(rng)).replace('%', "")),
    };
    if let Some(token) = token
        && let Ok(value) = axum::http::HeaderValue::from_str(&format!("Bearer {token}"))
    {
        builder = builder.header("authorization", value);
    }
    if rng.chance(20)
        && let Ok(value) = axum::http::HeaderValue::from_str(&uri_safe(&text(rng)))
    {
        builder = builder.header("x-request-id", value);
    }
    // An API key: alice's real one, junk text, raw bytes (non-ASCII, control characters), or
    // one far too long; sometimes twice.
    if rng.chance(30) {
        let key: Vec<u8> = match rng.below(5) {
            0 => FUZZ_KEY.as_bytes().to_vec(),
            1 => text(rng).into_bytes(),
            2 => (0..rng.below(64)).map(|_| (rng.next() % 256) as u8).collect(),
            3 => "k".repeat(1000 + rng.below(10_000)).into_bytes(),
            _ => "é-ünïcode-key".as_bytes().to_vec(),
        };
        if let Ok(value) = axum::http::HeaderValue::from_bytes(&key) {
            builder = builder.header("x-api-key", value.clone());
            if rng.chance(10) {
                builder = builder.header("x-api-key", value);
            }
        }
    }
    let body = match rng.below(5) {
        0 => None,
        1 => Some(("application/json", format!("{{\"name\": {}", text(rng)))),
        2 => Some(("text/plain", text(rng))),
        _ => Some(("application/json", value(rng, 0).to_string())),
    };
    let request = match body {
        Some((content_type, body)) => builder
            .header("content-type", content_type)
            .body(Body::from(body)),
        None => builder.body(Body::empty()),
    };
    let described = format!("{method} {path}");
    (described, request.unwrap_or_else(|_| Request::new(Body::empty())))
}

/// alice's API key in the fuzzed world (no quota, rate limiting off).
const FUZZ_KEY: &str = "fuzz-key-of-alice-000000000000";

#[sqlx::test]
async fn random_requests_never_get_a_500(db: PgPool) {
    let w = World::new(db).await;
    w.exec(&format!(
        "INSERT INTO apikey (id, config_id, reference_id, key, enabled, rate_limit_enabled, created_at, updated_at) \
         VALUES ('fuzz', 'default', 'alice', '{}', true, false, now(), now())",
        warden::testing::auth::api_key::stored_form(FUZZ_KEY, true)
    ))
    .await;
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) * 0x9E37_79B9 + 1);
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    eprintln!("FUZZ_SEED={seed} FUZZ_CASES={cases}");
    let mut rng = Rng(seed | 1);
    let mut by_status = std::collections::BTreeMap::new();
    for case in 0..cases {
        let (described, request) = request(&mut rng, &w);
        let (status, headers, body) = common::send_raw(&w.app, request).await;
        *by_status.entry(status.as_u16()).or_insert(0u32) += 1;
        assert!(
            !status.is_server_error() || status == 503,
            "case {case} (FUZZ_SEED={seed}): {described} -> {status} {body}"
        );
        if status.is_client_error() && described.split(' ').next() != Some("HEAD") {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(
                content_type.starts_with("application/problem+json"),
                "case {case}: {described} -> {status} as {content_type:?}: {body}"
            );
        }
    }
    eprintln!("statuses: {by_status:?}");
}

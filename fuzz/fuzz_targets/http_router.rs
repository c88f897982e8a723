//! Arbitrary request heads and bodies against warden's whole router, with a real PostgreSQL
//! (`DATABASE_URL`, default the local `test` database's server; the target creates and seeds
//! its own database `warden_fuzz_http`). No input may produce a 5xx other than 503, nor panic.
//!
//! Input layout: byte 0 picks the method, byte 1 the credential (admin, user, none, or the
//! first header line as a raw Authorization value); then the path up to `\n`, header lines
//! `name: value` up to an empty line, and the rest is the body.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use warden::testing::auth::Verifier;
use warden::testing::auth::jwks::{JwksCache, JwksSource};
use warden::testing::auth::keys::Alg;
use warden::testing::auth::policy::AuthPolicy;
use warden::testing::auth::verify::ClaimRules;
use warden::testing::TestKey;

const ISSUER: &str = "http://fuzz.test";

struct World {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    admin: String,
    user: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (app, admin, user) = runtime.block_on(setup());
        World { runtime, app, admin, user }
    })
}

async fn setup() -> (axum::Router, String, String) {
    let server = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let (base, _) = server.rsplit_once('/').unwrap();
    let admin_pool = sqlx::PgPool::connect(&server).await.unwrap();
    sqlx::query("DROP DATABASE IF EXISTS warden_fuzz_http WITH (FORCE)")
        .execute(&admin_pool)
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE warden_fuzz_http").execute(&admin_pool).await.unwrap();
    let db = sqlx::PgPool::connect(&format!("{base}/warden_fuzz_http")).await.unwrap();
    warden::testing::db::migrate(&db).await.unwrap();
    let key = TestKey::generate(Alg::EdDsa);
    let mut public = key.jwk();
    public.as_object_mut().unwrap().remove("kid");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        r#"INSERT INTO "user" (id, name, email, email_verified, updated_at, role) VALUES
             ('admin', 'Admin', 'admin@fuzz.test', false, now(), 'admin'),
             ('alice', 'Alice', 'alice@fuzz.test', false, now(), 'user'),
             ('bob', 'Bob', 'bob@fuzz.test', false, now(), 'user');
           INSERT INTO session (id, expires_at, token, updated_at, user_id) VALUES
             ('s-admin', now() + interval '1 day', 'tok-admin', now(), 'admin'),
             ('s-alice', now() + interval '1 day', 'tok-alice', now(), 'alice');
           INSERT INTO jwks (id, public_key, private_key, created_at, alg) VALUES
             ('{}', '{}', 'x', now(), 'EdDSA');"#,
        key.kid, public
    )))
    .execute(&db)
    .await
    .unwrap();
    // The JWKS endpoint is down: keys come from the database table, the fallback.
    let jwks = JwksCache::new(
        JwksSource {
            url: "http://127.0.0.1:9/api/auth/jwks".into(),
            client: reqwest::Client::new(),
            timeout: Duration::from_millis(200),
            db: Some(db.clone()),
            db_grace: Duration::from_secs(86_400),
        },
        Duration::from_secs(3600),
    );
    let _ = jwks.refresh().await;
    let rules = ClaimRules {
        issuer: ISSUER.into(),
        audience: vec![ISSUER.into()],
        leeway_secs: 30,
    };
    let auth = warden::testing::auth::Auth::builder(db)
        .verifier(Verifier::new(jwks, rules))
        .policy(AuthPolicy::default())
        .user_cache(None)
        .failures_per_minute(0)
        .build()
        .await
        .unwrap();
    let app = warden::server::app(warden::server::AppState::new(auth));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |sub: &str, sid: &str| {
        key.sign(&serde_json::json!({
            "sub": sub, "sid": sid, "iat": now, "exp": now + 86_400, "iss": ISSUER, "aud": ISSUER
        }))
    };
    (app, token("admin", "s-admin"), token("alice", "s-alice"))
}

const METHODS: [&str; 8] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "XJUNK"];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let w = world();
    let method = Method::from_bytes(METHODS[data[0] as usize % METHODS.len()].as_bytes()).unwrap();
    let rest = &data[2..];
    let (head, body) = match rest.windows(2).position(|p| p == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &[][..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let path = String::from_utf8_lossy(lines.next().unwrap_or_default());
    let path = if path.starts_with('/') { path.into_owned() } else { format!("/{path}") };
    let Ok(mut request) = Request::builder().method(method).uri(path.as_str()).body(Body::from(body.to_vec())) else {
        return;
    };
    let headers = request.headers_mut();
    match data[1] % 4 {
        0 => {
            headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {}", w.admin)).unwrap());
        }
        1 => {
            headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {}", w.user)).unwrap());
        }
        _ => {}
    }
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) {
            headers.append(name, value);
        }
    }
    let response = w.runtime.block_on(w.app.clone().oneshot(request)).unwrap();
    let status = response.status();
    assert!(!status.is_server_error() || status.as_u16() == 503, "{status}");
});

//! The JWKS cache against a real HTTP server on 127.0.0.1: refetch on unknown kid,
//! single-flight, cooldown, failure handling, limits, and the database fallback.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use warden::testing::auth::jwks::Lookup;
use warden::testing::auth::keys::Alg;

use crate::common::{MockJwks, TestKey, cache, jwks_of};

fn found(lookup: &Lookup) -> bool {
    matches!(lookup, Lookup::Found(_))
}

#[tokio::test]
async fn unknown_kid_triggers_one_refetch_and_the_new_key_is_used() {
    let old = TestKey::generate(Alg::EdDsa);
    let server = MockJwks::start(jwks_of(&[&old])).await;
    let jwks = cache(&server.url, None, Duration::from_secs(5));
    assert_eq!(jwks.refresh().await.unwrap(), 1);
    assert_eq!(server.hits(), 1);

    // Known keys never fetch.
    for _ in 0..10 {
        assert!(found(&jwks.key(&old.kid).await));
    }
    assert_eq!(server.hits(), 1);

    // Better-Auth rotates: the new key signs at once.
    let new = TestKey::generate(Alg::EdDsa);
    server.set_jwks(jwks_of(&[&old, &new]));
    assert!(found(&jwks.key(&new.kid).await));
    assert_eq!(server.hits(), 2);
    assert_eq!(jwks.keys().len(), 2);
}

#[tokio::test]
async fn a_hundred_concurrent_requests_for_a_new_kid_cause_exactly_one_fetch() {
    let old = TestKey::generate(Alg::Es256);
    let server = MockJwks::start(jwks_of(&[&old])).await;
    let jwks = cache(&server.url, None, Duration::from_secs(5));
    jwks.refresh().await.unwrap();

    let new = TestKey::generate(Alg::Es256);
    server.set_jwks(jwks_of(&[&old, &new]));
    server.set_delay(Duration::from_millis(200));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let jwks = Arc::clone(&jwks);
            let kid = new.kid.clone();
            tokio::spawn(async move { jwks.key(&kid).await })
        })
        .collect();
    let mut outcomes = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Lookup::Found(_) => outcomes.0 += 1,
            Lookup::Unknown => outcomes.1 += 1,
            Lookup::Unavailable => panic!("the JWKS answered"),
        }
    }
    assert_eq!(server.hits(), 2, "one initial load + exactly one refetch");
    // JWKS_MAX_WAITERS (8) waited for it; the rest were answered at once.
    assert_eq!(outcomes, (8, 92));
    // Once it is in, every request finds it without fetching.
    for _ in 0..100 {
        assert!(found(&jwks.key(&new.kid).await));
    }
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn random_kids_are_limited_by_the_cooldown() {
    let key = TestKey::generate(Alg::EdDsa);
    let server = MockJwks::start(jwks_of(&[&key])).await;
    let jwks = cache(&server.url, None, Duration::from_millis(800));
    jwks.refresh().await.unwrap();

    assert!(matches!(jwks.key("random-1").await, Lookup::Unknown));
    assert_eq!(server.hits(), 2);
    for i in 0..50 {
        assert!(matches!(jwks.key(&format!("random-{i}")).await, Lookup::Unknown));
    }
    assert_eq!(server.hits(), 2, "no fetch inside the cooldown");

    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(matches!(jwks.key("random-after").await, Lookup::Unknown));
    assert_eq!(server.hits(), 3, "one fetch once the cooldown is over");
}

#[tokio::test]
async fn a_failing_jwks_keeps_the_last_good_keys() {
    let key = TestKey::generate(Alg::Ps256);
    let server = MockJwks::start(jwks_of(&[&key])).await;
    let jwks = cache(&server.url, None, Duration::from_millis(0));
    jwks.refresh().await.unwrap();

    server.set_status(500);
    assert!(jwks.refresh().await.is_err());
    assert!(found(&jwks.key(&key.kid).await));

    server.set_status(200);
    server.set_body("<html>not json</html>");
    assert!(jwks.refresh().await.is_err());
    server.set_body(r#"{"keys":"nope"}"#);
    assert!(jwks.refresh().await.is_err());
    assert!(found(&jwks.key(&key.kid).await));
    assert_eq!(jwks.keys().len(), 1);

    // An unknown kid while the JWKS cannot be read: unavailable, not "unknown".
    assert!(matches!(jwks.key("new-kid").await, Lookup::Unavailable));

    // Unreachable server.
    let gone = cache("http://127.0.0.1:9/api/auth/jwks", None, Duration::from_secs(5));
    assert!(gone.refresh().await.is_err());
    assert!(matches!(gone.key("any").await, Lookup::Unavailable));
}

#[tokio::test]
async fn oversized_slow_and_unsupported_answers() {
    let key = TestKey::generate(Alg::EdDsa);
    let server = MockJwks::start(jwks_of(&[&key])).await;
    let jwks = cache(&server.url, None, Duration::from_millis(0));
    jwks.refresh().await.unwrap();

    // Larger than the 1 MiB limit.
    server.set_body(&format!(
        r#"{{"keys":[],"pad":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    ));
    let err = jwks.refresh().await.unwrap_err();
    assert!(err.to_string().contains("larger"), "{err}");
    assert_eq!(jwks.keys().len(), 1);

    // Slower than the 2 s timeout: the fetch fails, and a known key never waits for it.
    server.set_jwks(jwks_of(&[&key]));
    server.set_delay(Duration::from_secs(4));
    let background = {
        let jwks = Arc::clone(&jwks);
        tokio::spawn(async move { jwks.refresh().await.is_err() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lookup = tokio::time::timeout(Duration::from_millis(200), jwks.key(&key.kid)).await;
    assert!(found(
        &lookup.expect("a known key must not wait for a fetch in flight")
    ));
    assert!(background.await.unwrap(), "the slow fetch times out");

    // Keys of types warden does not verify are skipped, the rest are used.
    server.set_delay(Duration::ZERO);
    let ok = TestKey::generate(Alg::Es512);
    let mut doc = jwks_of(&[&ok]);
    doc["keys"].as_array_mut().unwrap().extend([
        json!({"kty":"oct","k":"c2VjcmV0","kid":"hmac","alg":"HS256"}),
        json!({"kty":"EC","crv":"P-384","x":"AA","y":"AA","kid":"p384","alg":"ES384"}),
        json!({"kty":"OKP","crv":"X25519","x":"AA","kid":"x25519"}),
    ]);
    server.set_jwks(doc);
    assert_eq!(jwks.refresh().await.unwrap(), 1);
    assert!(found(&jwks.key(&ok.kid).await));
}

#[sqlx::test]
async fn database_jwks_table_is_the_fallback(db: PgPool) {
    let live = TestKey::generate(Alg::EdDsa);
    let expired = TestKey::generate(Alg::Es256);
    // Better-Auth stores the public JWK without kid (the row id is the kid).
    for (key, expires_in) in [(&live, "1 day"), (&expired, "-40 days")] {
        let mut public = key.jwk();
        public.as_object_mut().unwrap().remove("kid");
        public.as_object_mut().unwrap().remove("alg");
        sqlx::query(
            "INSERT INTO jwks (id, public_key, private_key, created_at, expires_at, alg, crv)
             VALUES ($1, $2, 'encrypted', now(), now() + $4::text::interval, $3, NULL)",
        )
        .bind(&key.kid)
        .bind(public.to_string())
        .bind(key.alg.name())
        .bind(expires_in)
        .execute(&db)
        .await
        .unwrap();
    }
    let jwks = cache(
        "http://127.0.0.1:9/api/auth/jwks",
        Some(db),
        Duration::from_secs(5),
    );
    assert!(jwks.refresh().await.is_err(), "the endpoint is down");
    assert!(
        found(&jwks.key(&live.kid).await),
        "the live key comes from the table"
    );
    assert!(
        !found(&jwks.key(&expired.kid).await),
        "a key past expires_at + grace is skipped"
    );
    assert_eq!(jwks.keys().len(), 1);
}

/// A JWKS URL answering with a redirect to another server that does serve keys: warden does
/// not follow it (the keys come from `JWKS_URL` itself, never from wherever a 3xx points), and
/// keys that arrive from another URL through a client that does follow are refused too.
#[sqlx::test]
async fn redirects_are_never_followed_for_keys(db: PgPool) {
    use axum::http::{StatusCode, header::LOCATION};
    let key = TestKey::generate(Alg::EdDsa);
    let elsewhere = MockJwks::start(jwks_of(&[&key])).await;
    let target = elsewhere.url.clone();
    let router = axum::Router::new().route(
        "/api/auth/jwks",
        axum::routing::get(move || {
            let target = target.clone();
            async move { (StatusCode::FOUND, [(LOCATION, target)]) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirecting = format!("http://{}/api/auth/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // As `warden serve` and `Auth::from_env` build it: the 302 is a failed fetch.
    let auth = warden::Auth::builder(db)
        .jwks_url(&redirecting)
        .user_cache(None)
        .build()
        .await
        .unwrap();
    let jwks = &warden::testing::verifier_of(&auth).jwks;
    assert_eq!(jwks.keys().len(), 0, "no key loaded through a redirect");
    let err = jwks.refresh().await.unwrap_err().to_string();
    assert!(
        err.contains("HTTP 302, a redirect to") && err.contains(&elsewhere.url),
        "{err}"
    );
    assert_eq!(elsewhere.hits(), 0, "the redirect was not followed");

    // A client that follows redirects (an app's own): the answer came from elsewhere, refused.
    let following = cache(&redirecting, None, Duration::from_secs(5));
    let err = following.refresh().await.unwrap_err().to_string();
    assert!(err.contains("not from JWKS_URL"), "{err}");
    assert_eq!(following.keys().len(), 0);
}

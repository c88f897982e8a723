//! What operators and API users rely on around the routes: the OpenAPI document, metrics,
//! request ids, CORS, body limits, method errors, load shedding, timeouts, compression, and
//! lag-tolerant reads on a replica.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use sqlx::PgPool;
use warden::server::http::HttpSettings;
use warden::testing::auth::keys::Alg;

use crate::common::{self, TestKey, claims, insert_user, send};
use crate::world::{Setup, World};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openapi.json");

/// Every operation the API documents: (method, path).
const OPERATIONS: [(&str, &str); 25] = [
    ("get", "/users/me"),
    ("patch", "/users/me"),
    ("get", "/users/me/sessions"),
    ("delete", "/users/me/sessions"),
    ("delete", "/users/me/sessions/{id}"),
    ("get", "/users/me/accounts"),
    ("post", "/users/me/has-permission"),
    ("get", "/users/me/organizations"),
    ("get", "/orgs/{orgId}"),
    ("get", "/orgs/{orgId}/members"),
    ("post", "/orgs/{orgId}/has-permission"),
    ("get", "/admin/users"),
    ("get", "/admin/users/{id}"),
    ("delete", "/admin/users/{id}"),
    ("put", "/admin/users/{id}/role"),
    ("post", "/admin/users/{id}/ban"),
    ("post", "/admin/users/{id}/unban"),
    ("get", "/admin/users/{id}/sessions"),
    ("delete", "/admin/users/{id}/sessions"),
    ("delete", "/admin/sessions/{id}"),
    ("get", "/admin/audit"),
    ("get", "/auth/verify"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
];

#[sqlx::test]
async fn openapi_document_covers_every_route_and_matches_the_snapshot(db: PgPool) {
    let w = World::new(db).await;
    let answer = w.anonymous().get("/openapi.json").await;
    assert_eq!(answer.status, 200);
    let doc = answer.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    // The documented operations are exactly the API's (the document itself aside).
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "patch", "delete"].contains(&method.as_str()) {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    let mut expected: Vec<(String, String)> = OPERATIONS
        .iter()
        .filter(|(_, p)| *p != "/openapi.json")
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    documented.sort();
    expected.sort();
    assert_eq!(documented, expected);

    // Each exists in the router with that method: secured ones answer 401 without a token
    // (not 404 or 405), with the documented problem shape.
    for (method, path) in OPERATIONS {
        let concrete = path.replace("{id}", "bob").replace("{orgId}", "org-1");
        let answer = w.anonymous().call(&method.to_uppercase(), &concrete, None).await;
        let secured = doc["paths"][path][method]["security"].is_array();
        if secured {
            assert_eq!(answer.status, 401, "{method} {path}");
            let responses = &doc["paths"][path][method]["responses"];
            assert!(
                responses["401"]["content"]["application/problem+json"].is_object(),
                "{method} {path}"
            );
        } else {
            assert!(
                [200, 503].contains(&answer.status.as_u16()),
                "{method} {path}: {}",
                answer.status
            );
        }
    }

    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(SNAPSHOT, &pretty).unwrap();
    }
    let snapshot = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        snapshot == pretty,
        "the OpenAPI document changed: review it, then run UPDATE_SNAPSHOTS=1 scripts/test --test integration openapi"
    );

    // The interactive page, served from the binary.
    let request = Request::get("/docs/").body(Body::empty()).unwrap();
    let answer = tower::ServiceExt::oneshot(w.app.clone(), request).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[sqlx::test]
async fn metrics_count_requests_auth_failures_and_keys(db: PgPool) {
    // As `build_state` does: the recorder first, so the initial JWKS fetch is counted too.
    warden::server::metrics::handle();
    let w = World::new(db).await;
    assert_eq!(w.as_alice().get("/users/me").await.status, 200);
    assert_eq!(w.as_admin().get("/admin/users/bob").await.status, 200);
    assert_eq!(w.anonymous().get("/users/me").await.status, 401);
    assert_eq!(w.as_alice().get("/admin/users").await.status, 403);

    let request = Request::get("/metrics").body(Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(w.app.clone(), request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for needle in [
        r#"warden_http_requests_total{method="GET",route="/users/me",status="200"} 1"#,
        // The route template, never the concrete id.
        r#"warden_http_requests_total{method="GET",route="/admin/users/{id}",status="200"} 1"#,
        r#"warden_http_request_duration_seconds_bucket{method="GET",route="/users/me",le="#,
        r#"warden_auth_failures_total{code="missing_token"} 1"#,
        r#"warden_auth_failures_total{code="forbidden"} 1"#,
        "warden_jwks_keys 1",
        r#"warden_jwks_fetches_total{result="ok"}"#,
        "warden_jwks_seconds_since_last_success",
        r#"warden_db_pool_connections{pool="primary",state="open"}"#,
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(
        !text.contains("/admin/users/bob"),
        "raw paths never become labels"
    );
}

#[sqlx::test]
async fn request_ids_are_accepted_generated_and_echoed(db: PgPool) {
    let w = World::new(db).await;
    let answer = w.anonymous().get("/healthz").await;
    let generated = answer.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32);
    assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));

    let request = Request::get("/users/me")
        .header("x-request-id", "trace-abc-123")
        .body(Body::empty())
        .unwrap();
    let answer = send(&w.app, request).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.headers["x-request-id"], "trace-abc-123",
        "echoed on errors too"
    );

    let junk = "x".repeat(200);
    let request = Request::get("/healthz")
        .header("x-request-id", junk.as_str())
        .body(Body::empty())
        .unwrap();
    let answer = send(&w.app, request).await;
    assert_ne!(answer.headers["x-request-id"], junk.as_str());
}

/// Over a real connection warden knows the peer: a client's own `x-request-id` is replaced
/// (it would sit in the logs and the audit trail), a trusted proxy's is kept.
#[sqlx::test]
async fn only_a_trusted_proxy_names_the_request_id(db: PgPool) {
    let w = World::new(db).await;
    let client = reqwest::Client::new();
    let id_for = async |served: &common::Served| {
        let answer = client
            .get(served.url("/users/me"))
            .header("x-request-id", "chosen-by-the-caller")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
        answer.headers()["x-request-id"].to_str().unwrap().to_owned()
    };
    let direct = w.serve().await;
    let replaced = id_for(&direct).await;
    assert_ne!(replaced, "chosen-by-the-caller");
    assert_eq!(replaced.len(), 32, "{replaced}");
    let behind = w
        .variant(Setup::default().state(|s| {
            s.http = Arc::new(HttpSettings {
                trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
                ..HttpSettings::default()
            })
        }))
        .await
        .serve()
        .await;
    assert_eq!(id_for(&behind).await, "chosen-by-the-caller");
}

async fn with_settings(db: PgPool, settings: HttpSettings) -> World {
    World::with(db, Setup::empty().state(move |s| s.http = Arc::new(settings))).await
}

#[sqlx::test]
async fn cors_allows_listed_origins_only(db: PgPool) {
    let settings = HttpSettings {
        cors_origins: vec!["https://app.test".into()],
        ..HttpSettings::default()
    };
    let app = with_settings(db, settings).await;
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/users/me")
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header("access-control-request-headers", "authorization, content-type")
            .body(Body::empty())
            .unwrap()
    };
    let answer = send(&app.app, preflight("https://app.test")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["access-control-allow-origin"], "https://app.test");
    assert_eq!(answer.headers["access-control-allow-credentials"], "true");
    let methods = answer.headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("PATCH"), "{methods}");

    let answer = send(&app.app, preflight("https://evil.test")).await;
    assert!(answer.headers.get("access-control-allow-origin").is_none());

    let request = Request::get("/healthz")
        .header("origin", "https://app.test")
        .body(Body::empty())
        .unwrap();
    let answer = send(&app.app, request).await;
    assert_eq!(answer.headers["access-control-allow-origin"], "https://app.test");
    assert!(
        answer.headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-request-id")
    );
}

/// The `Vary` values of an answer, lowercased, in order, over every `Vary` header.
fn vary(headers: &axum::http::HeaderMap) -> Vec<String> {
    headers
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

/// An answer to a credential is that caller's alone: no cache keeps it, and one that does
/// keys it by the credential headers. CORS's own `Vary` stays; public routes keep their caching.
#[sqlx::test]
async fn answers_to_credentials_are_never_cached_nor_shared(db: PgPool) {
    let settings = HttpSettings {
        cors_origins: vec!["https://app.test".into()],
        ..HttpSettings::default()
    };
    let w = World::new(db.clone()).await;
    let w = w
        .variant(Setup::default().state(move |s| s.http = Arc::new(settings)))
        .await;
    let cases = [
        (w.as_alice(), "GET", "/users/me", 200),
        (w.as_alice(), "GET", "/users/me/sessions", 200),
        (w.as_alice(), "GET", "/users/me/organizations", 200),
        (w.as_alice(), "GET", "/orgs/no-such-org", 404),
        (w.as_admin(), "GET", "/admin/users", 200),
        (w.as_admin(), "POST", "/admin/users/bob/ban", 200),
        (w.as_alice(), "GET", "/auth/verify", 200),
        (w.anonymous(), "GET", "/users/me", 401),
        (w.anonymous(), "GET", "/auth/verify", 401),
        (w.as_alice(), "GET", "/admin/users", 403),
        (w.bearer("garbage"), "GET", "/orgs/no-such-org", 401),
    ];
    for (caller, method, path, status) in cases {
        let answer = caller
            .header("origin", "https://app.test")
            .call(method, path, None)
            .await;
        assert_eq!(answer.status.as_u16(), status, "{method} {path}: {}", answer.body);
        assert_eq!(answer.headers["cache-control"], "no-store", "{method} {path}");
        let vary = vary(&answer.headers);
        for name in ["authorization", "cookie", "x-api-key", "origin"] {
            assert!(vary.contains(&name.to_owned()), "{method} {path}: Vary {vary:?}");
        }
    }
    // Public routes keep their own caching.
    for path in ["/healthz", "/openapi.json"] {
        let answer = w.anonymous().get(path).await;
        assert_eq!(answer.status, 200, "{path}");
        assert!(answer.headers.get("cache-control").is_none(), "{path}");
        assert!(
            !vary(&answer.headers).contains(&"authorization".to_owned()),
            "{path}"
        );
    }
}

#[sqlx::test]
async fn limits_and_method_errors_are_problems(db: PgPool) {
    let w = World::new(db).await;
    let big = json!({"name": "x".repeat(100 * 1024)});
    let answer = w.as_alice().patch("/users/me", big).await;
    assert_eq!(answer.outcome(), (413, Some("payload_too_large")));
    assert_eq!(answer.headers["content-type"], "application/problem+json");
    let request = Request::post("/admin/users/bob/ban")
        .header("authorization", format!("Bearer {}", w.admin))
        .body(Body::from(vec![b' '; 100 * 1024]))
        .unwrap();
    let answer = send(&w.app, request).await;
    assert_eq!(answer.outcome(), (413, Some("payload_too_large")));
    assert_eq!(
        w.scalar_i64(r#"SELECT count(*) FROM "user" WHERE banned"#).await,
        0
    );

    let answer = w.anonymous().post("/healthz", None).await;
    assert_eq!(answer.outcome(), (405, Some("method_not_allowed")));
    assert!(answer.headers["allow"].to_str().unwrap().contains("GET"));
}

#[sqlx::test]
async fn overload_is_shed_and_slow_requests_time_out(db: PgPool) {
    insert_user(&db, "u1", "u1@example.com").await;
    let settings = HttpSettings {
        max_concurrent_requests: 1,
        request_timeout: Duration::from_secs(1),
        ..HttpSettings::default()
    };
    let app = with_settings(db, settings).await;
    // An unknown key makes warden refetch the JWKS, which now takes 3 s.
    app.jwks.set_delay(Duration::from_secs(3));
    let stranger = TestKey::generate(Alg::EdDsa);
    let token = stranger.sign(&claims("u1"));
    let slow = {
        let router = app.app.clone();
        tokio::spawn(async move {
            let request = Request::get("/users/me")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            send(&router, request).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = app.anonymous().get("/healthz").await;
    assert_eq!(answer.outcome(), (503, Some("overloaded")));

    let answer = slow.await.unwrap();
    assert_eq!(answer.outcome(), (408, Some("request_timeout")));
    // The slot is free again.
    assert_eq!(app.anonymous().get("/healthz").await.status, 200);
}

#[sqlx::test]
async fn large_json_is_compressed(db: PgPool) {
    let w = World::new(db).await;
    let request = Request::get("/openapi.json")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(w.app.clone(), request).await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let request = Request::get("/healthz")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(w.app.clone(), request).await.unwrap();
    assert!(
        response.headers().get("content-encoding").is_none(),
        "small bodies stay plain"
    );
}

#[sqlx::test]
async fn admin_listing_and_audit_read_the_replica(db: PgPool) {
    let w = World::new(db.clone()).await;
    // A second database stands in for a replica that has not caught up.
    let name = format!("warden_replica_{}", crate::support::random_hex(6));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
        .execute(&db)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let replica = PgPool::connect(&url).await.unwrap();
    warden::testing::db::migrate(&replica).await.unwrap();
    insert_user(&replica, "only-on-replica", "replica@example.com").await;

    let read = replica.clone();
    let app = w.variant(Setup::default().state(move |s| s.read_db = read)).await;
    let answer = app.bearer(&w.admin).get("/admin/users").await;
    assert_eq!(
        answer.status, 200,
        "authorisation reads the primary: {:?}",
        answer.body
    );
    let emails: Vec<&str> = answer.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["replica@example.com"]);
    assert_eq!(app.bearer(&w.admin).get("/admin/audit").await.body["total"], 0);
    // Writes go to the primary.
    let answer = app.bearer(&w.admin).post("/admin/users/bob/ban", None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        w.scalar_i64(r#"SELECT count(*) FROM "user" WHERE id = 'bob' AND banned"#)
            .await,
        1
    );

    replica.close().await;
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        r#"DROP DATABASE "{name}" WITH (FORCE)"#
    )))
    .execute(&w.db)
    .await;
}

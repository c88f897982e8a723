//! The auth proxy (`AUTH_PROXY=true`) against an upstream that records what reaches it: what
//! it says about the client's host and scheme (nothing), and Better-Auth's admin endpoints,
//! audited (`AUTH_PROXY_ADMIN=audit`) or refused (`refuse`). The real Better-Auth is in the
//! e2e suite (`tests/e2e/main.rs`).

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, Uri};
use serde_json::{Value, json};
use sqlx::PgPool;
use warden::Secret;
use warden::server::state::AdminThroughProxy;
use warden::testing::auth::session_token;

use crate::common;
use crate::world::{Setup, World};

/// What reached the upstream: method, path and headers of each request.
type Seen = Arc<Mutex<Vec<(String, String, HeaderMap)>>>;

/// An upstream that records every request and answers 200 with what it received.
async fn recording_upstream() -> (String, Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let router = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let log = Arc::clone(&log);
        async move {
            let echoed: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                .collect();
            log.lock()
                .unwrap()
                .push((method.to_string(), uri.path().to_owned(), headers));
            axum::Json(json!({"path": uri.path(), "headers": echoed}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (url, seen, task)
}

fn proxied(upstream: &str, admin: AdminThroughProxy) -> Setup {
    let upstream = upstream.to_owned();
    Setup::default().state(move |s| {
        s.auth_proxy = Some(upstream);
        s.auth_proxy_admin = admin;
    })
}

#[sqlx::test]
async fn the_clients_host_never_reaches_better_auth(db: PgPool) {
    let (upstream, seen, _task) = recording_upstream().await;
    let w = World::with(db, proxied(&upstream, AdminThroughProxy::Audit)).await;
    let answer = w
        .anonymous()
        .header("host", "evil.test")
        .header("x-forwarded-host", "evil-forwarded.test")
        .header("x_forwarded_host", "evil-underscore.test")
        .header("x-forwarded-proto", "https")
        .header("X_Forwarded_Proto", "https")
        .header("x-forwarded-port", "443")
        .header("x-forwarded-prefix", "/evil")
        .get("/api/auth/get-session")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = seen.lock().unwrap();
    let (_, path, headers) = &seen[0];
    assert_eq!(path, "/api/auth/get-session");
    for name in [
        "x-forwarded-host",
        "x_forwarded_host",
        "x-forwarded-proto",
        "x_forwarded_proto",
        "x-forwarded-port",
        "x-forwarded-prefix",
    ] {
        assert!(
            headers.get(name).is_none(),
            "{name} reached Better-Auth: {headers:?}"
        );
    }
    // Nor under any other name.
    for (name, value) in headers {
        assert!(
            !value.to_str().unwrap().contains("evil"),
            "{name}: {value:?} reached Better-Auth"
        );
    }
    // The upstream's Host is its own URL's.
    assert_eq!(headers["host"], upstream.trim_start_matches("http://"));
}

/// The newest audit row: action, actor, target, session, impersonator, request id, details.
async fn newest(
    w: &World,
) -> Option<(
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Value,
)> {
    sqlx::query_as(
        "SELECT action, actor_id, target_user_id, session_id, impersonated_by, request_id, details
         FROM warden_audit_log ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(&w.db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn admin_writes_through_the_auth_proxy_are_audited(db: PgPool) {
    let (upstream, seen, _task) = recording_upstream().await;
    let w = World::with(db, proxied(&upstream, AdminThroughProxy::Audit)).await;
    w.exec("UPDATE session SET impersonated_by = 'someone' WHERE id = 's-admin'")
        .await;

    // A bearer session token (the bearer plugin's form), raw.
    let answer = w
        .bearer("tok-admin")
        .header("x-request-id", "proxied-ban-1")
        .post(
            "/api/auth/admin/ban-user",
            Some(json!({"userId": "bob", "banReason": "spam", "newPassword": "hunter2", "data": {"sessionToken": "t"}})),
        )
        .await;
    assert_eq!(answer.status, 200);
    let some = |s: &str| Some(s.to_owned());
    let (action, actor, target, session, impersonator, request_id, details) = newest(&w).await.unwrap();
    assert_eq!(
        (
            action.as_str(),
            actor.as_str(),
            target,
            session,
            impersonator,
            request_id
        ),
        (
            "better-auth.admin/ban-user",
            "admin",
            some("bob"),
            some("s-admin"),
            some("someone"),
            some("proxied-ban-1")
        )
    );
    assert_eq!(
        details,
        json!({"method": "POST", "path": "/api/auth/admin/ban-user", "status": 200,
               "body": {"userId": "bob", "banReason": "spam", "newPassword": "[redacted]",
                        "data": {"sessionToken": "[redacted]"}}}),
        "no password, token or secret is kept"
    );

    // Better-Auth's session cookie, signed and URL-encoded, in any case of the path.
    let signed = session_token::sign("tok-alice-1", &Secret::new(common::SECRET));
    let encoded = signed.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let answer = w
        .anonymous()
        .header(
            "cookie",
            &format!("theme=dark; better-auth.session_token={encoded}"),
        )
        .post(
            "/api/auth/Admin/set-role",
            Some(json!({"userId": "bob", "role": "admin"})),
        )
        .await;
    assert_eq!(answer.status, 200);
    let (action, actor, target, session, ..) = newest(&w).await.unwrap();
    assert_eq!(
        (action.as_str(), actor.as_str(), target, session),
        (
            "better-auth.Admin/set-role",
            "alice",
            some("bob"),
            some("s-alice-1")
        )
    );

    // A credential that matches no session: recorded all the same, the actor unknown.
    let answer = w
        .bearer("no-such-token")
        .post("/api/auth/admin/remove-user", Some(json!({"userId": "bob"})))
        .await;
    assert_eq!(answer.status, 200);
    let (action, actor, target, session, ..) = newest(&w).await.unwrap();
    assert_eq!(
        (action.as_str(), actor.as_str(), target, session),
        ("better-auth.admin/remove-user", "unknown", some("bob"), None)
    );

    // Reads are forwarded and not recorded.
    let rows = w.scalar_i64("SELECT count(*) FROM warden_audit_log").await;
    for (method, path) in [
        ("GET", "/api/auth/admin/list-users"),
        ("POST", "/api/auth/admin/has-permission"),
        ("POST", "/api/auth/admin/list-user-sessions"),
        ("POST", "/api/auth/sign-in/email"),
    ] {
        let answer = w.bearer("tok-admin").call(method, path, Some(json!({}))).await;
        assert_eq!(answer.status, 200, "{method} {path}");
    }
    assert_eq!(w.scalar_i64("SELECT count(*) FROM warden_audit_log").await, rows);
    assert_eq!(seen.lock().unwrap().len(), 7, "everything was forwarded");

    // What warden's /admin/audit shows of it.
    let answer = w.as_admin().get("/admin/audit?actor=admin").await;
    let entry = &answer.body["entries"][0];
    assert_eq!(entry["action"], "better-auth.admin/ban-user");
    assert_eq!(entry["impersonatedBy"], "someone");
    assert_eq!(entry["requestId"], "proxied-ban-1");
}

#[sqlx::test]
async fn admin_writes_through_the_auth_proxy_can_be_refused(db: PgPool) {
    let (upstream, seen, _task) = recording_upstream().await;
    let w = World::with(db, proxied(&upstream, AdminThroughProxy::Refuse)).await;
    let before = w.snapshot().await;
    for path in [
        "/api/auth/admin/ban-user",
        "/api/auth/ADMIN/ban-user",
        "/api/auth//admin/ban-user",
        "/api/auth/%61dmin/ban-user",
        "/api/auth/admin/impersonate-user",
    ] {
        let answer = w
            .bearer("tok-admin")
            .post(path, Some(json!({"userId": "bob", "banReason": "spam"})))
            .await;
        assert_eq!(
            answer.outcome(),
            (403, Some("admin_through_proxy_refused")),
            "{path}"
        );
    }
    let answer = w.bearer("tok-admin").delete("/api/auth/admin/remove-user").await;
    assert_eq!(answer.outcome(), (403, Some("admin_through_proxy_refused")));
    assert!(seen.lock().unwrap().is_empty(), "nothing was forwarded");
    assert_eq!(w.snapshot().await, before, "nothing changed, nothing recorded");

    // Reads and everything outside admin/ still go through.
    assert_eq!(
        w.bearer("tok-admin")
            .get("/api/auth/admin/list-users")
            .await
            .status,
        200
    );
    assert_eq!(
        w.bearer("tok-admin")
            .post(
                "/api/auth/admin/has-permission",
                Some(json!({"permissions": {"user": ["ban"]}}))
            )
            .await
            .status,
        200
    );
    assert_eq!(
        w.anonymous()
            .post("/api/auth/sign-in/email", Some(json!({})))
            .await
            .status,
        200
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
}

/// Junk sent to Better-Auth's admin endpoints through the proxy costs warden no read: before
/// Better-Auth answers, only a credential whose signature warden checked is looked up (to name
/// the actor while the session still exists); any other only once Better-Auth has accepted the
/// write. Here Better-Auth refuses every one.
#[sqlx::test]
async fn junk_admin_writes_through_the_proxy_cost_no_read(db: PgPool) {
    let refusing = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": "UNAUTHORIZED"})),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let _task = tokio::spawn(async move { axum::serve(listener, refusing).await.unwrap() });
    let (counted, queries) = common::counting_pool(&db).await;
    let w = World::with(counted, proxied(&upstream, AdminThroughProxy::Audit)).await;
    let settled = async || {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        queries.load(std::sync::atomic::Ordering::SeqCst)
    };
    let before = settled().await;
    for _ in 0..20 {
        let junk = crate::support::random_hex(16);
        let answer = w
            .bearer(&junk)
            .post("/api/auth/admin/ban-user", Some(json!({"userId": "bob"})))
            .await;
        assert_eq!(answer.status, 401);
        let cookie = format!("better-auth.session_token={}", crate::support::random_hex(16));
        let answer = w
            .anonymous()
            .header("cookie", &cookie)
            .post(
                "/api/auth/admin/set-role",
                Some(json!({"userId": "bob", "role": "admin"})),
            )
            .await;
        assert_eq!(answer.status, 401);
    }
    assert_eq!(settled().await - before, 0, "junk cost warden database reads");
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM warden_audit_log").await,
        0,
        "nothing Better-Auth refused is recorded"
    );
}

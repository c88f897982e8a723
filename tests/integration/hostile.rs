//! Hostile clients (issue 11): what one client without any credential can try, and why it
//! costs nobody else their service. Each test drives the HTTP API (or a raw socket) and checks
//! what a user would see.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::json;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden::Secret;
use warden::server::http::HttpSettings;
use warden::server::http::server::ConnectionLimits;
use warden::testing::auth::Verifier;
use warden::testing::auth::jwks::{JwksCache, JwksSource};
use warden::testing::auth::keys::Alg;
use warden::testing::auth::session_token;

use crate::common::{self, MockJwks, TestKey, claims, insert_user, jwks_of};
use crate::support::random_hex;
use crate::world::{Setup, World};

fn with_limits(limits: ConnectionLimits) -> Setup {
    Setup::default().state(move |s| {
        s.http = Arc::new(HttpSettings {
            connections: limits,
            ..HttpSettings::default()
        })
    })
}

/// Reads until the server closes the connection; `None` if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one whole `/healthz` answer (headers and its short body).
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n{") || !seen.ends_with(b"}") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(n > 0, "closed before answering");
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

// ---- 1. metrics labels come from bounded sets ------------------------------------------

#[sqlx::test]
async fn made_up_methods_do_not_grow_the_metrics(db: PgPool) {
    let w = World::new(db).await;
    let metrics = async || {
        let request = Request::get("/metrics").body(Body::empty()).unwrap();
        common::send_raw(&w.app, request).await.2
    };
    w.as_alice().get("/users/me").await;
    let before = metrics().await.len();
    for i in 0..150 {
        let method = Method::from_bytes(format!("X{i}{}", "A".repeat(2000)).as_bytes()).unwrap();
        let request = Request::builder()
            .method(method)
            .uri("/users/me")
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = common::send_raw(&w.app, request).await;
        assert_eq!(status, 405);
        let junk_path = format!("/{}/{i}", "p".repeat(500));
        w.anonymous().get(&junk_path).await;
    }
    let after = metrics().await;
    eprintln!("/metrics: {before} bytes before, {} after", after.len());
    assert!(after.contains(r#"method="other""#), "{after}");
    assert!(after.contains(r#"route="unmatched""#));
    assert!(
        !after.contains("AAAA") && !after.contains("pppp"),
        "no raw method or path in labels"
    );
    assert!(
        after.len() < before + 16 * 1024,
        "300 junk requests added {} bytes",
        after.len() - before
    );
}

// ---- 2. slow, silent and idle connections are closed; the cap keeps serving --------------

#[sqlx::test]
async fn slow_silent_and_idle_connections_are_closed(db: PgPool) {
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(1),
        keep_alive_timeout: Duration::from_secs(2),
        stall_timeout: Duration::from_secs(30),
        max_connections: 100,
    };
    let server = World::with(db, with_limits(limits)).await.serve().await;

    // Half a request head, then nothing: closed by the header read timeout.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let took = closed_within(&mut slow, Duration::from_secs(6))
        .await
        .expect("a half-sent head is not held for ever");
    assert!(took >= Duration::from_millis(900), "{took:?}");

    // A byte every 300 ms is a head that never completes: closed all the same.
    let mut drip = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let dripped = async {
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\n" {
            if drip.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(6), dripped).await;
    assert!(
        closed_within(&mut drip, Duration::from_secs(1)).await.is_some(),
        "a dripping client is closed"
    );
    assert!(started.elapsed() < Duration::from_secs(6));

    // Connected, silent: closed.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(6)).await.is_some());

    // Served, then idle: kept for the keep-alive timeout (longer than the header timeout),
    // then closed.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_answer(&mut idle).await.starts_with("HTTP/1.1 200"));
    let took = closed_within(&mut idle, Duration::from_secs(8))
        .await
        .expect("an idle keep-alive connection is closed");
    assert!(
        took >= Duration::from_millis(1800),
        "keep-alive timeout, not header: {took:?}"
    );
}

#[sqlx::test]
async fn at_the_connection_cap_the_longest_idle_connection_makes_room(db: PgPool) {
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(30),
        keep_alive_timeout: Duration::from_secs(30),
        stall_timeout: Duration::from_secs(30),
        max_connections: 4,
    };
    let server = World::with(db, with_limits(limits)).await.serve().await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A fifth client is served, at once (and stays connected, keeping the server at its cap).
    let mut served = Vec::new();
    for (round, oldest) in idle.iter_mut().take(3).enumerate() {
        let mut fresh = TcpStream::connect(server.addr).await.unwrap();
        fresh
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = read_answer(&mut fresh).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "round {round}: {answer}");
        served.push(fresh);
        // The connection idle the longest gave its place.
        assert!(
            closed_within(oldest, Duration::from_secs(2)).await.is_some(),
            "round {round}: the oldest idle connection was closed"
        );
    }
    assert!(
        closed_within(&mut idle[3], Duration::from_millis(300))
            .await
            .is_none(),
        "the newest idle connection is still open"
    );
}

/// One HTTP/2 frame: its type, flags, stream and payload.
async fn read_frame(stream: &mut TcpStream) -> (u8, u8, u32, Vec<u8>) {
    let mut head = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head))
        .await
        .expect("a frame within 5 s")
        .unwrap();
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.unwrap();
    (head[3], head[4], id, payload)
}

#[sqlx::test]
async fn h2c_with_prior_knowledge_is_served_and_a_dripped_preface_times_out(db: PgPool) {
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    };
    let server = World::with(db, with_limits(limits)).await.serve().await;

    // The preface, an empty SETTINGS, and GET /healthz as one HEADERS frame (HPACK by hand:
    // static-table :method GET, :scheme http, then :path and :authority as literals).
    let mut block = vec![0x82, 0x86, 0x04, 8];
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x01, 1, b'x']);
    let mut request = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    request.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
    let len = block.len() as u32;
    request.extend_from_slice(&len.to_be_bytes()[1..]);
    request.extend_from_slice(&[0x1, 0x5, 0, 0, 0, 1]);
    request.extend_from_slice(&block);
    let mut h2 = TcpStream::connect(server.addr).await.unwrap();
    h2.write_all(&request).await.unwrap();
    let headers = loop {
        let (kind, _, id, payload) = read_frame(&mut h2).await;
        if kind == 0x1 && id == 1 {
            break payload;
        }
        assert!(
            kind == 0x4 || kind == 0x8,
            "only SETTINGS or WINDOW_UPDATE before the answer: {kind}"
        );
    };
    // 0x88 is the static table's `:status 200`.
    assert_eq!(headers.first(), Some(&0x88), "{headers:?}");

    // The preface's first bytes, then nothing: the protocol is never known, and the header
    // read timeout closes the connection as it closes a half-sent HTTP/1 head.
    // Nothing is answered meanwhile (an HTTP/2 connection would send its SETTINGS).
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2").await.unwrap();
    let started = Instant::now();
    let mut answered = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(6), partial.read(&mut buf)).await {
            Err(_) => panic!("a half-sent preface is not held for ever"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answered.extend_from_slice(&buf[..n]),
        }
    }
    assert!(answered.is_empty(), "{answered:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // Sent in two parts, the preface still makes an HTTP/2 connection that answers.
    let mut split = TcpStream::connect(server.addr).await.unwrap();
    split.write_all(&request[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    split.write_all(&request[10..]).await.unwrap();
    assert_eq!(first_header_byte(&mut split).await, 0x88);
}

/// The first byte of the header block answering stream 1 (skipping SETTINGS and
/// WINDOW_UPDATE frames before it).
async fn first_header_byte(stream: &mut TcpStream) -> u8 {
    loop {
        let (kind, _, id, payload) = read_frame(stream).await;
        if kind == 0x1 && id == 1 {
            return payload.first().copied().unwrap_or_default();
        }
        assert!(
            kind == 0x4 || kind == 0x8,
            "only SETTINGS or WINDOW_UPDATE before the answer: {kind}"
        );
    }
}

#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    let now = warden::server::http::server::raise_open_files_limit().unwrap();
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    assert_eq!((now, soft), (hard, hard));
}

// ---- 3. unknown kids cannot queue behind a hanging JWKS ---------------------------------

#[sqlx::test]
async fn a_flood_of_unknown_kids_against_a_hanging_jwks_leaves_valid_users_alone(db: PgPool) {
    insert_user(&db, "u1", "u1@example.com").await;
    let key = TestKey::generate(Alg::EdDsa);
    let mock = MockJwks::start(jwks_of(&[&key])).await;
    let jwks = JwksCache::with_max_waiters(
        JwksSource {
            url: mock.url.clone(),
            client: reqwest::Client::new(),
            timeout: Duration::from_secs(1),
            db: None,
            db_grace: Duration::ZERO,
        },
        Duration::from_secs(1),
        4,
    );
    jwks.refresh().await.unwrap();
    let verifier = Verifier::new(jwks, common::rules());
    let setup = Setup::empty().auth(move |a| a.verifier(verifier)).state(|s| {
        s.http = Arc::new(HttpSettings {
            max_concurrent_requests: 64,
            ..HttpSettings::default()
        })
    });
    let app = Arc::new(World::with(db, setup).await);
    let valid = key.sign(&claims("u1"));
    assert_eq!(app.bearer(&valid).get("/users/me").await.status, 200);

    // Better-Auth accepts connections but never answers.
    mock.set_delay(Duration::from_secs(60));
    let stop = Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..80)
        .map(|_| {
            let (app, key, stop) = (Arc::clone(&app), TestKey::generate(Alg::EdDsa), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut outcomes = std::collections::BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    let header = json!({"alg": "EdDSA", "kid": random_hex(8)});
                    let token = key.sign_with_header(&header, &claims("u1"));
                    let answer = app.bearer(&token).get("/users/me").await;
                    let outcome = (
                        answer.status.as_u16(),
                        answer.body["code"].as_str().unwrap_or("").to_owned(),
                    );
                    *outcomes.entry(outcome).or_insert(0u32) += 1;
                    // An immediate answer never returns Pending: let the others run.
                    tokio::task::yield_now().await;
                }
                outcomes
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let flood_for = Instant::now();
    while flood_for.elapsed() < Duration::from_secs(3) {
        let start = Instant::now();
        let answer = app.bearer(&valid).get("/users/me").await;
        latencies.push(start.elapsed());
        assert_eq!(answer.outcome(), (200, None), "a valid user during the flood");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = std::collections::BTreeMap::new();
    for task in flood {
        for (k, v) in task.await.unwrap() {
            *outcomes.entry(k).or_insert(0) += v;
        }
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "flood outcomes {outcomes:?}; valid user: {} requests, all 200, p99 {p99:?}",
        latencies.len()
    );
    for (status, code) in outcomes.keys() {
        assert!(
            (*status == 401 && code == "invalid_token") || (*status == 503 && code == "jwks_unavailable"),
            "unexpected {status} {code}"
        );
    }
    let hits = mock.hits();
    assert!((2..=5).contains(&hits), "one fetch per cooldown at most: {hits}");

    // Better-Auth answers again and has rotated: the new key's first token is accepted.
    mock.set_delay(Duration::ZERO);
    let rotated = TestKey::generate(Alg::EdDsa);
    mock.set_jwks(jwks_of(&[&key, &rotated]));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let answer = app.bearer(&rotated.sign(&claims("u1"))).get("/users/me").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

// ---- 4. NUL and other control characters are the client's 4xx ----------------------------

#[sqlx::test]
async fn nul_bytes_anywhere_are_a_4xx_and_change_nothing(db: PgPool) {
    let w = World::new(db).await;
    let before = w.snapshot().await;
    let nul = "a\u{0}b";
    for (method, path, body, expected) in [
        ("DELETE", "/users/me/sessions/%00", None, 404),
        ("GET", "/admin/users/%00", None, 404),
        ("GET", "/admin/users/a%00b/sessions", None, 404),
        ("DELETE", "/admin/sessions/%00", None, 404),
        ("DELETE", "/admin/users/%00", None, 404),
        ("GET", "/admin/users?search=%00", None, 422),
        ("GET", "/admin/users?search=x%00&searchField=name", None, 422),
        ("GET", "/admin/users?role=%00", None, 422),
        ("GET", "/admin/audit?actor=%00", None, 422),
        ("GET", "/admin/audit?target=a%01", None, 422),
        (
            "POST",
            "/admin/users/alice/ban",
            Some(json!({"reason": nul})),
            422,
        ),
        ("PUT", "/admin/users/alice/role", Some(json!({"role": nul})), 422),
        ("PATCH", "/users/me", Some(json!({"name": nul})), 422),
        (
            "PATCH",
            "/users/me",
            Some(json!({"image": format!("https://x.test/{nul}")})),
            422,
        ),
    ] {
        let token = if path.starts_with("/admin") {
            &w.admin
        } else {
            &w.alice
        };
        let answer = w.bearer(token).call(method, path, body).await;
        assert_eq!(
            answer.status.as_u16(),
            expected,
            "{method} {path}: {:?}",
            answer.body
        );
        assert!(answer.body["code"].is_string(), "{method} {path}: problem+json");
    }
    assert_eq!(w.snapshot().await, before);
}

// ---- 5. the last usable admin, and admins racing each other ------------------------------

#[sqlx::test]
async fn a_banned_admin_does_not_count_as_the_other_admin(db: PgPool) {
    let w = World::new(db).await;
    w.exec(r#"UPDATE "user" SET role = 'admin' WHERE id = 'alice'"#)
        .await;
    let answer = w.as_admin().post("/admin/users/alice/ban", None).await;
    assert_eq!(answer.status, 200);
    let answer = w
        .as_admin()
        .put("/admin/users/admin/role", json!({"role": "user"}))
        .await;
    assert_eq!(answer.outcome(), (409, Some("last_admin")));
    assert_eq!(
        w.scalar_text(r#"SELECT role FROM "user" WHERE id = 'admin'"#)
            .await
            .as_deref(),
        Some("admin")
    );
    // An expired ban is no ban: alice counts again once hers is over.
    w.exec(r#"UPDATE "user" SET ban_expires = now() - interval '1 minute' WHERE id = 'alice'"#)
        .await;
    let answer = w
        .as_admin()
        .put("/admin/users/admin/role", json!({"role": "user"}))
        .await;
    assert_eq!(answer.status, 200);
}

#[sqlx::test]
async fn two_admins_banning_each_other_at_once_cannot_both_win(db: PgPool) {
    let w = World::new(db).await;
    for round in 0..10 {
        w.exec(
            r#"UPDATE "user" SET role = 'admin', banned = false, ban_reason = NULL, ban_expires = NULL
               WHERE id IN ('admin', 'alice')"#,
        )
        .await;
        w.exec(
            "INSERT INTO session (id, expires_at, token, created_at, updated_at, user_id) VALUES
             ('s-admin', now() + interval '1 hour', 'tok-admin', now(), now(), 'admin'),
             ('s-alice-1', now() + interval '1 hour', 'tok-alice-1', now(), now(), 'alice')
             ON CONFLICT (id) DO NOTHING",
        )
        .await;
        let (admin, alice) = (w.as_admin(), w.as_alice());
        let (a, b) = tokio::join!(
            admin.post("/admin/users/alice/ban", None),
            alice.post("/admin/users/admin/ban", None),
        );
        let mut outcomes = [a.outcome(), b.outcome()];
        outcomes.sort();
        // The loser is refused as banned, or (when its request was authenticated before the
        // winner's ban committed, and its session checked after) as signed out.
        assert!(
            matches!(
                outcomes,
                [(200, None), (401, Some("session_revoked"))] | [(200, None), (403, Some("banned"))]
            ),
            "round {round}: {outcomes:?}"
        );
        let banned = w
            .scalar_i64(r#"SELECT count(*) FROM "user" WHERE id IN ('admin', 'alice') AND banned"#)
            .await;
        assert_eq!(banned, 1, "round {round}: exactly one admin is banned");
    }
}

// ---- 8. the auth proxy sets the client address itself and refuses tricks ----------------

/// An upstream that answers with what it received.
async fn echo_upstream() -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::HeaderMap;
    let router = axum::Router::new().fallback(
        |headers: HeaderMap, uri: axum::http::Uri, body: axum::body::Bytes| async move {
            let headers: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                .collect();
            axum::Json(json!({"path": uri.path(), "headers": headers, "bodyLength": body.len()}))
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (url, task)
}

fn proxied(upstream: &str, trusted: &[&str]) -> Setup {
    let trusted: Vec<ipnet::IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
    let upstream = upstream.to_owned();
    Setup::default()
        .auth(move |a| a.trusted_proxies(trusted))
        .state(move |s| s.auth_proxy = Some(upstream))
}

#[sqlx::test]
async fn the_auth_proxy_names_the_client_itself(db: PgPool) {
    let (upstream, _task) = echo_upstream().await;
    let w = World::with(db, proxied(&upstream, &[])).await;
    let server = w.serve().await;
    let client = reqwest::Client::new();
    let seen: serde_json::Value = client
        .post(server.url("/api/auth/sign-in/email"))
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-real-ip", "6.6.6.7")
        .header("forwarded", "for=6.6.6.8")
        .header("origin", "http://app.test")
        .json(&json!({"email": "a@b.test"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let headers = &seen["headers"];
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1", "{seen}");
    assert!(
        headers.get("x-real-ip").is_none() && headers.get("forwarded").is_none(),
        "{seen}"
    );
    assert_eq!(headers["origin"], "http://app.test");
    assert!(headers["via"].as_str().unwrap().starts_with("1.1 warden-"));

    // Behind a trusted proxy, the address it reports (the rightmost untrusted one).
    let behind = w
        .variant(proxied(&upstream, &["127.0.0.1/32"]))
        .await
        .serve()
        .await;
    let seen: serde_json::Value = client
        .get(behind.url("/api/auth/get-session"))
        .header("x-forwarded-for", "6.6.6.6, 198.51.100.23")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["headers"]["x-forwarded-for"], "198.51.100.23", "{seen}");

    // A chunked body over BODY_LIMIT_BYTES (64 KiB): 413.
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(
        b"POST /api/auth/sign-up/email HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = format!("400\r\n{}\r\n", " ".repeat(1024));
    for _ in 0..100 {
        if raw.write_all(chunk.as_bytes()).await.is_err() {
            break; // the server answered and closed early: fine
        }
    }
    let _ = raw.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
}

#[sqlx::test]
async fn the_auth_proxy_refuses_dot_segments_and_loops(db: PgPool) {
    let (upstream, _task) = echo_upstream().await;
    let app = World::with(db, proxied(&upstream, &[])).await;
    for path in [
        "/api/auth/%2e%2e/admin",
        "/api/auth/../admin",
        "/api/auth/./jwks",
        "/api/auth/a%2fb",
        "/api/auth/a%5Cb",
    ] {
        let answer = app.anonymous().get(path).await;
        assert_eq!(answer.outcome(), (400, Some("bad_request")), "{path}");
    }
    assert_eq!(app.anonymous().get("/api/auth/jwks").await.status, 200);

    // BETTER_AUTH_URL pointing at warden itself: refused, not an endless loop.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = format!("http://{}", listener.local_addr().unwrap());
    let looping = app.variant(proxied(&own, &[])).await.app;
    tokio::spawn(async move {
        axum::serve(
            listener,
            looping.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let answer = reqwest::get(format!("{own}/api/auth/get-session")).await.unwrap();
    assert_eq!(answer.status(), 508);
    let problem: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(problem["code"], "proxy_loop");
}

// ---- 9. cheap for the caller must be cheap for warden too --------------------------------

#[sqlx::test]
async fn refused_credentials_are_limited_per_client(db: PgPool) {
    let setup = Setup::default().auth(|a| {
        a.failures_per_minute(5)
            .trusted_proxies(vec!["127.0.0.1/32".parse().unwrap()])
    });
    let w = World::with(db, setup).await;
    let server = w.serve().await;
    let client = reqwest::Client::new();
    let me = server.url("/users/me");
    let get = async |token: &str, from: &str| {
        let answer = client
            .get(&me)
            .bearer_auth(token)
            .header("x-forwarded-for", from)
            .send()
            .await
            .unwrap();
        let retry_after = answer
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: serde_json::Value = answer.json().await.unwrap();
        (body["code"].as_str().unwrap_or("ok").to_owned(), retry_after)
    };
    let attacker = "198.51.100.66";
    assert_eq!(
        get(&w.alice, attacker).await.0,
        "ok",
        "alice's token is now cached"
    );
    for i in 0..5 {
        assert_eq!(
            get(&format!("junk.junk.junk{i}"), attacker).await.0,
            "invalid_token"
        );
    }
    // Out of attempts: what would cost a database read (an unsigned session token) or a JWKS
    // fetch (an unknown kid) is refused at once ...
    let (code, retry_after) = get("a-session-token-that-does-not-exist", attacker).await;
    assert_eq!(code, "too_many_requests");
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    let unknown_kid = w
        .key
        .sign_with_header(&json!({"alg": "EdDSA", "kid": "made-up"}), &claims("alice"));
    assert_eq!(get(&unknown_kid, attacker).await.0, "too_many_requests");
    // ... while what costs nothing, or a bounded check, still gets its real answer.
    assert_eq!(get("junk.junk.junk", attacker).await.0, "invalid_token");
    // A verified token costs nothing: a user behind the same address keeps working.
    assert_eq!(get(&w.alice, attacker).await.0, "ok");
    // Another client is not affected.
    assert_eq!(
        get("another-token-that-does-not-exist", "198.51.100.67").await.0,
        "invalid_token"
    );
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("warden_auth_throttled_total 2"), "{metrics}");
}

/// A world whose limiter allows `limit` refusals a minute per address (behind a proxy on
/// 127.0.0.1, which names the client), over a pool that counts the queries it answers.
async fn limited_and_counted(db: &PgPool, limit: u32) -> (World, Arc<std::sync::atomic::AtomicUsize>) {
    let setup = Setup::default().auth(move |a| {
        a.failures_per_minute(limit)
            .trusted_proxies(vec!["127.0.0.1/32".parse().unwrap()])
    });
    let (counted, queries) = common::counting_pool(db).await;
    (World::with(counted, setup).await, queries)
}

/// One address floods warden with every kind of junk credential. The flood stays bounded
/// (what costs a database read or a JWKS fetch is limited to the address's attempts), and a
/// person behind the same address with a fresh, valid JWT or signed session token (a new
/// user: nothing of theirs is cached) is served during the flood and right after it.
#[sqlx::test]
async fn a_flood_from_one_address_is_bounded_and_its_valid_people_are_served(db: PgPool) {
    const LIMIT: u32 = 5;
    let (w, queries) = limited_and_counted(&db, LIMIT).await;
    let server = w.serve().await;
    let client = reqwest::Client::new();
    let me = server.url("/users/me");
    let office = "203.0.113.77";
    let stranger = Arc::new(TestKey::generate(Alg::EdDsa));
    let jwks_before = w.jwks.hits();
    // The queries warden's pool answered (a connection given back is counted in a task of its
    // own just after the query: let the count settle before reading it).
    let settled = async || {
        tokio::time::sleep(Duration::from_millis(300)).await;
        queries.load(Ordering::SeqCst)
    };
    // Every kind of junk, each one new (nothing cached helps): unsigned session tokens (a
    // database read each), JWTs with made-up kids (a JWKS fetch each), forged JWTs under the
    // real kid (a signature check), forged signed session tokens (an HMAC), garbage.
    let junk = |i: usize| -> String {
        match i % 5 {
            0 => random_hex(16),
            1 => w.key.sign_with_header(
                &json!({"alg": "EdDSA", "kid": format!("made-up-{i}")}),
                &claims("alice"),
            ),
            2 => stranger.sign_with_header(&json!({"alg": "EdDSA", "kid": w.key.kid}), &claims("alice")),
            3 => format!("{}.{}", random_hex(16), "A".repeat(43) + "="),
            _ => format!("junk.{i}.junk"),
        }
    };
    // Eight clients at once from the address, each sending its share as fast as answered.
    let flood = |from: usize, count: usize| {
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let (client, me) = (client.clone(), me.clone());
                let tokens: Vec<String> = (from..from + count)
                    .filter(|i| i % 8 == worker)
                    .map(junk)
                    .collect();
                tokio::spawn(async move {
                    let mut codes = Vec::new();
                    for token in tokens {
                        let answer = client
                            .get(&me)
                            .bearer_auth(&token)
                            .header("x-forwarded-for", office)
                            .send()
                            .await
                            .unwrap();
                        let body: serde_json::Value = answer.json().await.unwrap();
                        codes.push(body["code"].as_str().unwrap_or("ok").to_owned());
                    }
                    codes
                })
            })
            .collect();
        tokio::spawn(async move {
            let mut codes = std::collections::BTreeMap::<String, usize>::new();
            for worker in workers {
                for code in worker.await.unwrap() {
                    *codes.entry(code).or_default() += 1;
                }
            }
            codes
        })
    };
    // A new person behind the office's address: a fresh JWT, and the signed session token
    // Better-Auth's bearer plugin hands out.
    let mut people = 0;
    let mut newcomer = async || {
        people += 1;
        let (id, sid, token) = (format!("new-{people}"), format!("s-new-{people}"), random_hex(16));
        insert_user(&db, &id, &format!("{id}@office.test")).await;
        common::insert_session(&db, &sid, &id, &token, 3600).await;
        let jwt = w.key.sign(&common::claims_with_sid(&id, &sid));
        let signed = session_token::sign(&token, &Secret::new(common::SECRET));
        let mut codes = Vec::new();
        for credential in [jwt, signed] {
            let answer = client
                .get(&me)
                .bearer_auth(&credential)
                .header("x-forwarded-for", office)
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(body["id"], id.as_str(), "{body}");
            codes.push(body["id"] == id.as_str());
        }
        codes
    };

    // The flood alone: what it costs.
    let reads_before = settled().await;
    let first = flood(0, 400).await.unwrap();
    let reads = settled().await - reads_before;
    let fetches = w.jwks.hits() - jwks_before;
    eprintln!(
        "flood of 400 junk credentials from one address: answers {first:?}; database queries: {reads}; JWKS fetches: {fetches}"
    );
    // The address's attempts are all the dear work it gets, even with eight requests in
    // flight at once: 80 unsigned tokens and 80 made-up kids asked for far more.
    assert!(reads <= LIMIT as usize, "{reads} database queries");
    assert!(fetches <= 1, "{fetches} JWKS fetches (one per cooldown at most)");
    assert!(
        first.get("too_many_requests").copied().unwrap_or(0) >= 150,
        "{first:?}"
    );

    // During a second flood, new people behind the same address are served.
    let second = flood(400, 400);
    let mut served = 0;
    for _ in 0..5 {
        served += newcomer().await.iter().filter(|ok| **ok).count();
    }
    let second = second.await.unwrap();
    assert!(
        second.get("too_many_requests").copied().unwrap_or(0) >= 150,
        "the flood was still being refused meanwhile: {second:?}"
    );
    // And right after it.
    served += newcomer().await.iter().filter(|ok| **ok).count();
    assert_eq!(
        served, 12,
        "6 new people × (fresh JWT, signed session token), all 200"
    );
    eprintln!(
        "during and right after a second flood ({second:?}): {served} of 12 fresh valid credentials from the same address served"
    );
}

/// A burst of junk from an address that has not failed yet: 64 unsigned session tokens sent
/// at once, each a database read if it were looked up. The address gets its attempts' worth
/// of reads, not one per request in flight.
#[sqlx::test]
async fn a_burst_from_a_clean_address_gets_no_more_reads_than_its_attempts(db: PgPool) {
    const LIMIT: u32 = 5;
    let (w, queries) = limited_and_counted(&db, LIMIT).await;
    let server = w.serve().await;
    let client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = queries.load(Ordering::SeqCst);
    let burst: Vec<_> = (0..64)
        .map(|_| {
            let request = client
                .get(server.url("/users/me"))
                .bearer_auth(random_hex(16))
                .header("x-forwarded-for", "203.0.113.99")
                .send();
            tokio::spawn(async move { request.await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for answer in burst {
        *statuses.entry(answer.await.unwrap()).or_default() += 1;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reads = queries.load(Ordering::SeqCst) - before;
    eprintln!("64 junk session tokens at once from a clean address: {statuses:?}, {reads} database reads");
    assert!(reads <= LIMIT as usize, "{reads} reads for a limit of {LIMIT}");
    assert_eq!(statuses.get(&401).copied(), Some(LIMIT), "{statuses:?}");
    assert_eq!(statuses.get(&429).copied(), Some(64 - LIMIT), "{statuses:?}");
}

#[sqlx::test]
async fn unknown_session_tokens_are_remembered_and_signatures_can_be_required(db: PgPool) {
    let w = World::new(db.clone()).await;
    let junk = "unknownTokenNoSessionHas01234567";
    let answer = w.bearer(junk).get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
    // The refusal is remembered for a minute: the same junk does not reach the database again,
    // which shows even when a session with that very token appears meanwhile.
    w.exec(&format!(
        "INSERT INTO session (id, expires_at, token, created_at, updated_at, user_id)
         VALUES ('s-late', now() + interval '1 hour', '{junk}', now(), now(), 'alice')"
    ))
    .await;
    let answer = w.bearer(junk).get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
    assert_eq!(w.bearer("tok-alice-2").get("/users/me").await.status, 200);

    // REQUIRE_SIGNED_SESSION_TOKENS: the raw form is refused, the signed one accepted.
    let strict = w
        .variant(Setup::default().policy(|p| p.require_signed_session_tokens = true))
        .await;
    let answer = strict.bearer("tok-alice-2").get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
    assert!(answer.body["detail"].as_str().unwrap().contains("signed"));
    let signed = session_token::sign("tok-alice-2", &Secret::new(common::SECRET));
    assert_eq!(strict.bearer(&signed).get("/users/me").await.status, 200);
}

//! Hostile clients against the real stack: floods of unknown `kid`s while Better-Auth hangs
//! (frozen with SIGSTOP), floods of junk session tokens, slow connections, method and path
//! junk — while a valid user keeps being served. Each scenario prints what the valid user saw
//! (statuses, p99 latency) and warden's RSS, for the record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stack::{Options, Stack, jwt_header};
use crate::support::random_hex;

type Outcomes = BTreeMap<(u16, String), u32>;

/// `concurrency` clients send `make()`'s bearer to `/users/me` until `stop`; their outcomes.
fn flood(
    stack: &Stack,
    concurrency: usize,
    stop: &Arc<AtomicBool>,
    make: impl Fn() -> String + Send + Sync + 'static,
) -> Vec<tokio::task::JoinHandle<Outcomes>> {
    let make = Arc::new(make);
    (0..concurrency)
        .map(|_| {
            let (http, url, stop, make) = (
                stack.http.clone(),
                format!("{}/users/me", stack.warden_url),
                Arc::clone(stop),
                Arc::clone(&make),
            );
            tokio::spawn(async move {
                let mut outcomes = Outcomes::new();
                while !stop.load(Ordering::Relaxed) {
                    let outcome = match http.get(&url).bearer_auth(make()).send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body: serde_json::Value = r.json().await.unwrap_or_default();
                            (status, body["code"].as_str().unwrap_or("").to_owned())
                        }
                        Err(_) => (0, "transport".to_owned()),
                    };
                    *outcomes.entry(outcome).or_insert(0) += 1;
                }
                outcomes
            })
        })
        .collect()
}

async fn total(tasks: Vec<tokio::task::JoinHandle<Outcomes>>) -> Outcomes {
    let mut all = Outcomes::new();
    for task in tasks {
        for (k, v) in task.await.unwrap() {
            *all.entry(k).or_insert(0) += v;
        }
    }
    all
}

/// A valid user calling `/users/me` every 20 ms for `duration`: every status, the p99 latency,
/// and warden's peak RSS seen meanwhile.
async fn valid_user(stack: &Stack, jwt: &str, duration: Duration) -> (BTreeMap<u16, u32>, Duration, f64) {
    let mut statuses = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut peak_rss: f64 = 0.0;
    let start = Instant::now();
    let mut resent = 0;
    while start.elapsed() < duration {
        let t = Instant::now();
        let status = me_as_a_browser(stack, jwt, &mut resent).await;
        latencies.push(t.elapsed());
        *statuses.entry(status).or_insert(0) += 1;
        peak_rss = peak_rss.max(stack.warden_rss_mib());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Only the keep-alive connection the user had before an attack can be closed under them (at
    // the connection cap the longest-idle one makes room); a new one never is.
    assert!(resent <= 1, "{resent} requests failed on a closed connection");
    if resent > 0 {
        eprintln!(
            "valid user: {resent} request sent again, its idle keep-alive connection closed at the cap"
        );
    }
    latencies.sort();
    (statuses, latencies[latencies.len() * 99 / 100], peak_rss)
}

/// `GET /users/me` as browsers send it: a request that fails on a pooled connection the server
/// has just closed (an idle keep-alive connection closed to make room at the cap, the race every
/// HTTP/1.1 client meets) is sent once more, on a new connection; `resent` counts those.
async fn me_as_a_browser(stack: &Stack, jwt: &str, resent: &mut u32) -> u16 {
    let url = format!("{}/users/me", stack.warden_url);
    let mut attempt = 0;
    loop {
        match stack.http.get(&url).bearer_auth(jwt).send().await {
            Ok(answer) => return answer.status().as_u16(),
            Err(err) if attempt == 0 && err.is_request() => {
                attempt += 1;
                *resent += 1;
            }
            Err(err) => panic!("GET /users/me: {err}"),
        }
    }
}

/// A token shaped like Better-Auth's, under a `kid` nobody has.
fn unknown_kid_token(template: &str) -> String {
    let mut parts = template.split('.');
    let _header = parts.next();
    let payload = parts.next().unwrap_or_default();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "EdDSA", "kid": random_hex(16)}).to_string());
    format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]))
}

#[tokio::test]
async fn hostile_unknown_kids_while_better_auth_hangs() {
    // The failure limiter is off here: this scenario is about the JWKS waiters (a flood from
    // many addresses); the limiter has a scenario of its own below.
    let stack = Stack::start(Options {
        rotation_secs: Some(6),
        warden_env: vec![
            ("AUTH_FAILURES_PER_MINUTE", "0".into()),
            ("JWKS_TIMEOUT_SECS", "2".into()),
            ("MAX_CONCURRENT_REQUESTS", "64".into()),
        ],
        ..Options::default()
    })
    .await;
    let session = stack.sign_up_and_in("Valid", "valid@example.com").await;
    let jwt = stack.jwt(&session).await;
    assert_eq!(stack.warden_get("/users/me", &jwt).await.0, 200);
    let rss_before = stack.warden_rss_mib();

    stack.pause_auth_server().await;
    let stop = Arc::new(AtomicBool::new(false));
    let template = jwt.clone();
    let attackers = flood(&stack, 96, &stop, move || unknown_kid_token(&template));
    let (statuses, p99, peak_rss) = valid_user(&stack, &jwt, Duration::from_secs(6)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = total(attackers).await;
    stack.resume_auth_server().await;
    eprintln!(
        "e2e unknown-kid flood, Better-Auth frozen: flood {outcomes:?}; valid user {statuses:?}, \
         p99 {p99:?}; warden RSS {rss_before:.1} MiB before, peak {peak_rss:.1} MiB"
    );
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        vec![200],
        "{statuses:?}"
    );
    for (status, code) in outcomes.keys() {
        assert!(
            (*status == 401 && code == "invalid_token") || (*status == 503 && code == "jwks_unavailable"),
            "{status} {code}"
        );
    }

    // Better-Auth is back and rotates: the new key's very first token is accepted.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let rotated = stack.jwt(&session).await;
    assert_ne!(
        jwt_header(&rotated)["kid"],
        jwt_header(&jwt)["kid"],
        "Better-Auth rotated"
    );
    let (status, body) = stack.warden_get("/users/me", &rotated).await;
    assert_eq!(status, 200, "{body}");
    stack.stop().await;
}

/// A new person signing in with Better-Auth: their fresh JWT and the signed session token
/// Better-Auth's bearer plugin hands out, each sent once to `/users/me` (nothing of theirs is
/// cached in warden yet); the two statuses.
async fn newcomer(stack: &Stack, n: usize) -> [u16; 2] {
    let session = stack
        .sign_up_and_in("Newcomer", &format!("newcomer{n}@example.com"))
        .await;
    let jwt = stack.jwt(&session).await;
    [
        stack.warden_get("/users/me", &jwt).await.0,
        stack.warden_get("/users/me", &session).await.0,
    ]
}

#[tokio::test]
async fn hostile_junk_session_tokens_and_the_failure_limiter() {
    let stack = Stack::start(Options::default()).await;
    let session = stack.sign_up_and_in("Valid", "valid2@example.com").await;
    let jwt = stack.jwt(&session).await;
    assert_eq!(stack.warden_get("/users/me", &jwt).await.0, 200);
    let rss_before = stack.warden_rss_mib();
    let stop = Arc::new(AtomicBool::new(false));
    // 32-character junk, the shape of a real session token: a database query each, before.
    let attackers = flood(&stack, 32, &stop, || random_hex(16));
    let (statuses, p99, peak_rss) = valid_user(&stack, &jwt, Duration::from_secs(4)).await;
    // People who sign in behind the same address while the flood goes on: their credentials
    // are new to warden, so they are checked, and the address is over its limit by now.
    let mut during = Vec::new();
    for n in 0..3 {
        during.push(newcomer(&stack, n).await);
    }
    stop.store(true, Ordering::Relaxed);
    let outcomes = total(attackers).await;
    let after = newcomer(&stack, 3).await;
    let refused: u32 = outcomes
        .iter()
        .filter(|((s, _), _)| *s == 401)
        .map(|(_, n)| *n)
        .sum();
    eprintln!(
        "e2e junk session tokens from one address: {outcomes:?} ({refused} reached the token \
         check, the rest were throttled); valid user on the same address {statuses:?}, p99 {p99:?}; \
         new people signing in meanwhile (fresh JWT, signed session token) {during:?}, right after \
         {after:?}; warden RSS {rss_before:.1} MiB before, peak {peak_rss:.1} MiB"
    );
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        vec![200],
        "{statuses:?}"
    );
    assert_eq!(during, vec![[200, 200]; 3], "fresh credentials during the flood");
    assert_eq!(after, [200, 200], "fresh credentials right after the flood");
    // 60 a minute, plus at most the 32 attackers' requests already in flight when the address
    // first failed (an address that has not failed is not bookkept: see auth::request::throttle).
    assert!(
        refused <= 60 + 32,
        "AUTH_FAILURES_PER_MINUTE (60) let {refused} through"
    );
    assert!(outcomes.contains_key(&(429, "too_many_requests".to_owned())));
    stack.stop().await;
}

#[tokio::test]
async fn hostile_slow_connections_and_junk_requests() {
    let stack = Stack::start(Options {
        warden_env: vec![
            ("HEADER_READ_TIMEOUT_SECS", "2".into()),
            ("MAX_CONNECTIONS", "300".into()),
        ],
        ..Options::default()
    })
    .await;
    let session = stack.sign_up_and_in("Valid", "valid3@example.com").await;
    let jwt = stack.jwt(&session).await;
    let addr = stack.warden_url.trim_start_matches("http://").to_owned();

    // 400 slowloris connections: more than the cap. Each sends half a head and stops.
    let mut slow = Vec::new();
    for _ in 0..400 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await {
            let _ = s
                .write_all(b"GET /users/me HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await;
            slow.push(s);
        }
    }
    let (statuses, p99, peak_rss) = valid_user(&stack, &jwt, Duration::from_secs(1)).await;
    eprintln!(
        "e2e 400 half-sent heads against MAX_CONNECTIONS=300: valid user {statuses:?}, p99 {p99:?}, \
         warden RSS peak {peak_rss:.1} MiB"
    );
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        vec![200],
        "{statuses:?}"
    );
    // All of them are closed by the header read timeout (or made room at the cap).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut still_open = 0;
    for s in &mut slow {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            _ => still_open += 1,
        }
    }
    assert_eq!(
        still_open, 0,
        "slow connections still open after the header timeout"
    );

    // Method and path junk: problems, never 5xx, and /metrics stays small.
    let metrics_len = async || {
        stack
            .http
            .get(format!("{}/metrics", stack.warden_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .len()
    };
    let before = metrics_len().await;
    for i in 0..200 {
        let method = reqwest::Method::from_bytes(format!("JUNK{i}{}", "M".repeat(1000)).as_bytes()).unwrap();
        let r = stack
            .http
            .request(method, format!("{}/users/me", stack.warden_url))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
        let r = stack
            .http
            .get(format!("{}/{}/{i}", stack.warden_url, "x".repeat(1000)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let after = metrics_len().await;
    eprintln!("e2e /metrics after 400 junk requests: {before} -> {after} bytes");
    assert!(after < before + 16 * 1024, "{before} -> {after}");
    assert_eq!(stack.warden_get("/users/me", &jwt).await.0, 200);
    stack.stop().await;
}

//! The `warden` binary itself: `warden check` against a good and a broken setup, and what
//! `warden serve` writes to its logs (JSON lines with request ids, never a token or secret).

use std::process::Stdio;
use std::time::Duration;

use sqlx::PgPool;
use tokio::io::AsyncReadExt;
use warden::testing::auth::keys::Alg;

use crate::common::{MockJwks, TestKey, claims, claims_with_sid, insert_session, insert_user, jwks_of};
use crate::support::{Env, command, free_port, warden_binary, warden_command};

/// A URL for the test's own database.
async fn url_of(db: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(db)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    format!("{}/{name}", base.rsplit_once('/').unwrap().0)
}

async fn check(vars: &[(&str, &str)]) -> (bool, String) {
    let out = warden_command(&["check"], Env::Clean, vars)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[sqlx::test]
async fn check_reports_a_good_setup(db: PgPool) {
    let key = TestKey::generate(Alg::Es512);
    let jwks = MockJwks::start(jwks_of(&[&key])).await;
    let url = url_of(&db).await;
    let (ok, out) = check(&[("DATABASE_URL", &url), ("JWKS_URL", &jwks.url)]).await;
    assert!(ok, "{out}");
    // Every migration the crate ships, counted from the folder, so adding one keeps this true.
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
                .count()
        })
        .unwrap_or(0);
    let migrations = format!("[ok  ] migrations: all {shipped} applied");
    for line in [
        "[ok  ] config: valid",
        "[ok  ] prepared statements: work through this connection",
        "[ok  ] database: reachable, PostgreSQL 15",
        // sqlx prefers TLS, and the local PostgreSQL offers it.
        "TLS in use",
        "[ok  ] schema: all 61 columns warden needs are present with the right types",
        migrations.as_str(),
        "[ok  ] jwks: 1 key(s) at http://127.0.0.1:",
        "algorithms ES512",
        r#"[ok  ] tokens: accepted when iss = "http://localhost:3000""#,
        "warden check: all good",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    let plain = format!("{url}?sslmode=disable");
    let (ok, out) = check(&[("DATABASE_URL", &plain), ("JWKS_URL", &jwks.url)]).await;
    assert!(
        ok && out.contains("no TLS (add ?sslmode=require for a remote database)"),
        "{out}"
    );
}

#[sqlx::test]
async fn check_names_each_problem(db: PgPool) {
    sqlx::raw_sql(
        r#"ALTER TABLE "user" DROP COLUMN role; ALTER TABLE session ALTER COLUMN expires_at TYPE timestamp"#,
    )
    .execute(&db)
    .await
    .unwrap();
    let url = url_of(&db).await;
    let (ok, out) = check(&[
        ("DATABASE_URL", &url),
        ("JWKS_URL", "http://127.0.0.1:9/api/auth/jwks"),
    ])
    .await;
    assert!(!ok, "{out}");
    for line in [
        "[FAIL] schema: user.role is missing",
        "[FAIL] schema: session.expires_at is timestamp without time zone, expected timestamp with time zone",
        "[FAIL] jwks: http://127.0.0.1:9/api/auth/jwks cannot be reached",
        "warden check: problems found",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }

    // An empty JWKS (Better-Auth before its first token) is a warning, not a failure.
    let empty = MockJwks::start(serde_json::json!({"keys": []})).await;
    let fresh_url = url_of(&db).await;
    let (_, out) = check(&[("DATABASE_URL", &fresh_url), ("JWKS_URL", &empty.url)]).await;
    assert!(out.contains("[warn] jwks:"), "{out}");

    let (ok, out) = check(&[("DATABASE_URL", &url), ("JWT_LEEWAY_SECS", "soon")]).await;
    assert!(!ok);
    assert!(
        out.contains("[FAIL] config: JWT_LEEWAY_SECS is not valid"),
        "{out}"
    );
    let (ok, out) = check(&[("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")]).await;
    assert!(!ok);
    assert!(out.contains("[FAIL] database: cannot connect"), "{out}");
}

/// `warden check` says what a working setup gives away: keys fetched over plain http for an
/// https Better-Auth, and `/metrics` on the main port. Warnings, not failures.
#[sqlx::test]
async fn check_warns_about_plain_http_keys_and_public_metrics(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let jwks = MockJwks::start(jwks_of(&[&key])).await;
    let url = url_of(&db).await;
    let (ok, out) = check(&[
        ("DATABASE_URL", &url),
        ("JWKS_URL", &jwks.url),
        ("BETTER_AUTH_URL", "https://auth.example.com"),
        ("BIND_ADDR", "0.0.0.0:8080"),
    ])
    .await;
    assert!(ok, "warnings do not fail the check: {out}");
    let keys_warning = format!(
        "[warn] jwks: {} is plain http while BETTER_AUTH_URL is https",
        jwks.url
    );
    for line in [
        keys_warning.as_str(),
        "[warn] limiter: without BETTER_AUTH_SECRET no session token can be proven before a database read",
        "[warn] metrics: /metrics is served on the main port (0.0.0.0:8080) to anyone who can reach it; set METRICS_ADDR",
        "warden check: all good",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }

    // Better-Auth on plain http too, /metrics on an address of its own, and the secret that
    // proves session tokens: nothing to say.
    let (ok, out) = check(&[
        ("DATABASE_URL", &url),
        ("JWKS_URL", &jwks.url),
        ("METRICS_ADDR", "127.0.0.1:9090"),
        ("BETTER_AUTH_SECRET", "a-secret-of-thirty-two-characters!"),
    ])
    .await;
    assert!(ok, "{out}");
    assert!(!out.contains("[warn]"), "{out}");
    assert!(
        out.contains("[ok  ] metrics: /metrics on 127.0.0.1:9090, not on the main port"),
        "{out}"
    );
}

/// `warden serve` says at start, in its log, when `/metrics` is on the main port for anyone
/// to read; with `METRICS_ADDR` it does not.
#[sqlx::test]
async fn serve_warns_at_start_when_metrics_are_on_the_main_port(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let jwks = MockJwks::start(jwks_of(&[&key])).await;
    let url = url_of(&db).await;
    let side = format!("127.0.0.1:{}", free_port());
    for (extra, warned) in [(None, true), (Some(("METRICS_ADDR", side.as_str())), false)] {
        let bind = format!("127.0.0.1:{}", free_port());
        let mut vars = vec![
            ("DATABASE_URL", url.as_str()),
            ("JWKS_URL", jwks.url.as_str()),
            ("BIND_ADDR", bind.as_str()),
            ("RUST_LOG", "warn"),
        ];
        vars.extend(extra);
        let server = warden_command(&["serve"], Env::Clean, &vars)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        until_healthy(&bind).await;
        let (stdout, _) = stop_and_read(server).await;
        let line = format!(
            "/metrics is served on the main port ({bind}) to anyone who can reach it; set METRICS_ADDR"
        );
        assert_eq!(stdout.contains(&line), warned, "{extra:?}:\n{stdout}");
    }
}

#[sqlx::test]
async fn json_logs_carry_request_ids_and_never_tokens(db: PgPool) {
    insert_user(&db, "log-user", "log@example.com").await;
    let key = TestKey::generate(Alg::EdDsa);
    let jwks = MockJwks::start(jwks_of(&[&key])).await;
    let url = url_of(&db).await;
    let bind = format!("127.0.0.1:{}", free_port());
    let secret = "log-test-secret-never-printed-0123456789";
    let server = warden_command(
        &["serve"],
        Env::Clean,
        &[
            ("DATABASE_URL", &url),
            ("JWKS_URL", &jwks.url),
            ("BETTER_AUTH_URL", crate::common::ISSUER),
            ("BIND_ADDR", &bind),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
            ("BETTER_AUTH_SECRET", secret),
            // The test names its requests' ids, as a proxy in front of warden would.
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();

    let client = reqwest::Client::new();
    let base = format!("http://{bind}");
    until_healthy(&bind).await;
    let token = key.sign(&claims("log-user"));
    let response = client
        .get(format!("{base}/users/me"))
        .bearer_auth(&token)
        .header("x-request-id", "log-test-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let forged = format!("{token}x");
    let response = client
        .get(format!("{base}/users/me?token={forged}"))
        .bearer_auth(&forged)
        .header("x-request-id", "log-test-2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (stdout, stderr) = stop_and_read(server).await;

    let logs = format!("{stdout}{stderr}");
    assert!(
        !logs.contains(&token[token.len() - 40..]),
        "a token reached the logs"
    );
    assert!(!logs.contains(secret), "the secret reached the logs");
    assert!(!logs.contains(&url), "the database URL reached the logs");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finished: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == "log-test-1" && l["fields"]["status"] == 200)
        .collect();
    assert_eq!(finished.len(), 1, "{stdout}");
    assert_eq!(finished[0]["span"]["route"], "/users/me");
    assert_eq!(finished[0]["span"]["user_id"], "log-user");
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["request_id"] == "log-test-2" && l["fields"]["status"] == 401)
    );
}

/// Stops `server` and reads what it wrote (a stream that was not piped reads as empty).
async fn stop_and_read(mut server: tokio::process::Child) -> (String, String) {
    server.start_kill().unwrap();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut out) = server.stdout.take() {
        out.read_to_string(&mut stdout).await.unwrap();
    }
    if let Some(mut err) = server.stderr.take() {
        err.read_to_string(&mut stderr).await.unwrap();
    }
    let _ = server.wait().await;
    (stdout, stderr)
}

/// A counter's value in Prometheus text, 0 when absent.
/// The metrics text warden serves on `side`.
async fn metrics_text(client: &reqwest::Client, side: &str) -> String {
    let response = client.get(format!("http://{side}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// A batched read's counters (`session` or `user`): the queries run and the ids they read.
async fn batch_counts(client: &reqwest::Client, side: &str, kind: &str) -> (u64, u64) {
    let text = metrics_text(client, side).await;
    (
        metric(&text, &format!("warden_{kind}_batches_total")),
        metric(&text, &format!("warden_{kind}_batch_reads_total")),
    )
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// `warden serve` on the test database, run from `dir` with `vars` besides the database, a
/// JWKS serving `key` (kept up beside it) and an address of its own, once it answers
/// `/healthz`: the process, its address and the JWKS.
async fn serve(
    db: &PgPool,
    key: &TestKey,
    dir: &std::path::Path,
    vars: &[(&str, &str)],
) -> (tokio::process::Child, String, MockJwks) {
    let jwks = MockJwks::start(jwks_of(&[key])).await;
    let url = url_of(db).await;
    let bind = format!("127.0.0.1:{}", free_port());
    let mut all = vec![
        ("DATABASE_URL", url.as_str()),
        ("JWKS_URL", jwks.url.as_str()),
        ("BETTER_AUTH_URL", crate::common::ISSUER),
        ("BIND_ADDR", bind.as_str()),
        ("RUST_LOG", "warn"),
    ];
    all.extend_from_slice(vars);
    let server = warden_command(&["serve"], Env::Clean, &all)
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    until_healthy(&bind).await;
    (server, bind, jwks)
}

/// [`serve`] with the metrics on a side address: the process, the main address, the metrics
/// address and the JWKS.
async fn serve_with_metrics(db: &PgPool, key: &TestKey) -> (tokio::process::Child, String, String, MockJwks) {
    let side = format!("127.0.0.1:{}", free_port());
    let (server, main, jwks) = serve(db, key, &std::env::temp_dir(), &[("METRICS_ADDR", &side)]).await;
    (server, main, side, jwks)
}

/// Waits until the server on `addr` answers `/healthz` with 200 (10 s at most).
async fn until_healthy(addr: &str) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("warden serve never answered /healthz on {addr}");
}

/// Signs in new users until warden reads one by a batch query, which it does once the row
/// cache's listener is up (a moment after start): the last user (cached now, with their
/// session) and the metrics text that counted the batch.
async fn first_batched_user(db: &PgPool, key: &TestKey, main: &str, side: &str) -> (String, String) {
    let client = reqwest::Client::new();
    let mut text = String::new();
    for i in 0..50 {
        let (user, session) = (format!("metrics-user-{i}"), format!("metrics-session-{i}"));
        insert_user(db, &user, &format!("{user}@example.com")).await;
        insert_session(db, &session, &user, &format!("tok-{i}"), 3600).await;
        let response = client
            .get(format!("http://{main}/users/me"))
            .bearer_auth(key.sign(&claims_with_sid(&user, &session)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let response = client.get(format!("http://{side}/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        text = response.text().await.unwrap();
        if metric(&text, "warden_session_batches_total") > 0 {
            return (user, text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no batch query counted:\n{text}");
}

#[sqlx::test]
async fn metrics_can_live_on_their_own_address(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let (mut server, main, side, _jwks) = serve_with_metrics(&db, &key).await;
    // A JWT of a user and session warden has not seen is read by a batch query.
    let (_, text) = first_batched_user(&db, &key, &main, &side).await;
    assert!(text.contains("warden_http_requests_total"));
    let batches = metric(&text, "warden_session_batches_total");
    assert!(metric(&text, "warden_session_batch_reads_total") >= batches);
    let client = reqwest::Client::new();
    let response = client.get(format!("http://{main}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404, "not on the public port");
    server.start_kill().unwrap();
    let _ = server.wait().await;
}

/// A new sign-in of a user warden has cached (another device, say) names a session it has not
/// seen: that session is read by the batch query, with everyone else's, not by a query of its
/// own; once cached, the same token reads nothing.
#[sqlx::test]
async fn a_new_session_of_a_cached_user_is_read_by_the_batch(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let (mut server, main, side, _jwks) = serve_with_metrics(&db, &key).await;
    let (user, _) = first_batched_user(&db, &key, &main, &side).await;
    let client = reqwest::Client::new();
    let counts = || batch_counts(&client, &side, "session");
    let me = |session: &str| {
        client
            .get(format!("http://{main}/users/me"))
            .bearer_auth(key.sign(&claims_with_sid(&user, session)))
            .send()
    };
    let (batches, reads) = counts().await;
    insert_session(&db, "second-device", &user, "tok-second-device", 3600).await;
    for round in 0..2 {
        let response = me("second-device").await.unwrap();
        assert_eq!(response.status(), 200, "round {round}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["id"], user.as_str());
        // Read once, by one batch, in the first round; from the cache in the second.
        assert_eq!(counts().await, (batches + 1, reads + 1), "round {round}");
    }
    // A token naming a session that does not exist is still refused (read, found missing).
    assert_eq!(me("no-such-session").await.unwrap().status(), 401);
    server.start_kill().unwrap();
    let _ = server.wait().await;
}

/// Better-Auth's stock JWT names no session: a user warden has not seen is read by the user
/// batch (several requests' users in one query, once the row cache's listener is up), each
/// request gets its own user's row, and a token of a user that does not exist is refused,
/// read once and then remembered.
#[sqlx::test]
async fn stock_tokens_of_new_users_are_read_by_the_user_batch(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let (mut server, main, side, _jwks) = serve_with_metrics(&db, &key).await;
    let client = reqwest::Client::new();
    let mut listening = false;
    for _ in 0..200 {
        if metric(&metrics_text(&client, &side).await, "warden_cache_listener_up") == 1 {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(listening, "the row cache's listener never came up");
    let counts = || batch_counts(&client, &side, "user");
    let users: Vec<String> = (0..24).map(|i| format!("stock-user-{i}")).collect();
    for user in &users {
        insert_user(&db, user, &format!("{user}@example.com")).await;
    }
    let (batches, reads) = counts().await;
    let me = |user: String| {
        let (client, main, token) = (client.clone(), main.clone(), key.sign(&claims(&user)));
        async move {
            let response = client
                .get(format!("http://{main}/users/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            (user, status, body)
        }
    };
    // All at once: whatever the batches hold, each answer is its own user's row.
    let mut all = tokio::task::JoinSet::new();
    for user in &users {
        all.spawn(me(user.clone()));
    }
    let answers = all.join_all().await;
    assert_eq!(answers.len(), 24);
    for (user, status, body) in &answers {
        assert_eq!(*status, 200, "{user}: {body}");
        assert_eq!(body["id"], user.as_str());
        assert_eq!(body["email"], format!("{user}@example.com"));
    }
    let (batches_after, reads_after) = counts().await;
    assert!(
        reads_after - reads >= 24,
        "every new user read by a batch: {reads} -> {reads_after}"
    );
    assert!(
        (1..=24).contains(&(batches_after - batches)),
        "{batches} -> {batches_after} batch queries for 24 users"
    );
    // A user that does not exist: 401, read once, then remembered for a minute.
    let (_, status, body) = me("no-such-user".into()).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (401, Some("user_not_found"))
    );
    let (_, reads_now) = counts().await;
    let (_, status, _) = me("no-such-user".into()).await;
    assert_eq!(status, 401);
    assert_eq!(counts().await.1, reads_now, "a user found gone is not read again");
    server.start_kill().unwrap();
    let _ = server.wait().await;
}

/// [`serve`] from `dir` with `vars`: the process, its id and the JWKS.
#[cfg(all(target_os = "linux", feature = "mimalloc"))]
async fn serve_until_healthy(
    db: &PgPool,
    dir: &std::path::Path,
    vars: &[(&str, &str)],
) -> (tokio::process::Child, u32, MockJwks) {
    let (server, _, jwks) = serve(db, &TestKey::generate(Alg::EdDsa), dir, vars).await;
    let pid = server.id().unwrap();
    (server, pid, jwks)
}

/// The variables of a running process, as the kernel holds them.
#[cfg(all(target_os = "linux", feature = "mimalloc"))]
fn environment_of(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// mimalloc reads `MIMALLOC_PURGE_DELAY` before `main`; without it in the environment, the
/// binary starts itself again, in the same process, with 0 (or the .env file's value), so a
/// bare binary returns freed memory at once as the Docker image does. A value given is kept.
#[cfg(all(target_os = "linux", feature = "mimalloc"))]
#[sqlx::test]
async fn the_allocator_returns_memory_at_once_unless_told_otherwise(db: PgPool) {
    let dir = std::env::temp_dir().join(format!("warden-allocator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let (mut server, pid, _jwks) = serve_until_healthy(&db, &dir, &[]).await;
    let vars = environment_of(pid);
    assert!(vars.iter().any(|v| v == "MIMALLOC_PURGE_DELAY=0"), "{vars:?}");
    server.start_kill().unwrap();
    let _ = server.wait().await;

    let (mut server, pid, _jwks) = serve_until_healthy(&db, &dir, &[("MIMALLOC_PURGE_DELAY", "250")]).await;
    let vars = environment_of(pid);
    assert!(vars.iter().any(|v| v == "MIMALLOC_PURGE_DELAY=250"), "{vars:?}");
    assert!(!vars.iter().any(|v| v == "MIMALLOC_PURGE_DELAY=0"), "{vars:?}");
    server.start_kill().unwrap();
    let _ = server.wait().await;

    // A .env file's value reaches the allocator too (it is read before the restart).
    std::fs::write(dir.join(".env"), "MIMALLOC_PURGE_DELAY=50\n").unwrap();
    let (mut server, pid, _jwks) = serve_until_healthy(&db, &dir, &[]).await;
    let vars = environment_of(pid);
    assert!(vars.iter().any(|v| v == "MIMALLOC_PURGE_DELAY=50"), "{vars:?}");
    server.start_kill().unwrap();
    let _ = server.wait().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `warden serve` against `url` with one second of retries: its exit status, stdout (the log)
/// and stderr (the last word).
async fn serve_without_database(url: &str) -> (bool, String, String) {
    let bind = format!("127.0.0.1:{}", free_port());
    let vars = [
        ("DATABASE_URL", url),
        ("DATABASE_CONNECT_RETRY_SECS", "1"),
        ("BIND_ADDR", bind.as_str()),
        ("RUST_LOG", "info"),
    ];
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        warden_command(&["serve"], Env::Clean, &vars).output(),
    )
    .await
    .expect("warden serve gave up within 60 s")
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// With nothing listening at the database's port, `warden serve` says where it tried (host and
/// port, never the password) and why, in the words `warden check` uses — not "pool timed out".
#[tokio::test]
async fn serve_names_the_database_it_cannot_reach_and_why() {
    let port = free_port();
    let url = format!("postgres://warden:never-printed-pw@127.0.0.1:{port}/warden");
    let (ok, log, last) = serve_without_database(&url).await;
    assert!(!ok, "warden serve started without a database:\n{log}{last}");
    let cause = format!("cannot connect to PostgreSQL at 127.0.0.1:{port}: connection refused");
    assert!(
        last.contains(&format!("warden: {cause}")),
        "stderr does not say where and why:\n{last}"
    );
    assert!(
        log.contains("database not reachable yet") && log.contains(&format!("127.0.0.1:{port}")),
        "the retries do not name the server:\n{log}"
    );
    for text in [&log, &last] {
        assert!(!text.contains("pool timed out"), "{text}");
        assert!(
            !text.contains("never-printed-pw"),
            "the password reached the output: {text}"
        );
    }
    let (ok, report) = check(&[("DATABASE_URL", &url)]).await;
    assert!(!ok);
    assert!(
        report.contains(&format!("[FAIL] database: {cause}")),
        "warden check says it differently:\n{report}"
    );
}

/// Log lines written to a pipe or a file carry no colour codes (they would stay in it as
/// text); a terminal gets colours, unless `NO_COLOR` is set.
#[tokio::test]
async fn logs_are_coloured_only_on_a_terminal() {
    let url = format!("postgres://warden@127.0.0.1:{}/warden", free_port());
    let (_, log, _) = serve_without_database(&url).await;
    assert!(log.contains("ERROR"), "no log line:\n{log}");
    assert!(!log.contains('\x1b'), "colour codes in piped logs:\n{log:?}");

    // On a terminal (util-linux `script` gives the command one).
    if !std::path::Path::new("/usr/bin/script").exists() {
        eprintln!("SKIPPED the terminal half: /usr/bin/script (util-linux) is missing");
        return;
    }
    let on_a_terminal = |no_color: &'static str| {
        let url = url.clone();
        async move {
            let bind = format!("127.0.0.1:{}", free_port());
            let serve = format!("'{}' serve", warden_binary().display());
            let mut script = command(
                "/usr/bin/script",
                &["-qec", &serve, "/dev/null"],
                Env::Clean,
                &[
                    ("DATABASE_URL", &url),
                    ("DATABASE_CONNECT_RETRY_SECS", "1"),
                    ("BIND_ADDR", &bind),
                    ("TERM", "xterm"),
                ],
            );
            script.stdin(Stdio::null());
            if !no_color.is_empty() {
                script.env("NO_COLOR", no_color);
            }
            let out = tokio::time::timeout(Duration::from_secs(60), script.output())
                .await
                .expect("warden serve gave up within 60 s")
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let coloured = on_a_terminal("").await;
    assert!(
        coloured.contains("ERROR") && coloured.contains("\x1b["),
        "no colours on a terminal:\n{coloured:?}"
    );
    let plain = on_a_terminal("1").await;
    assert!(
        plain.contains("ERROR") && !plain.contains("\x1b["),
        "colours despite NO_COLOR:\n{plain:?}"
    );
}

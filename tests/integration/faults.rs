//! Fault injection with real processes and sockets on 127.0.0.1: the JWKS endpoint down at
//! start, oversized and garbage answers, a flood of random `kid`s, and PostgreSQL going away
//! under load and coming back — warden degrades with precise errors and recovers by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use warden::testing::auth::keys::Alg;

use crate::common::{self, MockJwks, TestKey, claims, insert_user, jwks_of};
use crate::support::{Env, free_port, warden_command};
use crate::world::{Setup, World};

async fn db_name(db: &PgPool) -> String {
    sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(db)
        .await
        .unwrap()
}

fn serve(vars: &[(&str, String)]) -> tokio::process::Child {
    let mut command = warden_command(&["serve"], Env::Clean, &[("RUST_LOG", "warn")]);
    command.stdout(std::process::Stdio::null());
    for (k, v) in vars {
        command.env(k, v);
    }
    command.spawn().unwrap()
}

async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = client.get(url).timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or_default()),
        Err(_) => (0, serde_json::Value::Null),
    }
}

async fn until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[sqlx::test]
async fn jwks_down_at_start_then_recovers_by_itself(db: PgPool) {
    insert_user(&db, "u1", "u1@example.com").await;
    let base = std::env::var("DATABASE_URL").unwrap();
    let url = format!("{}/{}", base.rsplit_once('/').unwrap().0, db_name(&db).await);
    let (port, jwks_port) = (free_port(), free_port());
    let _warden = serve(&[
        ("DATABASE_URL", url),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("BETTER_AUTH_URL", common::ISSUER.into()),
        ("JWKS_URL", format!("http://127.0.0.1:{jwks_port}/api/auth/jwks")),
    ]);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    until(
        "warden starts without its JWKS",
        Duration::from_secs(10),
        async || get(&client, &format!("{base}/healthz"), None).await.0 == 200,
    )
    .await;
    let (status, body) = get(&client, &format!("{base}/readyz"), None).await;
    assert_eq!((status, body["jwks"].as_str()), (503, Some("no keys loaded")));
    let key = TestKey::generate(Alg::EdDsa);
    let (status, body) = get(
        &client,
        &format!("{base}/users/me"),
        Some(&key.sign(&claims("u1"))),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (503, Some("jwks_unavailable")));

    // Better-Auth comes up: warden becomes ready on its own (background retries with backoff).
    let _jwks = MockJwks::start_on(jwks_port, jwks_of(&[&key])).await;
    let took = until("ready once the JWKS is up", Duration::from_secs(15), async || {
        get(&client, &format!("{base}/readyz"), None).await.0 == 200
    })
    .await;
    eprintln!("ready {} ms after the JWKS came up", took.as_millis());
    assert_eq!(
        get(
            &client,
            &format!("{base}/users/me"),
            Some(&key.sign(&claims("u1")))
        )
        .await
        .0,
        200
    );
}

#[sqlx::test]
async fn a_flood_of_random_kids_costs_one_fetch_per_cooldown(db: PgPool) {
    insert_user(&db, "u1", "u1@example.com").await;
    let app = Arc::new(World::with(db, Setup::empty()).await);
    let (key, jwks) = (Arc::clone(&app.key), Arc::clone(&app.jwks));
    let before = jwks.hits();
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let app = Arc::clone(&app);
            let token = key.sign_with_header(
                &json!({"alg": "EdDSA", "kid": format!("random-{i}")}),
                &claims("u1"),
            );
            tokio::spawn(async move { app.bearer(&token).get("/users/me").await.status.as_u16() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 401);
    }
    let fetches = jwks.hits() - before;
    eprintln!("300 random kids caused {fetches} JWKS fetch(es)");
    assert_eq!(fetches, 1, "one refetch, then the 5 s cooldown holds");
    // Known keys were never held up.
    assert_eq!(
        app.bearer(&key.sign(&claims("u1"))).get("/users/me").await.status,
        200
    );
}

#[sqlx::test]
async fn huge_and_garbage_jwks_answers_keep_the_last_good_keys(db: PgPool) {
    insert_user(&db, "u1", "u1@example.com").await;
    let key = TestKey::generate(Alg::Es256);
    let jwks = MockJwks::start(jwks_of(&[&key])).await;
    let cache = common::cache(&jwks.url, None, Duration::ZERO);
    cache.refresh().await.unwrap();
    for body in [
        format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(50 * 1024 * 1024)),
        "<!doctype html><h1>502 Bad Gateway</h1>".to_owned(),
        r#"{"keys":[{"kty":"oct","k":"AAAA","kid":"h"},{"kty":"EC","crv":"P-384","kid":"p"}]}"#.to_owned(),
    ] {
        jwks.set_body(&body);
        let started = Instant::now();
        let _ = cache.refresh().await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            cache.has_key(&key.kid),
            "the last good key survives {}",
            &body[..40.min(body.len())]
        );
    }
}

/// A TCP proxy in front of PostgreSQL that can drop every connection and refuse new ones, as
/// a database restart or a network cut would.
struct CutProxy {
    port: u16,
    down: Arc<AtomicBool>,
    epoch: Arc<tokio::sync::watch::Sender<u64>>,
}

impl CutProxy {
    async fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let (epoch, _) = tokio::sync::watch::channel(0u64);
        let epoch = Arc::new(epoch);
        let (d, e) = (Arc::clone(&down), Arc::clone(&epoch));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if d.load(Ordering::SeqCst) {
                    continue; // dropped at once: the client sees the connection closed
                }
                let mut cut = e.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { port, down, epoch }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

#[sqlx::test]
async fn postgres_going_away_under_load_gives_503_then_recovers(db: PgPool) {
    insert_user(&db, "u1", "u1@example.com").await;
    let base = std::env::var("DATABASE_URL").unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let (scheme_user, host_port) = prefix.rsplit_once('@').unwrap();
    let pg_port: u16 = host_port
        .rsplit_once(':')
        .map(|(_, p)| p.parse().unwrap())
        .unwrap_or(5432);
    let proxy = CutProxy::start(pg_port).await;
    let through_proxy = format!(
        "{scheme_user}@127.0.0.1:{}/{}?sslmode=disable",
        proxy.port,
        db_name(&db).await
    );

    let key = TestKey::generate(Alg::EdDsa);
    let jwks = MockJwks::start(jwks_of(&[&key])).await;
    let port = free_port();
    let _warden = serve(&[
        ("DATABASE_URL", through_proxy),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("BETTER_AUTH_URL", common::ISSUER.into()),
        ("JWKS_URL", jwks.url.clone()),
        ("DATABASE_ACQUIRE_TIMEOUT_SECS", "1".into()),
    ]);
    let client = reqwest::Client::new();
    let me = format!("http://127.0.0.1:{port}/users/me");
    let token = key.sign(&claims("u1"));
    until("warden serves", Duration::from_secs(10), async || {
        get(&client, &me, Some(&token)).await.0 == 200
    })
    .await;

    // Load from 8 clients while the database disappears for 3 s and comes back.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (client, me, token, stop) = (client.clone(), me.clone(), token.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let (status, body) = get(&client, &me, Some(&token)).await;
                    seen.push((status, body["code"].as_str().unwrap_or_default().to_owned()));
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    let recovered = until("full recovery", Duration::from_secs(15), async || {
        get(&client, &me, Some(&token)).await.0 == 200
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);

    let mut counts = std::collections::BTreeMap::new();
    for task in load {
        for (status, code) in task.await.unwrap() {
            *counts.entry((status, code)).or_insert(0u32) += 1;
        }
    }
    eprintln!(
        "responses during the outage test: {counts:?}; recovered {} ms after restore",
        recovered.as_millis()
    );
    for (status, code) in counts.keys() {
        assert!(
            *status == 200 || (*status == 503 && code == "database_unavailable"),
            "unexpected {status} {code}: {counts:?}"
        );
    }
    assert!(
        counts.keys().any(|(s, _)| *s == 503),
        "the outage was seen: {counts:?}"
    );
    assert!(counts.keys().any(|(s, _)| *s == 200));
}

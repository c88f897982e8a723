//! The caches stay fresh: a change made by plain SQL (as Better-Auth makes it) reaches warden
//! through PostgreSQL notifications at once; while the listener is down nothing cached is
//! trusted; a cached token never outlives its `exp` or its key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;
use warden::testing::auth::Verifier;
use warden::testing::auth::keys::Alg;
use warden::testing::auth::verify::ClaimRules;
use warden::testing::cache::{RowCache, RowCacheSettings, listener};

use crate::common::{self, TestKey, claims, jwks_of};
use crate::world::{Setup, World};

/// A world whose app caches users and sessions, invalidated by a real listener.
async fn cached_world(db: PgPool) -> (World, Arc<RowCache>, World, tokio::task::JoinHandle<()>) {
    let w = World::new(db.clone()).await;
    let rows = long_lived_cache();
    let task = listener::spawn(Arc::clone(&rows), (*db.connect_options()).clone());
    wait_until("the listener is up", || rows.trusted()).await;
    let app = with_cache(&w, &rows).await;
    (w, rows, app, task)
}

/// A row cache whose entries outlive any wait in these tests: only a notification (or warden's
/// own write) can explain a prompt change.
fn long_lived_cache() -> Arc<RowCache> {
    Arc::new(RowCache::new(RowCacheSettings {
        enabled: true,
        ttl: Duration::from_secs(600),
        bytes: 8 * 1024 * 1024,
    }))
}

/// `w`'s app with `rows` as its row cache.
async fn with_cache(w: &World, rows: &Arc<RowCache>) -> World {
    let cached = Arc::clone(rows);
    w.variant(Setup::default().auth(move |a| a.row_cache(cached)))
        .await
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}: not within 5 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

/// Polls `/users/me` until `check` holds; returns how long that took.
async fn seen_within(app: &World, token: &str, check: impl Fn(u16, &serde_json::Value) -> bool) -> Duration {
    seen_as(|| app.bearer(token), "/users/me", check).await
}

/// Polls `path` as `caller` until `check` holds; returns how long that took.
async fn seen_as<'a>(
    caller: impl Fn() -> crate::world::Caller<'a>,
    path: &str,
    check: impl Fn(u16, &serde_json::Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let answer = caller().get(path).await;
        if check(answer.status.as_u16(), &answer.body) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "not seen within 2 s: {:?}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[sqlx::test]
async fn changes_made_in_sql_reach_the_cache_at_once(db: PgPool) {
    let (w, rows, app, task) = cached_world(db).await;
    // Warm the cache, and prove it serves: a change with notifications off is not seen.
    assert_eq!(app.bearer(&w.alice).get("/users/me").await.status, 200);
    assert!(rows.user("alice").is_some() && rows.session("s-alice-1").is_some());

    let mut timings = Vec::new();
    let sql = |q: &'static str| {
        let db = w.db.clone();
        async move { sqlx::query(q).execute(&db).await.unwrap() }
    };
    sql(r#"UPDATE "user" SET banned = true, ban_reason = 'spam' WHERE id = 'alice'"#).await;
    timings.push((
        "ban",
        seen_within(&app, &w.alice, |s, b| s == 403 && b["code"] == "banned").await,
    ));
    sql(r#"UPDATE "user" SET banned = false, ban_reason = NULL WHERE id = 'alice'"#).await;
    timings.push(("unban", seen_within(&app, &w.alice, |s, _| s == 200).await));
    sql(r#"UPDATE "user" SET role = 'user,editor' WHERE id = 'alice'"#).await;
    timings.push((
        "role change",
        seen_within(&app, &w.alice, |_, b| b["roles"] == json!(["user", "editor"])).await,
    ));
    sql("DELETE FROM session WHERE id = 's-alice-1'").await;
    timings.push((
        "session delete",
        seen_within(&app, &w.alice, |s, b| s == 401 && b["code"] == "session_revoked").await,
    ));
    assert_eq!(app.bearer(&w.bob).get("/users/me").await.status, 200);
    sql(r#"DELETE FROM "user" WHERE id = 'bob'"#).await;
    timings.push(("user delete", seen_within(&app, &w.bob, |s, _| s == 401).await));
    for (what, took) in &timings {
        eprintln!("{what}: seen after {} ms", took.as_millis());
        assert!(*took < Duration::from_secs(1), "{what} took {took:?}");
    }
    stop(task).await;
}

/// Stops the listener and lets its connection close before the test database is dropped.
async fn stop(task: tokio::task::JoinHandle<()>) {
    task.abort();
    let _ = task.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[sqlx::test]
async fn truncating_sessions_or_users_reaches_the_cache_at_once(db: PgPool) {
    let (w, rows, app, task) = cached_world(db).await;
    let bob = w.key.sign(&claims("bob")); // no sid: only the user row matters
    for token in [&w.alice, &bob] {
        assert_eq!(app.bearer(token).get("/users/me").await.status, 200);
    }
    assert!(rows.session("s-alice-1").is_some() && rows.user("bob").is_some());

    // A mass sign-out fires no row trigger; the statement trigger empties the session cache.
    w.exec("TRUNCATE session CASCADE").await;
    let took = seen_within(&app, &w.alice, |s, b| s == 401 && b["code"] == "session_revoked").await;
    eprintln!("TRUNCATE session: seen after {} ms", took.as_millis());
    assert_eq!(app.bearer(&bob).get("/users/me").await.status, 200);

    w.exec(r#"TRUNCATE "user" CASCADE"#).await;
    let took = seen_within(&app, &bob, |s, b| s == 401 && b["code"] == "user_not_found").await;
    eprintln!("TRUNCATE user: seen after {} ms", took.as_millis());
    stop(task).await;
}

#[sqlx::test]
async fn membership_and_dynamic_role_changes_reach_the_cache_at_once(db: PgPool) {
    let (w, rows, app, task) = cached_world(db).await;
    w.exec(
        r#"INSERT INTO organization (id, name, slug, created_at) VALUES ('acme', 'Acme', 'acme', now());
           INSERT INTO member (id, organization_id, user_id, role, created_at) VALUES ('m-bob', 'acme', 'bob', 'member', now());
           UPDATE session SET active_organization_id = 'acme' WHERE id = 's-bob'"#,
    )
    .await;
    let role_of = async || {
        let answer = app.as_bob().get("/auth/verify").await;
        answer
            .headers
            .get("x-auth-org-role")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // The INSERTs' own notifications can arrive after the first request cached what it read, and
    // drop it again (as they should): ask until it stays cached.
    let start = Instant::now();
    loop {
        assert_eq!(role_of().await.as_deref(), Some("member"));
        if rows.memberships("bob").is_some() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "memberships never cached"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ask = async || {
        app.as_bob()
            .post(
                "/orgs/acme/has-permission",
                Some(json!({"permissions": {"invitation": ["create"]}})),
            )
            .await
            .body["success"]
            .clone()
    };
    let start = Instant::now();
    loop {
        assert_eq!(ask().await, json!(false));
        if rows.org_roles("acme").is_some() && rows.memberships("bob").is_some() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "roles never cached");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let start = Instant::now();
    w.exec("UPDATE member SET role = 'admin' WHERE id = 'm-bob'")
        .await;
    while role_of().await.as_deref() != Some("admin") {
        assert!(start.elapsed() < Duration::from_secs(1), "role change not seen");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!(
        "member role change: seen after {} ms",
        start.elapsed().as_millis()
    );
    let start = Instant::now();
    w.exec(
        r#"UPDATE member SET role = 'member' WHERE id = 'm-bob';
              INSERT INTO organization_role (id, organization_id, role, permission)
              VALUES ('r1', 'acme', 'member', '{"invitation": ["create"]}')"#,
    )
    .await;
    while ask().await != json!(true) {
        assert!(start.elapsed() < Duration::from_secs(1), "dynamic role not seen");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!(
        "dynamic role added: seen after {} ms",
        start.elapsed().as_millis()
    );
    let start = Instant::now();
    w.exec("DELETE FROM member WHERE id = 'm-bob'").await;
    while app.as_bob().get("/orgs/acme").await.status != 404 {
        assert!(start.elapsed() < Duration::from_secs(1), "removal not seen");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!("member removed: seen after {} ms", start.elapsed().as_millis());
    assert_eq!(role_of().await, None);
    stop(task).await;
}

#[sqlx::test]
async fn a_listener_outage_makes_every_request_read_the_database(db: PgPool) {
    let (w, rows, app, task) = cached_world(db).await;
    assert_eq!(app.bearer(&w.alice).get("/users/me").await.status, 200);
    assert!(rows.user("alice").is_some());

    // Cut the listener's connection, as a network blip or a restart would. Only this test's
    // own listener: tests running beside it have theirs on other databases.
    w.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'warden-cache-listener' AND datname = current_database()",
    )
    .await;
    wait_until("the cache stops being trusted", || !rows.trusted()).await;
    assert!(rows.user("alice").is_none(), "nothing cached survives an outage");
    let answer = app.bearer(&w.alice).get("/users/me").await;
    assert_eq!(answer.status, 200, "requests still work, from the database");

    // It comes back by itself, with an empty cache.
    wait_until("the listener reconnects", || rows.trusted()).await;
    w.exec(r#"UPDATE "user" SET banned = true WHERE id = 'alice'"#)
        .await;
    seen_within(&app, &w.alice, |s, _| s == 403).await;
    stop(task).await;
}

#[sqlx::test]
async fn a_cached_token_dies_with_its_exp_and_its_key(db: PgPool) {
    let w = World::new(db.clone()).await;
    let jwks = warden::testing::auth::jwks::JwksCache::new(
        warden::testing::auth::jwks::JwksSource {
            url: w.jwks.url.clone(),
            client: reqwest::Client::new(),
            timeout: Duration::from_secs(2),
            db: None,
            db_grace: Duration::from_secs(0),
        },
        Duration::from_millis(0),
    );
    jwks.refresh().await.unwrap();
    let rules = ClaimRules {
        leeway_secs: 0,
        ..common::rules()
    };
    let verifier = Verifier::new(Arc::clone(&jwks), rules);
    let app = w
        .variant(Setup::default().auth(move |a| a.verifier(verifier)))
        .await;

    let mut short = claims("alice");
    short["exp"] = json!(common::now() + 2);
    let token = w.key.sign(&short);
    assert_eq!(app.bearer(&token).get("/users/me").await.status, 200);
    assert_eq!(
        app.bearer(&token).get("/users/me").await.status,
        200,
        "served from the cache"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let answer = app.bearer(&token).get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("token_expired")));

    // A key removed from the JWKS takes its cached tokens with it.
    let token = w.key.sign(&claims("alice"));
    assert_eq!(app.bearer(&token).get("/users/me").await.status, 200);
    let other = TestKey::generate(Alg::EdDsa);
    w.jwks.set_jwks(jwks_of(&[&other]));
    jwks.refresh().await.unwrap();
    let answer = app.bearer(&token).get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
}

/// warden's own writes are seen by the very next request, even before (here: without) the
/// change notification: the row cache is trusted but no listener runs, so nothing but the
/// write itself can drop what is cached.
#[sqlx::test]
async fn warden_s_own_writes_are_seen_at_once(db: PgPool) {
    let w = World::new(db.clone()).await;
    let rows = long_lived_cache();
    rows.set_trusted(true);
    let app = with_cache(&w, &rows).await;
    let me = |token: &str| {
        let (app, token) = (&app, token.to_owned());
        async move { app.bearer(&token).get("/users/me").await }
    };

    // A profile change, then at once a read.
    assert_eq!(me(&w.alice).await.body["name"], "Test User");
    assert!(rows.user("alice").is_some());
    let patched = app
        .bearer(&w.alice)
        .patch("/users/me", json!({ "name": "Alice Liddell" }))
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(me(&w.alice).await.body["name"], "Alice Liddell");

    // A role change by an admin: the next permission check sees it.
    assert_eq!(me(&w.bob).await.status, 200);
    let role = app
        .as_admin()
        .put("/admin/users/bob/role", json!({ "role": "admin" }))
        .await;
    assert_eq!(role.status, 200, "{:?}", role.body);
    assert_eq!(me(&w.bob).await.body["role"], "admin");

    // Revoking one's other sessions: a token of a revoked session is refused at once.
    let alice_2 = w.key.sign(&common::claims_with_sid("alice", "s-alice-2"));
    assert_eq!(me(&alice_2).await.status, 200);
    assert!(rows.session("s-alice-2").is_some());
    let revoked = app.bearer(&w.alice).delete("/users/me/sessions").await;
    assert_eq!(revoked.body["revoked"], 1, "{:?}", revoked.body);
    assert_eq!(me(&alice_2).await.status, 401);
    assert_eq!(me(&w.alice).await.status, 200);

    // A ban: refused at once (the ban also revokes every session).
    let ban = app.as_admin().post("/admin/users/alice/ban", None).await;
    assert_eq!(ban.status, 200, "{:?}", ban.body);
    let after = me(&w.alice).await;
    assert!(
        after.status == 401 || after.status == 403,
        "{:?}",
        (after.status, &after.body)
    );
    assert!(rows.session("s-alice-1").is_none());
}

/// An admin write drops from the cache exactly the rows it changed or deleted, once it has
/// committed; a write refused inside its transaction (the last admin, the actor's permission
/// gone since their request was let in) leaves the database and every cached row as they were.
#[sqlx::test]
async fn an_admin_write_drops_exactly_its_rows_and_a_refused_one_none(db: PgPool) {
    let w = World::new(db).await;
    let rows = long_lived_cache();
    rows.set_trusted(true);
    let app = with_cache(&w, &rows).await;
    let cached = |id: &str| rows.user(id).is_some();
    for token in [&w.admin, &w.alice, &w.bob] {
        assert_eq!(app.bearer(token).get("/users/me").await.status, 200);
    }
    assert!(cached("admin") && cached("alice") && cached("bob"));
    assert!(rows.session("s-alice-1").is_some() && rows.session("s-bob").is_some());

    // The last admin demoting themselves: refused under the lock, nothing changed or dropped.
    let before = w.snapshot().await;
    let answer = app
        .as_admin()
        .put("/admin/users/admin/role", json!({ "role": "user" }))
        .await;
    assert_eq!(answer.outcome(), (409, Some("last_admin")));
    assert_eq!(w.snapshot().await, before);
    assert!(cached("admin") && cached("alice") && cached("bob"));

    // Demoted by SQL, with no listener to tell the cache: the request is let in on the cached
    // row, the write reads the actor again and refuses; the target's rows stay cached.
    w.exec(r#"UPDATE "user" SET role = 'user' WHERE id = 'admin'"#)
        .await;
    let before = w.snapshot().await;
    let answer = app.as_admin().post("/admin/users/alice/ban", None).await;
    assert_eq!(answer.outcome(), (403, Some("forbidden")));
    assert_eq!(w.snapshot().await, before);
    assert!(cached("alice") && rows.session("s-alice-1").is_some());
    w.exec(r#"UPDATE "user" SET role = 'admin' WHERE id = 'admin'"#)
        .await;
    rows.invalidate_user("admin");

    // A ban: bob's row and his session go, nobody else's.
    let answer = app.as_admin().post("/admin/users/bob/ban", None).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert!(!cached("bob") && rows.session("s-bob").is_none());
    assert!(cached("admin") && cached("alice") && rows.session("s-alice-1").is_some());

    // Revoking alice's sessions: her sessions go, her row stays.
    let answer = app.as_admin().delete("/admin/users/alice/sessions").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert!(cached("alice") && rows.session("s-alice-1").is_none());
}

/// Many first-time JWTs at once: their sessions and users are read together (batched), and
/// each request still gets exactly its own user; a banned one among them, a session of
/// someone else and a missing session are refused as when read alone.
#[sqlx::test]
async fn cold_requests_at_once_each_get_their_own_user(db: PgPool) {
    let w = World::new(db.clone()).await;
    sqlx::raw_sql(
        r#"INSERT INTO "user" (id, name, email, email_verified, created_at, updated_at, role, banned)
           SELECT 'c' || g, 'Cold ' || g, 'cold' || g || '@example.com', false, now(), now(), 'user', g = 7
           FROM generate_series(1, 300) g;
           INSERT INTO session (id, expires_at, token, created_at, updated_at, user_id)
           SELECT 'sc' || g, now() + interval '1 hour', 'tc' || g, now(), now(), 'c' || g
           FROM generate_series(1, 300) g"#,
    )
    .execute(&db)
    .await
    .unwrap();
    let rows = long_lived_cache();
    rows.set_trusted(true);
    let app = Arc::new(with_cache(&w, &rows).await);
    let mut cases: Vec<(String, String)> = (1..=300).map(|g| (format!("c{g}"), format!("sc{g}"))).collect();
    cases.push(("c1".into(), "sc2".into())); // another user's session
    cases.push(("c3".into(), "sc-missing".into()));
    let mut tasks = Vec::new();
    for (sub, sid) in cases {
        let (app, token) = (Arc::clone(&app), w.key.sign(&common::claims_with_sid(&sub, &sid)));
        tasks.push(tokio::spawn(async move {
            let answer = app.bearer(&token).get("/users/me").await;
            (sub, sid, answer.status.as_u16(), answer.body)
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let (sub, sid, status, body) = task.await.unwrap();
        match (sub.as_str(), sid.as_str()) {
            ("c7", _) => assert_eq!((status, body["code"].as_str()), (403, Some("banned"))),
            ("c1", "sc2") | ("c3", "sc-missing") => {
                assert_eq!(status, 401, "{sub} {sid}: {body}");
            }
            _ => {
                assert_eq!((status, body["id"].as_str()), (200, Some(sub.as_str())), "{body}");
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 299);
}

/// A pool over the test's database that counts the connections handed back, one per query
/// A signed-out client keeps sending its JWT until it expires. The first such request is refused
/// after the batch's read (which finds the session gone); the session is then remembered gone,
/// so the replays that follow cost no read, but the user's row when that is not cached (so a
/// ban is still reported as a ban).
#[sqlx::test]
async fn a_signed_out_jwt_is_refused_without_reading_its_session_twice(db: PgPool) {
    let (counted, reads) = common::counting_pool(&db).await;
    let w = World::new(counted).await;
    let rows = long_lived_cache();
    rows.set_trusted(true);
    let app = with_cache(&w, &rows).await;
    assert_eq!(app.as_alice().get("/users/me").await.status, 200);
    assert!(rows.user("alice").is_some() && rows.session("s-alice-1").is_some());
    // Signed out: the row goes, and the notification drops it from the cache.
    sqlx::query("DELETE FROM session WHERE id = 's-alice-1'")
        .execute(&db)
        .await
        .unwrap();
    rows.invalidate_session("s-alice-1");
    // A connection goes back to the pool (and is counted) in a task of its own, just after the
    // query: let the count settle before reading it.
    let settled = || async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        reads.load(std::sync::atomic::Ordering::SeqCst)
    };
    // Alice's request: its status, its code and the reads it took.
    let refused = || async {
        let before = settled().await;
        let answer = app.as_alice().get("/users/me").await;
        let code = answer.body["code"].clone();
        (answer.status.as_u16(), code, settled().await - before)
    };
    // The user cached: one read, the batch's.
    assert_eq!(refused().await, (401, json!("session_revoked"), 1));
    // Replayed: no read at all, however often.
    for _ in 0..3 {
        assert_eq!(refused().await, (401, json!("session_revoked"), 0));
    }
    // The user's row evicted meanwhile: that row alone.
    rows.invalidate_user("alice");
    assert_eq!(refused().await, (401, json!("session_revoked"), 1));
    assert_eq!(refused().await, (401, json!("session_revoked"), 0));
}

/// A session token seen before finds its session by id in the row cache: no read at all once
/// warm (it used to read its session by token every time), and still refused at once when the
/// session goes.
#[sqlx::test]
async fn a_session_token_seen_before_reads_nothing_and_its_sign_out_is_seen(db: PgPool) {
    let (counted, reads) = common::counting_pool(&db).await;
    let w = World::new(counted).await;
    let rows = long_lived_cache();
    rows.set_trusted(true);
    let app = with_cache(&w, &rows).await;
    let settled = || async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        reads.load(std::sync::atomic::Ordering::SeqCst)
    };
    let ask = || async {
        let before = settled().await;
        let answer = app.bearer("tok-alice-1").get("/users/me").await;
        (answer.status.as_u16(), settled().await - before)
    };
    // The first: the session by token (and the user); the next: the session by id, once.
    assert_eq!(ask().await.0, 200);
    assert_eq!(ask().await.0, 200);
    for _ in 0..3 {
        assert_eq!(ask().await, (200, 0), "a warm session token read the database");
    }
    sqlx::query("DELETE FROM session WHERE id = 's-alice-1'")
        .execute(&db)
        .await
        .unwrap();
    rows.invalidate_session("s-alice-1");
    assert_eq!(ask().await.0, 401);
    // Another token of the same user still works.
    assert_eq!(app.bearer("tok-alice-2").get("/users/me").await.status, 200);
}

/// A deleted user's JWT, replayed: one read finds the user gone, the replays none. A session
/// token whose session expired, the same.
#[sqlx::test]
async fn a_gone_user_or_an_expired_session_token_is_read_once(db: PgPool) {
    let (counted, reads) = common::counting_pool(&db).await;
    let w = World::with(
        counted,
        Setup::default().policy(|p| p.session_check = warden::testing::auth::SessionCheck::Off),
    )
    .await;
    let settled = || async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        reads.load(std::sync::atomic::Ordering::SeqCst)
    };
    let refused = |token: String| {
        let w = &w;
        async move {
            let before = settled().await;
            let answer = w.bearer(&token).get("/users/me").await;
            let code = answer.body["code"].clone();
            (answer.status.as_u16(), code, settled().await - before)
        }
    };
    sqlx::query(r#"DELETE FROM "user" WHERE id = 'bob'"#)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(refused(w.bob.clone()).await, (401, json!("user_not_found"), 1));
    for _ in 0..3 {
        assert_eq!(refused(w.bob.clone()).await, (401, json!("user_not_found"), 0));
    }
    common::insert_session(&db, "s-old", "alice", "tokExpiredSession0123456789abcd", -60).await;
    let token = "tokExpiredSession0123456789abcd".to_owned();
    // The session by its token, and its user's row (a ban is reported before an expiry).
    assert_eq!(refused(token.clone()).await, (401, json!("token_expired"), 2));
    for _ in 0..3 {
        assert_eq!(refused(token.clone()).await, (401, json!("token_expired"), 0));
    }
}

/// Polls `/auth/verify` with an API key until `check` holds; returns how long that took.
async fn key_seen_within(
    app: &World,
    key: &str,
    check: impl Fn(u16, &serde_json::Value) -> bool,
) -> Duration {
    seen_as(|| app.anonymous().header("x-api-key", key), "/auth/verify", check).await
}

#[sqlx::test]
async fn a_cached_api_key_follows_a_disable_a_delete_an_owner_ban_and_a_new_quota(db: PgPool) {
    let (w, rows, app, task) = cached_world(db).await;
    let insert = |id: &str, key: &str| {
        format!(
            "INSERT INTO apikey (id, config_id, reference_id, key, enabled, rate_limit_enabled, created_at, updated_at) \
             VALUES ('{id}', 'default', 'alice', '{}', true, false, now(), now() - interval '1 hour')",
            warden::testing::auth::api_key::stored_form(key, true)
        )
    };
    w.exec(&insert("k1", "cached-key-number-one-000")).await;
    w.exec(&insert("k2", "cached-key-number-two-000")).await;
    let stored = warden::testing::auth::api_key::cache_slot(&warden::testing::auth::api_key::stored_form(
        "cached-key-number-one-000",
        true,
    ));
    for key in ["cached-key-number-one-000", "cached-key-number-two-000"] {
        let answer = app.anonymous().header("x-api-key", key).get("/auth/verify").await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    assert!(
        rows.api_key(&stored).is_some(),
        "a key that counts nothing is cached"
    );
    // Its use is stamped at once, then at most once a second.
    let stamp = "SELECT extract(epoch FROM updated_at)::text FROM apikey WHERE id = 'k1'";
    let first = w.scalar_text(stamp).await;
    assert_eq!(
        app.anonymous()
            .header("x-api-key", "cached-key-number-one-000")
            .get("/auth/verify")
            .await
            .status,
        200
    );
    assert_eq!(
        w.scalar_text(stamp).await,
        first,
        "not written again within the second"
    );

    let mut timings = Vec::new();
    w.exec("UPDATE apikey SET enabled = false WHERE id = 'k1'").await;
    timings.push((
        "disable",
        key_seen_within(&app, "cached-key-number-one-000", |s, b| {
            s == 401 && b["code"] == "api_key_disabled"
        })
        .await,
    ));
    w.exec("UPDATE apikey SET enabled = true, remaining = 1 WHERE id = 'k1'")
        .await;
    timings.push((
        "a quota",
        key_seen_within(&app, "cached-key-number-one-000", |s, _| s == 200).await,
    ));
    assert_eq!(
        app.anonymous()
            .header("x-api-key", "cached-key-number-one-000")
            .get("/auth/verify")
            .await
            .outcome(),
        (429, Some("usage_exceeded")),
        "the quota is counted in the database"
    );
    w.exec(r#"UPDATE "user" SET banned = true WHERE id = 'alice'"#)
        .await;
    timings.push((
        "owner ban",
        key_seen_within(&app, "cached-key-number-two-000", |s, b| {
            s == 403 && b["code"] == "banned"
        })
        .await,
    ));
    w.exec(r#"UPDATE "user" SET banned = false WHERE id = 'alice'"#)
        .await;
    key_seen_within(&app, "cached-key-number-two-000", |s, _| s == 200).await;
    w.exec("DELETE FROM apikey WHERE id = 'k2'").await;
    timings.push((
        "delete",
        key_seen_within(&app, "cached-key-number-two-000", |s, b| {
            s == 401 && b["code"] == "invalid_api_key"
        })
        .await,
    ));
    // A quota changed after its row was cached (no notification: the counters send none) is
    // seen at once, since the claim reads the counters fresh, not the cached row's.
    w.exec(
        &insert("k3", "cached-key-number-three-0")
            .replace("updated_at)", "updated_at, remaining)")
            .replace("interval '1 hour')", "interval '1 hour', 1)"),
    )
    .await;
    let k3 = || app.anonymous().header("x-api-key", "cached-key-number-three-0");
    assert_eq!(k3().get("/auth/verify").await.status, 200);
    assert!(
        rows.api_key(&warden::testing::auth::api_key::cache_slot(
            &warden::testing::auth::api_key::stored_form("cached-key-number-three-0", true)
        ))
        .is_some(),
        "its row is cached, with remaining 1 as read (0 now)"
    );
    w.exec("UPDATE apikey SET remaining = 5 WHERE id = 'k3'").await;
    assert_eq!(k3().get("/auth/verify").await.status, 200);
    assert_eq!(
        w.scalar_i64("SELECT remaining::bigint FROM apikey WHERE id = 'k3'")
            .await,
        4
    );
    for (what, took) in &timings {
        eprintln!("api key {what}: seen after {} ms", took.as_millis());
        assert!(*took < Duration::from_secs(1), "{what} took {took:?}");
    }
    stop(task).await;
}

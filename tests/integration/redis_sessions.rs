//! Sessions in Redis (`SESSION_STORE=redis`): a real `redis-server` per test, Better-Auth's
//! records written into it as `@better-auth/redis-storage` writes them, and warden's answers
//! and what it leaves in Redis and the table afterwards. (The same against a real Better-Auth:
//! `tests/e2e/redis_sessions.rs`.)

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;
use warden::{RedisStorage, SessionStorage};

use crate::common::{claims_with_sid, insert_session};
use crate::support::redis::{self as r, RedisServer, now_ms, put_session};
use crate::world::{Setup, World};

const P: &str = "better-auth:";

fn storage(server: &RedisServer, rows: bool, preserve: bool) -> SessionStorage {
    let mut s = RedisStorage::new(server.url());
    s.store_in_database = rows;
    s.preserve_in_database = preserve;
    SessionStorage::Redis(s)
}

/// A world (admin, alice and bob as users, their sessions in the table) whose warden reads
/// sessions from `server`.
async fn world(db: PgPool, server: &RedisServer, rows: bool, preserve: bool) -> World {
    let storage = storage(server, rows, preserve);
    let w = World::with(db, Setup::default().auth(move |a| a.session_storage(storage))).await;
    wait_connected(&w).await;
    w
}

async fn wait_connected(w: &World) {
    for _ in 0..200 {
        if w.state.auth.session_store_connected() == Some(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("warden did not connect to Redis");
}

/// Polls `check` until it holds (at most 5 s); returns how long it took.
async fn within<F, Fut>(mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("not within 5 s");
}

#[sqlx::test]
async fn sessions_are_found_in_redis_by_token_and_by_sid_and_the_table_is_not_asked(db: PgPool) {
    if !r::available() {
        return;
    }
    let server = RedisServer::start().await;
    let mut redis = server.connect().await;
    let w = world(db, &server, false, false).await;
    put_session(
        &mut redis,
        P,
        ("rs-alice", "alice", "rtok-alice"),
        now_ms() - 1000,
        3600,
    )
    .await;
    let jwt = w.key.sign(&claims_with_sid("alice", "rs-alice"));

    let me = w.bearer(&jwt).get("/users/me").await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["id"], "alice");
    let me = w.bearer("rtok-alice").get("/users/me").await;
    assert_eq!(me.status, 200, "{}", me.body);

    let list = w.bearer(&jwt).get("/users/me/sessions").await;
    assert_eq!(list.status, 200);
    let ids: Vec<_> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("rs-alice")], "Redis's sessions, not the table's");
    assert_eq!(list.body[0]["current"], true);
    assert_eq!(list.body[0]["userAgent"], "test-agent");

    // alice's JWT from the table's session s-alice-1 and its token: not sessions here.
    assert_eq!(
        w.as_alice().get("/users/me").await.outcome(),
        (401, Some("session_revoked"))
    );
    assert_eq!(w.bearer("tok-alice-1").get("/users/me").await.status, 401);
    // A JWT naming alice's Redis session for another user.
    let forged = w.key.sign(&claims_with_sid("bob", "rs-alice"));
    assert_eq!(w.bearer(&forged).get("/users/me").await.status, 401);
}

#[sqlx::test]
async fn reads_are_cached_under_client_tracking_and_every_change_in_redis_is_seen(db: PgPool) {
    if !r::available() {
        return;
    }
    let server = RedisServer::start().await;
    let mut redis = server.connect().await;
    let w = world(db, &server, false, false).await;
    let start = now_ms() - 1000;
    put_session(&mut redis, P, ("rs-1", "alice", "rtok-1"), start, 3600).await;
    put_session(&mut redis, P, ("rs-2", "alice", "rtok-2"), start, 3600).await;
    let jwt1 = w.key.sign(&claims_with_sid("alice", "rs-1"));
    assert_eq!(w.bearer(&jwt1).get("/users/me").await.status, 200);
    assert_eq!(w.bearer("rtok-2").get("/users/me").await.status, 200);

    // Warm: repeated requests read nothing from Redis.
    let before = server.gets().await;
    for _ in 0..20 {
        assert_eq!(w.bearer(&jwt1).get("/users/me").await.status, 200);
        assert_eq!(w.bearer("rtok-2").get("/users/me").await.status, 200);
    }
    assert_eq!(server.gets().await, before, "cached requests asked Redis");

    // Better-Auth's sign-out deletes the key: the next request is refused (tracking pushed
    // the invalidation), for the sid JWT as for the token.
    r::set(&mut redis, &format!("{P}rtok-1"), None).await;
    let took = within(|| async { w.bearer(&jwt1).get("/users/me").await.status == 401 }).await;
    eprintln!("sign-out seen after {took:?}");
    assert_eq!(
        w.bearer(&jwt1).get("/users/me").await.outcome(),
        (401, Some("session_revoked"))
    );

    // Better-Auth's revoke-all: the revoked-before mark after the session's creation.
    r::set(
        &mut redis,
        &format!("{P}revoked-sessions-before-alice"),
        Some(&(start + 1).to_string()),
    )
    .await;
    within(|| async { w.bearer("rtok-2").get("/users/me").await.status == 401 }).await;

    // A session created after the mark is live.
    put_session(&mut redis, P, ("rs-3", "alice", "rtok-3"), start + 2, 3600).await;
    assert_eq!(w.bearer("rtok-3").get("/users/me").await.status, 200);

    // An update of the session's value (Better-Auth's updateSession: set-active organization)
    // is seen too.
    let key = format!("{P}rtok-3");
    let mut value: serde_json::Value =
        serde_json::from_str(&r::get(&mut redis, &key).await.unwrap()).unwrap();
    value["session"]["expiresAt"] = json!(r::js_date(now_ms() - 1000));
    r::set(&mut redis, &key, Some(&value.to_string())).await;
    within(|| async { w.bearer("rtok-3").get("/users/me").await.status == 401 }).await;
    assert_eq!(
        w.bearer("rtok-3").get("/users/me").await.outcome(),
        (401, Some("token_expired"))
    );
}

#[sqlx::test]
async fn warden_ends_sessions_in_redis_as_better_auth_does(db: PgPool) {
    if !r::available() {
        return;
    }
    let server = RedisServer::start().await;
    let mut redis = server.connect().await;
    let w = world(db, &server, false, false).await;
    let start = now_ms() - 1000;
    for (id, token) in [("a1", "t-a1"), ("a2", "t-a2"), ("a3", "t-a3"), ("a4", "t-a4")] {
        put_session(&mut redis, P, (id, "alice", token), start, 3600).await;
    }
    put_session(&mut redis, P, ("ad", "admin", "t-ad"), start, 3600).await;
    let alice = w.key.sign(&claims_with_sid("alice", "a1"));
    let admin = w.key.sign(&claims_with_sid("admin", "ad"));
    let list_key = format!("{P}active-sessions-alice");

    // One of her own: the key goes, and the entry leaves her list.
    assert_eq!(w.bearer(&alice).delete("/users/me/sessions/a2").await.status, 204);
    assert_eq!(r::get(&mut redis, &format!("{P}t-a2")).await, None);
    let list = r::get(&mut redis, &list_key).await.unwrap();
    assert!(!list.contains("t-a2") && list.contains("t-a1"), "{list}");
    assert_eq!(w.bearer("t-a2").get("/users/me").await.status, 401);
    // Gone now, and another user's: 404.
    assert_eq!(w.bearer(&alice).delete("/users/me/sessions/a2").await.status, 404);
    assert_eq!(w.bearer(&alice).delete("/users/me/sessions/ad").await.status, 404);
    assert!(r::get(&mut redis, &format!("{P}t-ad")).await.is_some());

    // Everywhere else: the others' keys go, hers stays.
    let revoked = w.bearer(&alice).delete("/users/me/sessions").await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.body["revoked"], 2);
    assert_eq!(r::get(&mut redis, &format!("{P}t-a3")).await, None);
    assert_eq!(r::get(&mut redis, &format!("{P}t-a4")).await, None);
    assert_eq!(w.bearer(&alice).get("/users/me").await.status, 200);

    // An admin's revocation of one session by id (found without its owner).
    put_session(&mut redis, P, ("a5", "alice", "t-a5"), start, 3600).await;
    assert_eq!(w.bearer(&admin).delete("/admin/sessions/a5").await.status, 204);
    assert_eq!(r::get(&mut redis, &format!("{P}t-a5")).await, None);
    assert_eq!(w.bearer(&admin).delete("/admin/sessions/a5").await.status, 404);

    // A ban: the revoked-before mark, her keys and list gone, and she is refused. An earlier
    // mark of Better-Auth's (an old time, a 30-day lifetime) moves to now and keeps its life.
    let _: () = redis::cmd("SETEX")
        .arg(format!("{P}revoked-sessions-before-alice"))
        .arg(30 * 86_400)
        .arg((start - 3_600_000).to_string())
        .query_async(&mut redis)
        .await
        .unwrap();
    let ban = w
        .bearer(&admin)
        .post("/admin/users/alice/ban", Some(json!({"reason": "spam"})))
        .await;
    assert_eq!(ban.status, 200, "{}", ban.body);
    let mark: i64 = r::get(&mut redis, &format!("{P}revoked-sessions-before-alice"))
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!((mark - now_ms()).abs() < 60_000, "mark {mark}");
    let left: i64 = redis::cmd("TTL")
        .arg(format!("{P}revoked-sessions-before-alice"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(left > 29 * 86_400, "the mark's life was cut to {left} s");
    assert_eq!(r::get(&mut redis, &format!("{P}t-a1")).await, None);
    assert_eq!(r::get(&mut redis, &list_key).await, None);
    assert_eq!(w.bearer(&alice).get("/users/me").await.status, 403, "banned");
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM warden_audit_log WHERE action = 'user.ban'")
            .await,
        1
    );
}

#[sqlx::test]
async fn redis_down_is_503_never_a_stale_session_and_warden_recovers_without_a_restart(db: PgPool) {
    if !r::available() {
        return;
    }
    let mut server = RedisServer::start().await;
    let mut redis = server.connect().await;
    let w = world(db, &server, false, false).await;
    put_session(&mut redis, P, ("rs-a", "alice", "rtok-a"), now_ms() - 1000, 3600).await;
    let jwt = w.key.sign(&claims_with_sid("alice", "rs-a"));
    assert_eq!(w.bearer(&jwt).get("/users/me").await.status, 200);
    assert_eq!(w.bearer("rtok-a").get("/users/me").await.status, 200);

    server.stop().await;
    within(|| async { w.state.auth.session_store_connected() == Some(false) }).await;
    for credential in [jwt.as_str(), "rtok-a"] {
        let answer = w.bearer(credential).get("/users/me").await;
        assert_eq!(
            answer.outcome(),
            (503, Some("session_store_unavailable")),
            "{}",
            answer.body
        );
    }
    let ready = w.anonymous().get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["sessions"], "redis: unreachable");

    // Back (empty, as a Redis without persistence restarts), and the session written again.
    server.restart().await;
    wait_connected(&w).await;
    let mut redis = server.connect().await;
    assert_eq!(
        w.bearer(&jwt).get("/users/me").await.status,
        401,
        "nothing was kept from before"
    );
    put_session(&mut redis, P, ("rs-a", "alice", "rtok-a"), now_ms() - 1000, 3600).await;
    assert_eq!(w.bearer("rtok-a").get("/users/me").await.status, 200);
    assert_eq!(w.anonymous().get("/readyz").await.body["sessions"], "redis: ok");

    // Hung rather than gone (the connection stays open): the ping notices, and the warm
    // session is not served from memory meanwhile; then back, with what it held.
    assert_eq!(w.bearer("rtok-a").get("/users/me").await.status, 200);
    server.pause().await;
    within(|| async { w.state.auth.session_store_connected() == Some(false) }).await;
    assert_eq!(
        w.bearer("rtok-a").get("/users/me").await.outcome(),
        (503, Some("session_store_unavailable"))
    );
    server.resume().await;
    wait_connected(&w).await;
    assert_eq!(w.bearer("rtok-a").get("/users/me").await.status, 200);

    // And a second loss after a recovery is noticed as the first was.
    server.stop().await;
    within(|| async { w.state.auth.session_store_connected() == Some(false) }).await;
    assert_eq!(w.bearer("rtok-a").get("/users/me").await.status, 503);
}

#[sqlx::test]
async fn with_rows_in_the_table_redis_decides_and_the_table_answers_only_where_better_auth_asks_it(
    db: PgPool,
) {
    if !r::available() {
        return;
    }
    let server = RedisServer::start().await;
    let mut redis = server.connect().await;
    // storeSessionInDatabase: a token Redis lacks is looked up in the table.
    let w = world(db.clone(), &server, true, false).await;
    insert_session(&db, "both", "alice", "tok-both", 3600).await;
    put_session(
        &mut redis,
        P,
        ("both", "alice", "tok-both"),
        now_ms() - 1000,
        3600,
    )
    .await;
    assert_eq!(
        w.bearer("tok-alice-1").get("/users/me").await.status,
        200,
        "row only: fallback"
    );
    assert_eq!(
        w.as_alice().get("/users/me").await.status,
        200,
        "sid of a row only"
    );
    let list = w.as_alice().get("/users/me/sessions").await;
    assert_eq!(
        list.body.as_array().unwrap().len(),
        3,
        "listed from the table: {}",
        list.body
    );
    // Revoked in Redis (the mark): refused, though its row is there.
    r::set(
        &mut redis,
        &format!("{P}revoked-sessions-before-alice"),
        Some(&now_ms().to_string()),
    )
    .await;
    within(|| async { w.bearer("tok-both").get("/users/me").await.status == 401 }).await;

    // Ending a session ends both: the row and the key.
    r::set(&mut redis, &format!("{P}revoked-sessions-before-alice"), None).await;
    put_session(&mut redis, P, ("s-bob", "bob", "tok-bob"), now_ms() - 1000, 3600).await;
    assert_eq!(w.as_bob().delete("/users/me/sessions/s-bob").await.status, 204);
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM session WHERE id = 's-bob'")
            .await,
        0
    );
    assert_eq!(r::get(&mut redis, &format!("{P}tok-bob")).await, None);

    // preserveSessionInDatabase: Redis alone answers; ended rows stay, their end moved to now.
    let kept = w
        .variant(Setup::default().auth({
            let storage = storage(&server, true, true);
            move |a| a.session_storage(storage)
        }))
        .await;
    wait_connected(&kept).await;
    assert_eq!(
        kept.bearer("tok-alice-1").get("/users/me").await.status,
        401,
        "row only: no fallback"
    );
    put_session(
        &mut redis,
        P,
        ("s-alice-2", "alice", "tok-alice-2"),
        now_ms() - 1000,
        3600,
    )
    .await;
    assert_eq!(kept.bearer("tok-alice-2").get("/users/me").await.status, 200);
    let jwt = kept.key.sign(&claims_with_sid("alice", "s-alice-2"));
    assert_eq!(
        kept.bearer(&jwt)
            .delete("/users/me/sessions/s-alice-2")
            .await
            .status,
        204
    );
    assert_eq!(
        kept.scalar_i64("SELECT count(*) FROM session WHERE id = 's-alice-2' AND expires_at <= now()")
            .await,
        1,
        "the row is kept, ended"
    );
    assert_eq!(r::get(&mut redis, &format!("{P}tok-alice-2")).await, None);
}

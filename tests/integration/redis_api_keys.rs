//! API keys in Better-Auth's secondary storage (`API_KEY_STORAGE=secondary-storage`): a real
//! `redis-server` per test, keys written into it as `@better-auth/api-key` writes them, and
//! warden's answers and what it leaves in Redis afterwards. (The agreement with the real
//! plugin in this mode, key state by key state, is the end-to-end test `api_keys`.)

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};
use sqlx::PgPool;
use warden::{ApiKeyStorage, RedisStorage, SessionStorage};

use crate::support::redis::{self as r, RedisServer, js_date, now_ms};
use crate::world::{Setup, World};

const P: &str = "better-auth:";

async fn world(db: PgPool, server: &RedisServer) -> World {
    world_hashing(db, server, true).await
}

async fn world_hashing(db: PgPool, server: &RedisServer, hashing: bool) -> World {
    let storage = SessionStorage::Redis(RedisStorage::new(server.url()));
    let w = World::with(
        db,
        Setup::default()
            .policy(move |p| {
                p.api_keys.storage = ApiKeyStorage::SecondaryStorage;
                p.api_keys.hashing = hashing;
            })
            .auth(move |a| a.session_storage(storage)),
    )
    .await;
    connected(&w, true).await;
    w
}

/// Until warden's Redis connection is up (`true`) or found gone (`false`), 5 s at most.
async fn connected(w: &World, up: bool) {
    for _ in 0..200 {
        if w.state.auth.session_store_connected() == Some(up) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "warden's Redis connection is not {}",
        if up { "up" } else { "down" }
    );
}

/// A key as the plugin's `createApiKey` stores it in secondary storage (its hash, its id, its
/// owner's list), with `fields` over the plugin's defaults.
async fn put_key(conn: &mut MultiplexedConnection, id: &str, key: &str, owner: &str, fields: Value) {
    put_stored(conn, id, key, true, owner, fields).await;
}

/// [`put_key`], the key stored hashed or (the plugin's `disableKeyHashing`) as itself.
async fn put_stored(
    conn: &mut MultiplexedConnection,
    id: &str,
    key: &str,
    hashing: bool,
    owner: &str,
    fields: Value,
) {
    let stored = warden::testing::auth::api_key::stored_form(key, hashing);
    let created = js_date(now_ms() - 3_600_000);
    let mut value = json!({
        "configId": "default", "createdAt": created, "updatedAt": created, "name": null,
        "prefix": null, "start": &key[..6], "key": stored, "enabled": true, "expiresAt": null,
        "referenceId": owner, "lastRefillAt": null, "lastRequest": null, "metadata": null,
        "rateLimitMax": 10, "rateLimitTimeWindow": 86_400_000, "remaining": null,
        "refillAmount": null, "refillInterval": null, "rateLimitEnabled": true, "requestCount": 0,
        "id": id,
    });
    for (name, v) in fields.as_object().unwrap() {
        value[name] = v.clone();
    }
    r::set(conn, &format!("{P}api-key:{stored}"), Some(&value.to_string())).await;
    r::set(conn, &format!("{P}api-key:by-id:{id}"), Some(&value.to_string())).await;
    let list = format!("{P}api-key:by-ref:{owner}");
    let mut ids: Vec<String> = match r::get(conn, &list).await {
        Some(raw) => serde_json::from_str(&raw).unwrap(),
        None => Vec::new(),
    };
    ids.push(id.to_owned());
    r::set(conn, &list, Some(&serde_json::to_string(&ids).unwrap())).await;
}

/// The key's value under its id (`None`: gone), checked to be the value under its hash.
async fn stored(conn: &mut MultiplexedConnection, id: &str) -> Option<Value> {
    let raw = r::get(conn, &format!("{P}api-key:by-id:{id}")).await?;
    let value: Value = serde_json::from_str(&raw).unwrap();
    let by_hash = r::get(conn, &format!("{P}api-key:{}", value["key"].as_str().unwrap())).await;
    assert_eq!(
        by_hash.as_deref(),
        Some(raw.as_str()),
        "one value under both names"
    );
    Some(value)
}

async fn verify(w: &World, key: &str) -> (u16, Option<String>) {
    let answer = w.anonymous().header("x-api-key", key).get("/auth/verify").await;
    let (status, code) = answer.outcome();
    (status, code.map(str::to_owned))
}

#[sqlx::test]
async fn keys_in_redis_are_counted_there_and_every_change_is_seen(db: PgPool) {
    if !r::available() {
        return;
    }
    let server = RedisServer::start().await;
    let mut redis = server.connect().await;
    let w = world(db, &server).await;

    // A quota of 2 without rate limit: two uses, then refused and deleted as the plugin
    // deletes a used-up key (both names, and off its owner's list).
    put_key(
        &mut redis,
        "rk-1",
        "wd_redis_key_one_0001",
        "alice",
        json!({"remaining": 2, "rateLimitEnabled": false}),
    )
    .await;
    put_key(&mut redis, "rk-2", "wd_redis_key_two_0002", "alice", json!({})).await;
    assert_eq!(verify(&w, "wd_redis_key_one_0001").await, (200, None));
    let after = stored(&mut redis, "rk-1").await.unwrap();
    assert_eq!(after["remaining"], 1);
    assert!(
        after["lastRequest"].is_string(),
        "rate limits off on the key: stamped"
    );
    assert_eq!(verify(&w, "wd_redis_key_one_0001").await, (200, None));
    assert_eq!(stored(&mut redis, "rk-1").await.unwrap()["remaining"], 0);
    assert_eq!(
        verify(&w, "wd_redis_key_one_0001").await,
        (429, Some("usage_exceeded".into()))
    );
    assert_eq!(stored(&mut redis, "rk-1").await, None, "deleted");
    assert_eq!(
        r::get(&mut redis, &format!("{P}api-key:by-ref:alice"))
            .await
            .as_deref(),
        Some(r#"["rk-2"]"#),
        "off its owner's list"
    );
    assert_eq!(
        verify(&w, "wd_redis_key_one_0001").await,
        (401, Some("invalid_api_key".into()))
    );

    // The default rate limit (10 a day): counted in Redis, the 11th refused without a write.
    for n in 1..=10 {
        assert_eq!(verify(&w, "wd_redis_key_two_0002").await, (200, None), "use {n}");
    }
    let full = stored(&mut redis, "rk-2").await.unwrap();
    assert_eq!(full["requestCount"], 10);
    assert_eq!(
        verify(&w, "wd_redis_key_two_0002").await,
        (429, Some("rate_limited".into()))
    );
    assert_eq!(
        stored(&mut redis, "rk-2").await.unwrap(),
        full,
        "a refusal writes nothing"
    );

    // Better-Auth switches the key off, then moves its window back: each seen on the next
    // request (client tracking drops what warden kept).
    let mut off = full.clone();
    off["enabled"] = json!(false);
    put_key(&mut redis, "rk-2", "wd_redis_key_two_0002", "alice", off).await;
    assert_eq!(
        verify(&w, "wd_redis_key_two_0002").await,
        (401, Some("api_key_disabled".into()))
    );
    let mut passed = full.clone();
    passed["lastRequest"] = json!(js_date(now_ms() - 86_400_001));
    put_key(&mut redis, "rk-2", "wd_redis_key_two_0002", "alice", passed).await;
    assert_eq!(verify(&w, "wd_redis_key_two_0002").await, (200, None));
    assert_eq!(
        stored(&mut redis, "rk-2").await.unwrap()["requestCount"],
        1,
        "a new window"
    );

    // An expired key is refused and deleted; its TTL is kept to the expiry on every write.
    put_key(
        &mut redis,
        "rk-3",
        "wd_redis_key_old_0003",
        "bob",
        json!({"expiresAt": js_date(now_ms() - 1000)}),
    )
    .await;
    assert_eq!(
        verify(&w, "wd_redis_key_old_0003").await,
        (401, Some("api_key_expired".into()))
    );
    assert_eq!(stored(&mut redis, "rk-3").await, None);
    put_key(
        &mut redis,
        "rk-4",
        "wd_redis_key_ttl_0004",
        "bob",
        json!({"expiresAt": js_date(now_ms() + 3_600_000)}),
    )
    .await;
    assert_eq!(verify(&w, "wd_redis_key_ttl_0004").await, (200, None));
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{P}api-key:by-id:rk-4"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((3590..=3600).contains(&ttl), "TTL {ttl}");

    // Many uses at once of a key with 30: exactly 30 granted, never below 0.
    put_key(
        &mut redis,
        "rk-5",
        "wd_redis_key_busy_0005",
        "bob",
        json!({"remaining": 30, "rateLimitEnabled": false}),
    )
    .await;
    let mut all = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let app = w.app.clone();
        all.spawn(async move {
            let request = axum::http::Request::get("/auth/verify")
                .header("x-api-key", "wd_redis_key_busy_0005")
                .body(axum::body::Body::empty())
                .unwrap();
            crate::common::send(&app, request).await.status.as_u16()
        });
    }
    let statuses = all.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 30, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 429, 401].contains(s)),
        "{statuses:?}"
    );
}

#[sqlx::test]
async fn redis_down_refuses_keys_with_503_and_warden_recovers(db: PgPool) {
    if !r::available() {
        return;
    }
    let mut server = RedisServer::start().await;
    let mut redis = server.connect().await;
    let w = world(db, &server).await;
    put_key(
        &mut redis,
        "rk-d",
        "wd_redis_key_down_000d",
        "alice",
        json!({"rateLimitEnabled": false}),
    )
    .await;
    assert_eq!(verify(&w, "wd_redis_key_down_000d").await, (200, None));

    server.stop().await;
    connected(&w, false).await;
    assert_eq!(
        verify(&w, "wd_redis_key_down_000d").await,
        (503, Some("session_store_unavailable".into())),
        "never a cached key"
    );

    server.restart().await;
    let mut redis = server.connect().await;
    connected(&w, true).await;
    assert_eq!(
        verify(&w, "wd_redis_key_down_000d").await,
        (401, Some("invalid_api_key".into())),
        "Redis came back empty"
    );
    put_key(
        &mut redis,
        "rk-d",
        "wd_redis_key_down_000d",
        "alice",
        json!({"rateLimitEnabled": false}),
    )
    .await;
    assert_eq!(verify(&w, "wd_redis_key_down_000d").await, (200, None));
}

#[sqlx::test]
async fn counts_beyond_an_int4_work_and_a_keys_other_name_is_no_key(db: PgPool) {
    if !r::available() {
        return;
    }
    let server = RedisServer::start().await;
    let mut redis = server.connect().await;
    let w = world_hashing(db, &server, false).await;

    // Without hashing the stored form is the key itself; its copy under `by-id:<id>` is not a
    // key a client can send (key ids are shown to owners and logged).
    put_stored(
        &mut redis,
        "rk-p",
        "wd_plain_key_00000p",
        false,
        "alice",
        json!({}),
    )
    .await;
    assert_eq!(verify(&w, "wd_plain_key_00000p").await, (200, None));
    assert_eq!(
        verify(&w, "by-id:rk-p").await,
        (401, Some("invalid_api_key".into()))
    );

    // A monthly refill (2,592,000,000 ms, beyond an int4) of a used-up key, last refilled 31
    // days ago: refilled, as the plugin refills it.
    put_stored(
        &mut redis,
        "rk-m",
        "wd_monthly_key_000m",
        false,
        "alice",
        json!({"remaining": 0, "refillAmount": 5_000_000_000_i64, "refillInterval": 2_592_000_000_i64,
               "lastRefillAt": js_date(now_ms() - 31 * 86_400_000), "rateLimitEnabled": false}),
    )
    .await;
    assert_eq!(verify(&w, "wd_monthly_key_000m").await, (200, None));
    let after = stored(&mut redis, "rk-m").await.unwrap();
    assert_eq!(after["remaining"], 4_999_999_999_i64);
    assert_eq!(after["refillInterval"], 2_592_000_000_i64, "kept as written");
}

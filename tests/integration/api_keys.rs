//! API keys (Better-Auth's api-key plugin) against a real PostgreSQL: rows written as the
//! plugin writes them, then asked of warden through `/auth/verify`, `/users/me` and the
//! library's extractors, with the database checked afterwards. (The agreement with the real
//! plugin, key for key, is the end-to-end test `api_keys`.)

use axum::routing::get;
use serde_json::json;
use sqlx::PgPool;
use warden::{ApiKey, ApiKeyOwner, RequireApiKeyPermission};

use crate::common;
use crate::world::{Setup, World};

/// A key row as the plugin creates it, owned by `owner`, with the plugin's default rate limit
/// (10 a day) unless `extra` SQL (`SET ...`) changes it.
async fn insert_key(w: &World, id: &str, key: &str, owner: &str, extra: &str) {
    let stored = warden::testing::auth::api_key::stored_form(key, true);
    w.exec(&format!(
        "INSERT INTO apikey (id, config_id, name, start, reference_id, prefix, key, enabled, \
         rate_limit_enabled, rate_limit_time_window, rate_limit_max, request_count, created_at, updated_at) \
         VALUES ('{id}', 'default', 'k-{id}', left('{key}', 6), '{owner}', NULL, '{stored}', true, true, 86400000, 10, 0, \
         now() - interval '1 hour', now() - interval '1 hour')"
    ))
    .await;
    if !extra.is_empty() {
        w.exec(&format!("UPDATE apikey SET {extra} WHERE id = '{id}'"))
            .await;
    }
}

/// `(remaining, request_count)` of key `id`, `None` when it is gone.
async fn counters(w: &World, id: &str) -> Option<(Option<i64>, Option<i64>)> {
    sqlx::query_as::<_, (Option<i32>, Option<i32>)>(
        "SELECT remaining, request_count FROM apikey WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&w.db)
    .await
    .unwrap()
    .map(|(r, c)| (r.map(i64::from), c.map(i64::from)))
}

#[sqlx::test]
async fn a_key_gets_its_owners_identity_and_is_counted(db: PgPool) {
    let w = World::new(db).await;
    insert_key(&w, "k1", "wd_alicekey0000000000000001", "alice", "").await;
    let answer = w
        .anonymous()
        .header("x-api-key", "wd_alicekey0000000000000001")
        .get("/auth/verify")
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.headers["x-auth-credential"], "api-key");
    assert_eq!(answer.headers["x-auth-api-key-id"], "k1");
    assert_eq!(answer.headers["x-auth-user-id"], "alice");
    assert_eq!(answer.headers["x-auth-user-email"], "alice@example.com");
    assert!(answer.headers.get("x-auth-session-id").is_none());
    assert_eq!(counters(&w, "k1").await, Some((None, Some(1))));
    let stamped = w
        .scalar_i64("SELECT count(*) FROM apikey WHERE id = 'k1' AND last_request > now() - interval '1 minute' AND updated_at > now() - interval '1 minute'")
        .await;
    assert_eq!(
        stamped, 1,
        "last_request and updated_at are written, as the plugin writes them"
    );

    // The bearer header ranks first: a JWT beside a key is the JWT's caller.
    let answer = w
        .as_bob()
        .header("x-api-key", "wd_alicekey0000000000000001")
        .get("/auth/verify")
        .await;
    assert_eq!(answer.headers["x-auth-user-id"], "bob");
    assert_eq!(answer.headers["x-auth-credential"], "jwt");
    assert_eq!(
        counters(&w, "k1").await,
        Some((None, Some(1))),
        "the key was not used"
    );
}

#[sqlx::test]
async fn refusals_have_codes_and_change_only_what_the_plugin_changes(db: PgPool) {
    let w = World::new(db).await;
    insert_key(&w, "off", "key-disabled-000000000000", "alice", "enabled = false").await;
    insert_key(
        &w,
        "old",
        "key-expired-0000000000000",
        "alice",
        "expires_at = now() - interval '1 second'",
    )
    .await;
    insert_key(&w, "done", "key-used-up-0000000000000", "alice", "remaining = 0").await;
    insert_key(
        &w,
        "edge",
        "key-at-its-edge-000000000",
        "alice",
        "rate_limit_max = 2, rate_limit_time_window = 60000",
    )
    .await;
    insert_key(
        &w,
        "perm",
        "key-with-perms-0000000000",
        "alice",
        r#"permissions = '{"files":["read"]}'"#,
    )
    .await;
    insert_key(&w, "banned", "key-of-banned-00000000000", "bob", "remaining = 5").await;
    w.exec(r#"UPDATE "user" SET banned = true WHERE id = 'bob'"#)
        .await;
    let ask = |key: &str, query: &str| {
        let path = format!("/auth/verify{query}");
        let caller = w.anonymous().header("x-api-key", key);
        async move { caller.get(&path).await }
    };

    assert_eq!(
        ask("no-such-key-00000000000000", "").await.outcome(),
        (401, Some("invalid_api_key"))
    );
    assert_eq!(
        ask("key-disabled-000000000000", "").await.outcome(),
        (401, Some("api_key_disabled"))
    );
    assert_eq!(counters(&w, "off").await, Some((None, Some(0))));
    assert_eq!(
        ask("key-expired-0000000000000", "").await.outcome(),
        (401, Some("api_key_expired"))
    );
    assert_eq!(
        counters(&w, "old").await,
        None,
        "an expired key is deleted, as the plugin deletes it"
    );
    assert_eq!(
        ask("key-used-up-0000000000000", "").await.outcome(),
        (429, Some("usage_exceeded"))
    );
    assert_eq!(
        counters(&w, "done").await,
        None,
        "a used-up key without refill is deleted"
    );

    assert_eq!(ask("key-at-its-edge-000000000", "").await.status, 200);
    assert_eq!(ask("key-at-its-edge-000000000", "").await.status, 200);
    let limited = ask("key-at-its-edge-000000000", "").await;
    assert_eq!(limited.outcome(), (429, Some("rate_limited")));
    let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((55..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(counters(&w, "edge").await, Some((None, Some(2))));

    let denied = ask("key-with-perms-0000000000", "?permission=files:write").await;
    assert_eq!(denied.outcome(), (403, Some("forbidden")));
    assert!(denied.body["detail"].as_str().unwrap().contains("files:write"));
    assert_eq!(counters(&w, "perm").await, Some((None, Some(0))), "not counted");
    let granted = ask("key-with-perms-0000000000", "?permission=files:read").await;
    assert_eq!(granted.status, 200);
    assert_eq!(counters(&w, "perm").await, Some((None, Some(1))));

    assert_eq!(
        ask("key-of-banned-00000000000", "").await.outcome(),
        (403, Some("banned"))
    );
    assert_eq!(
        counters(&w, "banned").await,
        Some((Some(5), Some(0))),
        "a banned owner's key is not counted"
    );
    w.exec(r#"DELETE FROM "user" WHERE id = 'bob'"#).await;
    assert_eq!(
        ask("key-of-banned-00000000000", "").await.outcome(),
        (401, Some("invalid_api_key"))
    );

    // Hostile headers: refused before any read, never a 5xx.
    let long = "k".repeat(10 * 1024);
    assert_eq!(ask(&long, "").await.outcome(), (401, Some("invalid_api_key")));
    for bad in ["a key with spaces", "   "] {
        let answer = ask(bad, "").await;
        let outcome = answer.outcome();
        assert!(
            outcome == (401, Some("invalid_api_key")) || outcome == (401, Some("missing_token")),
            "{bad:?}: {outcome:?}"
        );
    }
    let request = axum::http::Request::get("/auth/verify")
        .header(
            "x-api-key",
            axum::http::HeaderValue::from_bytes("clé-ünicode".as_bytes()).unwrap(),
        )
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(w.send(request).await.outcome(), (401, Some("invalid_api_key")));
    let request = axum::http::Request::get("/auth/verify")
        .header("x-api-key", "key-at-its-edge-000000000")
        .header("x-api-key", "key-with-perms-0000000000")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(w.send(request).await.outcome(), (401, Some("invalid_api_key")));
    assert_eq!(
        ask("key-with-perms-0000000000", "?permission=files")
            .await
            .outcome(),
        (422, Some("validation_failed"))
    );
}

#[sqlx::test]
async fn quotas_refill_and_are_never_overdrawn_under_concurrency(db: PgPool) {
    let w = World::new(db).await;
    insert_key(
        &w,
        "q",
        "key-with-quota-0000000000",
        "alice",
        "remaining = 50, rate_limit_enabled = false",
    )
    .await;
    let mut all = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let app = w.app.clone();
        all.spawn(async move {
            let request = axum::http::Request::get("/auth/verify")
                .header("x-api-key", "key-with-quota-0000000000")
                .body(axum::body::Body::empty())
                .unwrap();
            common::send(&app, request).await.status.as_u16()
        });
    }
    let statuses = all.join_all().await;
    // Exactly 50 granted. The rest hear 429 `usage_exceeded`, or 401 once the request that
    // found the quota spent has deleted the key, as the plugin deletes it.
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429 || **s == 401).count();
    assert_eq!((ok, refused), (50, 150), "{statuses:?}");
    assert!(
        counters(&w, "q")
            .await
            .is_none_or(|(remaining, _)| remaining == Some(0)),
        "used up: 0 left, or deleted by a later request"
    );

    // A refill that is due: remaining set to refillAmount - 1, last_refill_at moved.
    insert_key(
        &w,
        "r",
        "key-refill-due-0000000000",
        "alice",
        "remaining = 0, refill_amount = 5, refill_interval = 1000, last_refill_at = now() - interval '2 seconds', rate_limit_enabled = false",
    )
    .await;
    let answer = w
        .anonymous()
        .header("x-api-key", "key-refill-due-0000000000")
        .get("/auth/verify")
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(counters(&w, "r").await, Some((Some(4), Some(0))));
    // Not due again for a second: the quota counts down, then runs out without deletion.
    w.exec("UPDATE apikey SET remaining = 0 WHERE id = 'r'").await;
    let answer = w
        .anonymous()
        .header("x-api-key", "key-refill-due-0000000000")
        .get("/auth/verify")
        .await;
    assert_eq!(answer.outcome(), (429, Some("usage_exceeded")));
    assert_eq!(
        counters(&w, "r").await,
        Some((Some(0), Some(0))),
        "a key with a refill is kept"
    );
}

#[sqlx::test]
async fn organization_keys_name_their_organization_and_other_configurations_are_refused(db: PgPool) {
    let w = World::with(
        db,
        Setup::default().policy(|p| {
            p.api_keys.organization_configs = vec!["org".into()];
            p.api_keys.config_id = Some("org".into());
        }),
    )
    .await;
    w.exec("INSERT INTO organization (id, name, slug, created_at) VALUES ('acme', 'Acme', 'acme', now())")
        .await;
    insert_key(&w, "ok", "key-of-acme-0000000000000", "acme", "config_id = 'org'").await;
    insert_key(&w, "user", "key-of-alice-000000000000", "alice", "").await;
    let answer = w
        .anonymous()
        .header("x-api-key", "key-of-acme-0000000000000")
        .get("/auth/verify")
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.headers["x-auth-org-id"], "acme");
    assert!(answer.headers.get("x-auth-user-id").is_none());
    assert_eq!(
        w.anonymous()
            .header("x-api-key", "key-of-acme-0000000000000")
            .get("/auth/verify?role=admin")
            .await
            .outcome(),
        (403, Some("forbidden")),
        "an organization holds no user role"
    );
    assert_eq!(
        w.anonymous()
            .header("x-api-key", "key-of-alice-000000000000")
            .get("/auth/verify")
            .await
            .outcome(),
        (401, Some("invalid_api_key")),
        "a key of another configuration"
    );
    w.exec("DELETE FROM organization WHERE id = 'acme'").await;
    assert_eq!(
        w.anonymous()
            .header("x-api-key", "key-of-acme-0000000000000")
            .get("/auth/verify")
            .await
            .outcome(),
        (401, Some("invalid_api_key"))
    );
}

#[sqlx::test]
async fn a_users_key_stands_in_for_them_only_when_the_app_opts_in(db: PgPool) {
    let w = World::new(db).await;
    insert_key(
        &w,
        "k",
        "key-of-alice-000000000000",
        "alice",
        "rate_limit_enabled = false",
    )
    .await;
    let me = w
        .anonymous()
        .header("x-api-key", "key-of-alice-000000000000")
        .get("/users/me")
        .await;
    assert_eq!(me.outcome(), (401, Some("api_key_not_accepted")));
    assert_eq!(
        counters(&w, "k").await,
        Some((None, Some(0))),
        "refused before any read or write"
    );

    let opted = w
        .variant(Setup::default().policy(|p| p.api_keys.as_users = true))
        .await;
    let me = opted
        .anonymous()
        .header("x-api-key", "key-of-alice-000000000000")
        .get("/users/me")
        .await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["id"], "alice");
    // The owner's role decides, as for a session: alice is no admin.
    let admin = opted
        .anonymous()
        .header("x-api-key", "key-of-alice-000000000000")
        .get("/admin/users")
        .await;
    assert_eq!(admin.outcome(), (403, Some("forbidden")));
    // A ban stops the key on the next request.
    opted
        .exec(r#"UPDATE "user" SET banned = true WHERE id = 'alice'"#)
        .await;
    let me = opted
        .anonymous()
        .header("x-api-key", "key-of-alice-000000000000")
        .get("/users/me")
        .await;
    assert_eq!(me.outcome(), (403, Some("banned")));
}

#[sqlx::test]
async fn the_library_extractors_hand_over_the_key(db: PgPool) {
    struct ReadFiles;
    impl warden::Permission for ReadFiles {
        const STATEMENTS: &'static [(&'static str, &'static [&'static str])] = &[("files", &["read"])];
    }
    let w = World::new(db).await;
    insert_key(
        &w,
        "lib",
        "key-for-the-library-00000",
        "alice",
        r#"permissions = '{"files":["read"]}', metadata = '{"plan":"pro"}', remaining = 7, rate_limit_enabled = false"#,
    )
    .await;
    let auth = w.state.auth.clone();
    let app = axum::Router::new()
        .route(
            "/key",
            get(|key: ApiKey| async move {
                let owner = match &key.owner {
                    ApiKeyOwner::User(id) => format!("user:{id}"),
                    ApiKeyOwner::Organization(id) => format!("org:{id}"),
                };
                axum::Json(json!({"id": key.id, "owner": owner, "remaining": key.remaining, "metadata": key.metadata, "name": key.name}))
            }),
        )
        .route(
            "/files",
            get(|key: RequireApiKeyPermission<ReadFiles>| async move { axum::Json(key.key.id) }),
        )
        .route(
            // Two extractors of one key: it is verified, and counted, once.
            "/both",
            get(|key: ApiKey, with: RequireApiKeyPermission<ReadFiles>| async move {
                axum::Json(json!([key.remaining, with.key.remaining]))
            }),
        )
        .with_state(auth);
    let call = |path: &str, key: Option<&str>| {
        let mut request = axum::http::Request::get(path);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        common::send(&app, request.body(axum::body::Body::empty()).unwrap())
    };
    let answer = call("/key", Some("key-for-the-library-00000")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        answer.body,
        json!({"id": "lib", "owner": "user:alice", "remaining": 6, "metadata": {"plan": "pro"}, "name": "k-lib"})
    );
    assert_eq!(
        call("/files", Some("key-for-the-library-00000")).await.status,
        200
    );
    assert_eq!(call("/key", None).await.outcome(), (401, Some("missing_api_key")));
    assert_eq!(counters(&w, "lib").await, Some((Some(5), Some(0))));
    let both = call("/both", Some("key-for-the-library-00000")).await;
    assert_eq!(both.body, json!([4, 4]), "one use for both extractors");
    assert_eq!(counters(&w, "lib").await, Some((Some(4), Some(0))));
}

#[sqlx::test]
async fn junk_keys_spend_attempts_but_a_known_key_is_served_from_a_throttled_address(db: PgPool) {
    let w = World::with(db, Setup::default().auth(|a| a.failures_per_minute(2))).await;
    insert_key(
        &w,
        "used",
        "key-used-before-junk-0000",
        "alice",
        "remaining = 100",
    )
    .await;
    insert_key(
        &w,
        "fresh",
        "key-never-used-yet-000000",
        "alice",
        "remaining = 100",
    )
    .await;
    let server = w.serve().await;
    let http = reqwest::Client::new();
    let ask = |key: &'static str| {
        let request = http.get(server.url("/auth/verify")).header("x-api-key", key);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let retry = response.headers().get("retry-after").is_some();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, body["code"].as_str().map(str::to_owned), retry)
        }
    };
    assert_eq!(ask("key-used-before-junk-0000").await.0, 200);
    for junk in ["junk-key-000000000000000001", "junk-key-000000000000000002"] {
        assert_eq!(ask(junk).await.1.as_deref(), Some("invalid_api_key"));
    }
    // Out of attempts: an unknown key's read is dear work, refused with 429 before any read.
    let throttled = ask("junk-key-000000000000000003").await;
    assert_eq!(
        (throttled.0, throttled.1.as_deref(), throttled.2),
        (429, Some("too_many_requests"), true)
    );
    assert_eq!(
        ask("key-never-used-yet-000000").await.0,
        429,
        "a first use pays like junk"
    );
    // A key found before is no junk: it is served, and counted.
    for _ in 0..5 {
        assert_eq!(ask("key-used-before-junk-0000").await.0, 200);
    }
    assert_eq!(counters(&w, "used").await, Some((Some(94), Some(6))));
    assert_eq!(counters(&w, "fresh").await, Some((Some(100), Some(0))));
}

#[sqlx::test]
async fn a_key_that_counts_nothing_has_its_uses_written_once_a_second_together(db: PgPool) {
    let w = World::new(db).await;
    insert_key(
        &w,
        "a",
        "key-unlimited-number-0001",
        "alice",
        "rate_limit_enabled = false",
    )
    .await;
    insert_key(
        &w,
        "b",
        "key-unlimited-number-0002",
        "bob",
        "rate_limit_max = NULL",
    )
    .await;
    let stamps = "SELECT count(*) FROM apikey WHERE updated_at > now() - interval '1 minute'";
    let use_both = || async {
        for key in ["key-unlimited-number-0001", "key-unlimited-number-0002"] {
            let answer = w.anonymous().header("x-api-key", key).get("/auth/verify").await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
        }
    };
    use_both().await;
    assert_eq!(
        w.scalar_i64(stamps).await,
        2,
        "a first use is written before the answer"
    );
    let first: Option<String> = w
        .scalar_text("SELECT updated_at::text FROM apikey WHERE id = 'a'")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    use_both().await; // due again: queued
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await; // the writer's tick
    let later: Option<String> = w
        .scalar_text("SELECT updated_at::text FROM apikey WHERE id = 'a'")
        .await;
    assert_ne!(first, later, "the queued stamp was written");
    // last_request where the plugin writes it (rate limiting off on the key), not otherwise.
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM apikey WHERE last_request IS NOT NULL")
            .await,
        1
    );
}

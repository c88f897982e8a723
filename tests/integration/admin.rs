//! `/admin/*`: role guards on every route, the writes and what they leave in the database,
//! self- and last-admin protection, listing (search, filters, sort, pages), the audit trail.

use axum::routing::get;
use serde_json::{Value, json};
use sqlx::PgPool;
use warden::testing::auth::extract::{RequireRole, RoleName};

use crate::common::{self, insert_user};
use crate::world::{Setup, World};

/// Every admin route with a request that succeeds for an admin.
fn admin_routes() -> Vec<(&'static str, &'static str, Option<Value>, u16)> {
    vec![
        ("GET", "/admin/users", None, 200),
        ("GET", "/admin/users/bob", None, 200),
        (
            "PUT",
            "/admin/users/bob/role",
            Some(json!({"roles": ["user", "editor"]})),
            200,
        ),
        (
            "POST",
            "/admin/users/bob/ban",
            Some(json!({"reason": "spam"})),
            200,
        ),
        ("POST", "/admin/users/bob/unban", None, 200),
        ("GET", "/admin/users/alice/sessions", None, 200),
        ("DELETE", "/admin/sessions/s-alice-2", None, 204),
        ("DELETE", "/admin/users/alice/sessions", None, 200),
        ("GET", "/admin/audit", None, 200),
        ("DELETE", "/admin/users/bob", None, 204),
    ]
}

#[sqlx::test]
async fn every_admin_route_is_guarded(db: PgPool) {
    let w = World::new(db).await;
    let before = w.snapshot().await;
    for (method, path, body, _) in admin_routes() {
        let answer = w.anonymous().call(method, path, body.clone()).await;
        assert_eq!(answer.outcome(), (401, Some("missing_token")), "{method} {path}");
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
        let answer = w.as_alice().call(method, path, body.clone()).await;
        assert_eq!(answer.outcome(), (403, Some("forbidden")), "{method} {path}");
    }
    assert_eq!(w.snapshot().await, before, "refused requests changed nothing");
    for (method, path, body, status) in admin_routes() {
        let answer = w.as_admin().call(method, path, body).await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{method} {path}: {:?}",
            answer.body
        );
    }
    // Guards do not hide unknown routes.
    assert_eq!(w.anonymous().get("/admin/nothing-here").await.status, 404);
    assert_eq!(w.as_alice().get("/admin/users/bob/nothing").await.status, 404);
}

#[sqlx::test]
async fn roles_are_read_fresh_not_from_the_jwt(db: PgPool) {
    let w = World::new(db).await;
    // Alice's JWT was minted while she was a plain user; promote her in the database.
    w.exec(r#"UPDATE "user" SET role = 'user,admin' WHERE id = 'alice'"#)
        .await;
    assert_eq!(w.as_alice().get("/admin/users").await.status, 200);
    // Demote the admin: the JWT still says "admin", the database does not.
    w.exec(r#"UPDATE "user" SET role = 'user' WHERE id = 'admin'"#)
        .await;
    assert_eq!(w.as_admin().get("/admin/users").await.status, 403);
}

#[sqlx::test]
async fn admin_user_ids_make_admins_whatever_their_roles(db: PgPool) {
    let w = World::with(
        db,
        Setup::default().policy(|p| p.admin_user_ids = vec!["bob".into()]),
    )
    .await;
    assert_eq!(w.as_bob().get("/admin/users").await.status, 200);
    assert_eq!(w.as_alice().get("/admin/users").await.status, 403);
}

#[sqlx::test]
async fn set_role_validates_and_audits(db: PgPool) {
    let w = World::new(db).await;
    let answer = w
        .as_admin()
        .put(
            "/admin/users/bob/role",
            json!({"roles": ["editor", "user", "editor"]}),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["role"], "editor,user");
    assert_eq!(answer.body["roles"], json!(["editor", "user"]));
    assert_eq!(
        w.scalar_text(r#"SELECT role FROM "user" WHERE id = 'bob'"#)
            .await
            .unwrap(),
        "editor,user"
    );
    let answer = w
        .as_admin()
        .put("/admin/users/bob/role", json!({"role": "admin"}))
        .await;
    assert_eq!(answer.body["role"], "admin");

    let before = w.snapshot().await;
    for body in [
        json!({"role": "superuser"}),
        json!({"roles": ["user", "root"]}),
        json!({"roles": []}),
        json!({"role": "user", "roles": ["user"]}),
        json!({}),
        json!({"role": 1}),
        json!({"role": "user", "banned": true}),
    ] {
        let answer = w.as_admin().put("/admin/users/bob/role", body.clone()).await;
        assert_eq!(answer.outcome(), (422, Some("validation_failed")), "{body}");
    }
    let answer = w
        .as_admin()
        .put("/admin/users/ghost/role", json!({"role": "user"}))
        .await;
    assert_eq!(answer.status, 404);
    assert_eq!(w.snapshot().await, before);

    let row: (String, String, Value) = sqlx::query_as(
        "SELECT actor_id, action, details FROM warden_audit_log WHERE target_user_id = 'bob' ORDER BY id LIMIT 1",
    )
    .fetch_one(&w.db)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "admin".into(),
            "user.set_role".into(),
            json!({"from": "user", "to": "editor,user"})
        )
    );
}

#[sqlx::test]
async fn the_last_admin_cannot_be_demoted_or_removed(db: PgPool) {
    let w = World::new(db).await;
    let before = w.snapshot().await;
    let answer = w
        .as_admin()
        .put("/admin/users/admin/role", json!({"role": "user"}))
        .await;
    assert_eq!(answer.outcome(), (409, Some("last_admin")));
    assert_eq!(w.snapshot().await, before, "a refused demotion changes nothing");
    // Keeping an admin role is fine.
    let answer = w
        .as_admin()
        .put("/admin/users/admin/role", json!({"roles": ["admin", "editor"]}))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        w.scalar_text(r#"SELECT role FROM "user" WHERE id = 'admin'"#)
            .await
            .unwrap(),
        "admin,editor"
    );
    let answer = w.as_admin().delete("/admin/users/admin").await;
    assert_eq!(answer.outcome(), (422, Some("self_action")));

    // With a second admin, stepping down works.
    w.exec(r#"UPDATE "user" SET role = 'admin' WHERE id = 'alice'"#)
        .await;
    let answer = w
        .as_admin()
        .put("/admin/users/admin/role", json!({"role": "user"}))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(w.as_admin().get("/admin/users").await.status, 403);
    // And now alice is the last one.
    let answer = w
        .as_alice()
        .put("/admin/users/alice/role", json!({"role": "user"}))
        .await;
    assert_eq!(answer.status, 409);
}

#[sqlx::test]
async fn ban_and_unban_like_better_auth(db: PgPool) {
    let w = World::new(db).await;
    // Ban with defaults (no body): "No reason", forever, every session gone.
    let answer = w.as_admin().post("/admin/users/alice/ban", None).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        (answer.body["banned"].clone(), answer.body["banReason"].clone()),
        (json!(true), json!("No reason"))
    );
    assert_eq!(answer.body["banExpires"], Value::Null);
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM session WHERE user_id = 'alice'")
            .await,
        0
    );
    let answer = w.as_alice().get("/users/me").await;
    assert!(
        answer.status == 401 || answer.status == 403,
        "{answer:?}",
        answer = answer.body
    );

    // Unban clears all three columns.
    let answer = w.as_admin().post("/admin/users/alice/unban", None).await;
    assert_eq!(answer.status, 200);
    let row: (Option<bool>, Option<String>, Option<String>) =
        sqlx::query_as(r#"SELECT banned, ban_reason, ban_expires::text FROM "user" WHERE id = 'alice'"#)
            .fetch_one(&w.db)
            .await
            .unwrap();
    assert_eq!(row, (Some(false), None, None));

    // A timed ban with a reason.
    let answer = w
        .as_admin()
        .post(
            "/admin/users/bob/ban",
            Some(json!({"reason": "spam", "expiresIn": 3600})),
        )
        .await;
    assert_eq!(answer.status, 200);
    let secs = w
        .scalar_i64(r#"SELECT extract(epoch FROM ban_expires - now())::bigint FROM "user" WHERE id = 'bob'"#)
        .await;
    assert!((3590..=3600).contains(&secs), "{secs}");
    let answer = w
        .bearer(&w.key.sign(&common::claims("bob")))
        .get("/users/me")
        .await;
    assert_eq!(answer.outcome(), (403, Some("banned")));

    let actions: Vec<(String, Value)> =
        sqlx::query_as("SELECT action, details FROM warden_audit_log WHERE actor_id = 'admin' ORDER BY id")
            .fetch_all(&w.db)
            .await
            .unwrap();
    assert_eq!(actions[0].0, "user.ban");
    assert_eq!(actions[0].1["reason"], "No reason");
    assert_eq!(actions[0].1["sessionsRevoked"], 2);
    assert_eq!(actions[1].0, "user.unban");
    assert_eq!(actions[2].1["reason"], "spam");
    assert!(actions[2].1["expiresAt"].is_string());
}

#[sqlx::test]
async fn bad_bans_change_nothing(db: PgPool) {
    let w = World::new(db).await;
    let before = w.snapshot().await;
    let answer = w
        .as_admin()
        .post("/admin/users/admin/ban", Some(json!({"reason": "oops"})))
        .await;
    assert_eq!(answer.outcome(), (422, Some("self_action")));
    for body in [
        json!({"expiresIn": 0}),
        json!({"expiresIn": -5}),
        json!({"expiresIn": "soon"}),
        json!({"expiresIn": 1e12}),
        json!({"reason": ""}),
        json!({"reason": "x".repeat(501)}),
        json!({"reason": "spam", "until": "tomorrow"}),
    ] {
        let answer = w
            .as_admin()
            .post("/admin/users/bob/ban", Some(body.clone()))
            .await;
        assert_eq!(answer.outcome(), (422, Some("validation_failed")), "{body}");
    }
    let request = axum::http::Request::post("/admin/users/bob/ban")
        .header("authorization", format!("Bearer {}", w.admin))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    assert_eq!(common::send(&w.app, request).await.status, 400);
    assert_eq!(
        w.as_admin().post("/admin/users/ghost/ban", None).await.status,
        404
    );
    assert_eq!(
        w.as_admin().post("/admin/users/ghost/unban", None).await.status,
        404
    );
    assert_eq!(w.snapshot().await, before);
}

#[sqlx::test]
async fn admin_session_management(db: PgPool) {
    let w = World::new(db).await;
    let answer = w.as_admin().get("/admin/users/alice/sessions").await;
    let ids: Vec<&str> = answer
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(
        answer
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["current"] == false && s.get("token").is_none())
    );
    assert_eq!(w.as_admin().get("/admin/users/ghost/sessions").await.status, 404);

    assert_eq!(w.as_admin().delete("/admin/sessions/s-bob").await.status, 204);
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM session WHERE id = 's-bob'")
            .await,
        0
    );
    assert_eq!(w.as_bob().get("/users/me").await.body["code"], "session_revoked");
    assert_eq!(w.as_admin().delete("/admin/sessions/s-bob").await.status, 404);

    let answer = w.as_admin().delete("/admin/users/alice/sessions").await;
    assert_eq!(answer.body, json!({"revoked": 2}));
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM session WHERE user_id = 'alice'")
            .await,
        0
    );

    // An admin revoking their own sessions keeps the one in use.
    common::insert_session(&w.db, "s-admin-2", "admin", "tok-admin-2", 3600).await;
    let answer = w.as_admin().delete("/admin/users/admin/sessions").await;
    assert_eq!(answer.body, json!({"revoked": 1}));
    assert_eq!(w.as_admin().get("/admin/audit").await.status, 200);

    let actions: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT action, target_user_id, target_session_id FROM warden_audit_log ORDER BY id")
            .fetch_all(&w.db)
            .await
            .unwrap();
    assert_eq!(
        actions,
        vec![
            ("session.revoke".into(), Some("bob".into()), Some("s-bob".into())),
            ("user.revoke_sessions".into(), Some("alice".into()), None),
            ("user.revoke_sessions".into(), Some("admin".into()), None),
        ]
    );
}

#[sqlx::test]
async fn remove_user_cascades_and_is_audited(db: PgPool) {
    let w = World::new(db).await;
    sqlx::query(
        "INSERT INTO account (id, account_id, provider_id, user_id, created_at, updated_at)
         VALUES ('acc-bob', 'bob', 'credential', 'bob', now(), now())",
    )
    .execute(&w.db)
    .await
    .unwrap();
    assert_eq!(w.as_admin().delete("/admin/users/bob").await.status, 204);
    assert_eq!(
        w.scalar_i64(r#"SELECT count(*) FROM "user" WHERE id = 'bob'"#)
            .await,
        0
    );
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM session WHERE user_id = 'bob'")
            .await,
        0
    );
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM account WHERE user_id = 'bob'")
            .await,
        0
    );
    assert_eq!(w.as_admin().delete("/admin/users/bob").await.status, 404);
    let answer = w.as_admin().get("/admin/audit?target=bob").await;
    assert_eq!(answer.body["total"], 1);
    assert_eq!(answer.body["entries"][0]["action"], "user.remove");
    assert_eq!(answer.body["entries"][0]["details"]["email"], "bob@example.com");
    assert_eq!(answer.body["entries"][0]["actorId"], "admin");
    // The removed user's JWT no longer works.
    assert_eq!(w.as_bob().get("/users/me").await.status, 401);
}

async fn emails(w: &World, query: &str) -> (Vec<String>, Value) {
    let answer = w.as_admin().get(&format!("/admin/users{query}")).await;
    assert_eq!(answer.status, 200, "{query}: {:?}", answer.body);
    let list = answer.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    (list, answer.body)
}

#[sqlx::test]
async fn list_users_search_filter_sort_and_pages(db: PgPool) {
    let w = World::new(db).await;
    insert_user(&w.db, "u-pct", "100%_real@example.com").await;
    insert_user(&w.db, "u-x", "1000Xreal@example.com").await;
    insert_user(&w.db, "u-caps", "Carol.Caps@Example.org").await;
    w.exec(
        r#"UPDATE "user" SET name = 'Carol Caps', role = 'user,editor', banned = true WHERE id = 'u-caps'"#,
    )
    .await;

    let (all, body) = emails(&w, "").await;
    assert_eq!(
        (
            body["total"].clone(),
            body["limit"].clone(),
            body["offset"].clone()
        ),
        (json!(6), json!(50), json!(0))
    );
    assert_eq!(all.len(), 6);

    // `%` and `_` are literal characters, not wildcards.
    assert_eq!(
        emails(&w, "?search=0%25_r").await.0,
        vec!["100%_real@example.com"]
    );
    assert_eq!(emails(&w, "?search=_").await.0, vec!["100%_real@example.com"]);
    assert_eq!(emails(&w, "?search=%25").await.0, vec!["100%_real@example.com"]);
    // Operators, case-insensitively.
    assert_eq!(
        emails(&w, "?search=carol&searchOperator=starts_with").await.0,
        vec!["Carol.Caps@Example.org"]
    );
    assert_eq!(
        emails(&w, "?search=.ORG&searchOperator=ends_with").await.0,
        vec!["Carol.Caps@Example.org"]
    );
    assert!(
        emails(&w, "?search=example.com&searchOperator=starts_with")
            .await
            .0
            .is_empty()
    );
    assert_eq!(
        emails(&w, "?search=caps&searchField=name").await.0,
        vec!["Carol.Caps@Example.org"]
    );
    // Filters.
    assert_eq!(emails(&w, "?role=editor").await.0, vec!["Carol.Caps@Example.org"]);
    assert_eq!(emails(&w, "?role=admin").await.0, vec!["admin@example.com"]);
    assert_eq!(emails(&w, "?banned=true").await.0, vec!["Carol.Caps@Example.org"]);
    assert_eq!(emails(&w, "?banned=false").await.1["total"], 5);
    // Sorting and pages that neither overlap nor skip.
    let (sorted, _) = emails(&w, "?sortBy=email").await;
    let mut expected = sorted.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    let (desc, _) = emails(&w, "?sortBy=email&sortDirection=desc").await;
    assert_eq!(desc, expected.iter().rev().cloned().collect::<Vec<_>>());
    let mut paged = Vec::new();
    for offset in [0, 2, 4] {
        let (page, body) = emails(&w, &format!("?sortBy=email&limit=2&offset={offset}")).await;
        assert_eq!(body["total"], 6);
        paged.extend(page);
    }
    assert_eq!(paged, expected);
    let (past_end, body) = emails(&w, "?offset=100").await;
    assert!(past_end.is_empty());
    assert_eq!(
        (body["total"].clone(), body["offset"].clone()),
        (json!(6), json!(100))
    );
    assert_eq!(emails(&w, "?limit=200").await.0.len(), 6);
    assert_eq!(emails(&w, "?limit=1").await.0.len(), 1);

    for bad in [
        "?limit=0",
        "?limit=201",
        "?limit=ten",
        "?offset=-1",
        "?sortBy=password",
        "?sortDirection=sideways",
        "?searchOperator=regex&search=a",
        "?searchField=role&search=a",
        "?banned=maybe",
        "?colour=blue",
        "?cursor=not-a-cursor",
        "?cursor=e30",
        "?countLimit=0",
        "?countLimit=1000001",
    ] {
        let answer = w.as_admin().get(&format!("/admin/users{bad}")).await;
        assert_eq!(answer.outcome(), (422, Some("validation_failed")), "{bad}");
    }
    let long = "a".repeat(257);
    assert_eq!(
        w.as_admin()
            .get(&format!("/admin/users?search={long}"))
            .await
            .status,
        422
    );
}

#[sqlx::test]
async fn audit_lists_newest_first_with_filters(db: PgPool) {
    let w = World::new(db).await;
    w.exec(r#"UPDATE "user" SET role = 'admin' WHERE id = 'alice'"#)
        .await;
    w.as_admin().post("/admin/users/bob/ban", None).await;
    w.as_alice().post("/admin/users/bob/unban", None).await;
    w.as_alice()
        .put("/admin/users/bob/role", json!({"role": "editor"}))
        .await;

    let answer = w.as_admin().get("/admin/audit").await;
    assert_eq!(answer.body["total"], 3);
    assert_eq!(
        actions_of(&answer.body),
        ["user.set_role", "user.unban", "user.ban"]
    );
    assert!(answer.body["entries"][0]["at"].is_string());
    let answer = w.as_admin().get("/admin/audit?actor=alice&limit=1").await;
    assert_eq!(
        (
            answer.body["total"].clone(),
            answer.body["entries"].as_array().unwrap().len()
        ),
        (json!(2), 1)
    );
    let answer = w
        .as_admin()
        .get("/admin/audit?actor=alice&limit=1&offset=1")
        .await;
    assert_eq!(answer.body["entries"][0]["action"], "user.unban");
    let answer = w.as_admin().get("/admin/audit?target=alice").await;
    assert_eq!(answer.body["total"], 0);
    assert_eq!(w.as_admin().get("/admin/audit?limit=500").await.status, 422);
}

/// The audit columns of the newest row with `action`: actor, session, impersonator, client
/// address, request id.
async fn audit_context(
    w: &World,
    action: &str,
) -> (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    sqlx::query_as(
        "SELECT actor_id, session_id, impersonated_by, client_ip, request_id FROM warden_audit_log
         WHERE action = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(action)
    .fetch_one(&w.db)
    .await
    .unwrap()
}

/// An admin impersonated (Better-Auth's admin plugin marks the session) acts through the
/// impersonated user's session: the trail names the session's user as the actor and, beside
/// it, who really acted, through which session, from which address, in which request.
#[sqlx::test]
async fn admin_writes_record_session_impersonator_address_and_request_id(db: PgPool) {
    let w = World::new(db).await;
    w.exec("UPDATE session SET impersonated_by = 'someone' WHERE id = 's-admin'")
        .await;
    let client = reqwest::Client::new();

    // No proxy trusted: the socket's address, whatever X-Forwarded-For claims; a generated id.
    let server = w.serve().await;
    let response = client
        .post(server.url("/admin/users/bob/ban"))
        .bearer_auth(&w.admin)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        audit_context(&w, "user.ban").await,
        (
            "admin".to_owned(),
            some("s-admin"),
            some("someone"),
            some("127.0.0.1"),
            Some(generated)
        )
    );

    // Behind a trusted proxy: the address it reports, and the request id the caller sent.
    let trusted = Setup::default()
        .auth(|a| a.trusted_proxies(vec!["127.0.0.1/32".parse().unwrap()]))
        .state(|s| {
            s.http = std::sync::Arc::new(warden::server::http::HttpSettings {
                trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
                ..warden::server::http::HttpSettings::default()
            })
        });
    let behind = w.variant(trusted).await.serve().await;
    let response = client
        .post(behind.url("/admin/users/bob/unban"))
        .bearer_auth(&w.admin)
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-request-id", "audit-unban-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "audit-unban-1");
    assert_eq!(
        audit_context(&w, "user.unban").await,
        (
            "admin".to_owned(),
            some("s-admin"),
            some("someone"),
            some("203.0.113.9"),
            some("audit-unban-1")
        )
    );

    // Every admin write records its session (here through the app, without a socket address).
    w.exec("UPDATE session SET impersonated_by = NULL WHERE id = 's-admin'")
        .await;
    w.as_admin()
        .put("/admin/users/bob/role", json!({"role": "editor"}))
        .await;
    w.as_admin().delete("/admin/sessions/s-alice-2").await;
    w.as_admin().delete("/admin/users/alice/sessions").await;
    w.as_admin().delete("/admin/users/bob").await;
    let sessions: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT action, session_id, impersonated_by FROM warden_audit_log WHERE id > 2 ORDER BY id",
    )
    .fetch_all(&w.db)
    .await
    .unwrap();
    let expected: Vec<(String, Option<String>, Option<String>)> = [
        "user.set_role",
        "session.revoke",
        "user.revoke_sessions",
        "user.remove",
    ]
    .iter()
    .map(|a| ((*a).to_owned(), some("s-admin"), None))
    .collect();
    assert_eq!(sessions, expected);

    // The audit log shows all four.
    let answer = w.as_admin().get("/admin/audit?target=bob&limit=3").await;
    let unban = &answer.body["entries"][2];
    assert_eq!(unban["action"], "user.unban", "{}", answer.body);
    assert_eq!(
        (
            &unban["sessionId"],
            &unban["impersonatedBy"],
            &unban["clientIp"],
            &unban["requestId"]
        ),
        (
            &json!("s-admin"),
            &json!("someone"),
            &json!("203.0.113.9"),
            &json!("audit-unban-1")
        )
    );
    // The impersonating admin finds the writes made in their name: ?actor= names either.
    let answer = w.as_admin().get("/admin/audit?actor=someone").await;
    assert_eq!(
        actions_of(&answer.body),
        ["user.unban", "user.ban"],
        "{}",
        answer.body
    );
    assert_eq!(answer.body["total"], 2);
}

struct Editor;
impl RoleName for Editor {
    const ROLE: &'static str = "editor";
}

#[sqlx::test]
async fn require_role_guards_any_role(db: PgPool) {
    let w = World::new(db.clone()).await;
    // An app of its own around warden's state: the extractor needs only `Auth: FromRef<S>`.
    let app = axum::Router::new()
        .route(
            "/edit",
            get(|guard: RequireRole<Editor>| async move { guard.caller.user.id.clone() }),
        )
        .with_state(w.state.clone());
    let request = |token: &str| {
        axum::http::Request::get("/edit")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(common::send_raw(&app, request(&w.bob)).await.0, 403);
    // Better-Auth splits the roles on commas and trims nothing: " editor" is not "editor".
    w.exec(r#"UPDATE "user" SET role = 'user, editor' WHERE id = 'bob'"#)
        .await;
    assert_eq!(common::send_raw(&app, request(&w.bob)).await.0, 403);
    w.exec(r#"UPDATE "user" SET role = 'user,editor' WHERE id = 'bob'"#)
        .await;
    let response = tower::ServiceExt::oneshot(
        app,
        axum::http::Request::get("/edit")
            .header("authorization", format!("Bearer {}", w.bob))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
}

/// The actions of an audit page, newest first.
fn actions_of(page: &serde_json::Value) -> Vec<&str> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

#[sqlx::test]
async fn the_user_list_pages_by_cursor(db: PgPool) {
    let w = World::new(db).await;
    let all = w.as_admin().get("/admin/users?sortBy=email&limit=200").await.body;
    let total = all["total"].as_i64().unwrap();
    assert!(total >= 3, "{all}");
    assert!(all["nextCursor"].is_null(), "one page holds them all");
    let expected: Vec<&str> = all["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();

    // One user a page, by cursor: the same users in the same order, the total on every page.
    let mut seen = Vec::new();
    let mut url = "/admin/users?sortBy=email&limit=1".to_owned();
    for _ in 0..=total {
        let page = w.as_admin().get(&url).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.body["total"], total);
        seen.extend(
            page.body["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_owned()),
        );
        match page.body["nextCursor"].as_str() {
            Some(cursor) => url = format!("/admin/users?sortBy=email&limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    // A count capped under the matches says so; without a search, totals are exact.
    let capped = w
        .as_admin()
        .get("/admin/users?search=example&countLimit=1&limit=1")
        .await
        .body;
    assert_eq!(
        (capped["total"].clone(), capped["totalExact"].clone()),
        (json!(1), json!(false)),
        "{capped}"
    );
    assert!(capped["nextCursor"].is_string());
    assert_eq!(all["totalExact"], true);

    // A cursor belongs to its order, and places the page alone.
    let first = w.as_admin().get("/admin/users?sortBy=email&limit=1").await.body;
    let cursor = first["nextCursor"].as_str().unwrap();
    for bad in [
        format!("?sortBy=email&sortDirection=desc&cursor={cursor}"),
        format!("?sortBy=name&cursor={cursor}"),
        format!("?sortBy=email&offset=1&cursor={cursor}"),
    ] {
        let answer = w.as_admin().get(&format!("/admin/users{bad}")).await;
        assert_eq!(answer.outcome(), (422, Some("validation_failed")), "{bad}");
    }
}

//! End-to-end: the real Better-Auth server (`auth-server/`, Node) signs real tokens and the
//! real `warden` binary verifies them, through HTTP only, on 127.0.0.1.
//!
//! Needs `npm ci --prefix auth-server` (scripts/test does it) and PostgreSQL at
//! `DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/test); each test creates and
//! drops its own database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_keys;
mod console;
mod embed;
mod gateway;
mod hostile;
mod mcp;
mod oauth;
mod oauth_flows;
mod permissions;
mod redis_sessions;
mod stack;
#[path = "../support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use stack::{Options, Stack, jwt_header};

/// Sign up, sign in, take the JWT, call `/users/me`: same id and email as Better-Auth's
/// own `get-session`, signed with the configured algorithm.
async fn round_trip(alg: &'static str) {
    let stack = Stack::start(Options {
        alg,
        ..Options::default()
    })
    .await;
    let email = format!("{}@example.com", alg.to_lowercase());
    let session = stack.sign_up_and_in("E2E User", &email).await;
    let jwt = stack.jwt(&session).await;
    assert_eq!(jwt_header(&jwt)["alg"], alg);

    let (status, _, better_auth) = stack.auth_get("/get-session", &session).await;
    assert_eq!(status, 200);
    let (status, me) = stack.warden_get("/users/me", &jwt).await;
    assert_eq!(status, 200, "{alg}: {me}");
    assert_eq!(me["id"], better_auth["user"]["id"]);
    assert_eq!(me["email"], email);
    assert_eq!(me["email"], better_auth["user"]["email"]);
    assert_eq!(me["name"], "E2E User");

    // Once the key is known, warden is ready.
    let ready = stack
        .http
        .get(format!("{}/readyz", stack.warden_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["algorithms"], json!([alg]));
    stack.stop().await;
}

#[tokio::test]
async fn eddsa_token_from_better_auth_reaches_users_me() {
    round_trip("EdDSA").await;
}

#[tokio::test]
async fn rs256_token_from_better_auth_reaches_users_me() {
    round_trip("RS256").await;
}

#[tokio::test]
async fn ps256_token_from_better_auth_reaches_users_me() {
    round_trip("PS256").await;
}

#[tokio::test]
async fn es256_token_from_better_auth_reaches_users_me() {
    round_trip("ES256").await;
}

#[tokio::test]
async fn es512_token_from_better_auth_reaches_users_me() {
    round_trip("ES512").await;
}

#[tokio::test]
async fn a_rotated_key_is_accepted_without_restart() {
    let stack = Stack::start(Options {
        rotation_secs: Some(2),
        ..Options::default()
    })
    .await;
    let session = stack.sign_up_and_in("Rotating", "rotating@example.com").await;
    let first = stack.jwt(&session).await;
    assert_eq!(stack.warden_get("/users/me", &first).await.0, 200);

    // After the interval, Better-Auth signs with a brand-new key at once.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = stack.jwt(&session).await;
    let (kid1, kid2) = (
        jwt_header(&first)["kid"].clone(),
        jwt_header(&second)["kid"].clone(),
    );
    assert_ne!(kid1, kid2, "Better-Auth rotated its key");

    // warden (JWKS_COOLDOWN_SECS=1) accepts it within the cooldown, without a restart.
    let started = Instant::now();
    loop {
        let (status, body) = stack.warden_get("/users/me", &second).await;
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "new kid not accepted: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The old key is still in its grace period.
    assert_eq!(stack.warden_get("/users/me", &first).await.0, 200);
    stack.stop().await;
}

#[tokio::test]
async fn bans_roles_and_an_auth_server_outage() {
    let mut stack = Stack::start(Options::default()).await;
    let admin_session = stack.sign_up_and_in("Admin", "admin@example.com").await;
    let user_session = stack.sign_up_and_in("User", "user@example.com").await;
    let user_jwt = stack.jwt(&user_session).await;
    let (status, me) = stack.warden_get("/users/me", &user_jwt).await;
    assert_eq!(status, 200);
    let user_id = me["id"].as_str().unwrap().to_owned();

    // A role changed in the database is seen on the next request, not when the JWT expires.
    sqlx::query(r#"UPDATE "user" SET role = 'admin' WHERE email = 'admin@example.com'"#)
        .execute(&stack.pool)
        .await
        .unwrap();
    sqlx::query(r#"UPDATE "user" SET role = 'user,editor' WHERE id = $1"#)
        .bind(&user_id)
        .execute(&stack.pool)
        .await
        .unwrap();
    let (_, me) = stack
        .warden_get_once_seen("/users/me", &user_jwt, |_, me| {
            me["roles"] == json!(["user", "editor"])
        })
        .await;
    assert_eq!(me["roles"], json!(["user", "editor"]));

    // Banned through Better-Auth's own admin API: the still-unexpired JWT is refused at once.
    let (status, _, body) = stack
        .auth_post(
            "/admin/ban-user",
            Some(&admin_session),
            json!({"userId": user_id, "banReason": "spam"}),
        )
        .await;
    assert_eq!(status, 200, "ban-user: {body}");
    let (status, body) = stack
        .warden_get_once_seen("/users/me", &user_jwt, |s, _| s == 403)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "banned");
    assert!(body["detail"].as_str().unwrap().contains("spam"));
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM session WHERE user_id = $1")
        .bind(&user_id)
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0, "Better-Auth deleted the banned user's sessions");

    let (status, _, body) = stack
        .auth_post(
            "/admin/unban-user",
            Some(&admin_session),
            json!({"userId": user_id}),
        )
        .await;
    assert_eq!(status, 200, "unban-user: {body}");
    // The ban signed the user out everywhere (Better-Auth deleted the sessions), so the old JWT
    // stays dead (its `sid` names a deleted session); signing in again works at once.
    let (status, body) = stack
        .warden_get_once_seen("/users/me", &user_jwt, |s, _| s == 401)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("session_revoked")),
        "{body}"
    );
    let user_session = stack.sign_in("user@example.com").await;
    let user_jwt = stack.jwt(&user_session).await;
    assert_eq!(stack.warden_get("/users/me", &user_jwt).await.0, 200);

    // Better-Auth goes down: keys warden already has keep working.
    let admin_jwt = stack.jwt(&admin_session).await;
    stack.stop_auth_server().await;
    assert!(
        stack
            .http
            .get(format!("{}/healthz", stack.auth_url))
            .send()
            .await
            .is_err()
    );
    let (status, me) = stack.warden_get("/users/me", &admin_jwt).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["roles"], json!(["admin"]));
    assert_eq!(stack.warden_get("/users/me", &user_jwt).await.0, 200);
    stack.stop().await;
}

#[tokio::test]
async fn sign_out_and_revocation_take_effect_at_once() {
    let stack = Stack::start(Options::default()).await;
    let phone = stack.sign_up_and_in("Multi Device", "multi@example.com").await;
    let laptop = stack.sign_in("multi@example.com").await;
    let phone_jwt = stack.jwt(&phone).await;
    let laptop_jwt = stack.jwt(&laptop).await;
    assert_eq!(stack.warden_get("/users/me", &phone_jwt).await.0, 200);

    // warden lists both sessions and knows which one the JWT came with.
    let (status, sessions) = stack.warden_get("/users/me/sessions", &laptop_jwt).await;
    assert_eq!(status, 200);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 3, "sign-up, phone and laptop sign-ins");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);

    // Sign out through Better-Auth: that JWT is refused at once, though it has not expired.
    let (status, _, body) = stack.auth_post("/sign-out", Some(&phone), json!({})).await;
    assert_eq!(status, 200, "sign-out: {body}");
    let (status, body) = stack
        .warden_get_once_seen("/users/me", &phone_jwt, |s, _| s == 401)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("session_revoked")),
        "{body}"
    );
    assert_eq!(stack.warden_get("/users/me", &laptop_jwt).await.0, 200);

    // Better-Auth's signed session token works on warden too (the bearer plugin's form).
    let (status, me) = stack.warden_get("/users/me", &laptop).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "multi@example.com");
    let response = stack
        .http
        .delete(format!("{}/users/me/sessions", stack.warden_url))
        .bearer_auth(&laptop_jwt)
        .send()
        .await
        .unwrap();
    // "Sign out everywhere else" through warden: Better-Auth sees one session left, the current.
    assert_eq!(response.status(), 200);
    let (status, _, sessions) = stack.auth_get("/list-sessions", &laptop).await;
    assert_eq!(status, 200, "{sessions}");
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    assert_eq!(stack.warden_get("/users/me", &laptop_jwt).await.0, 200);
    stack.stop().await;
}

#[tokio::test]
async fn better_auth_through_wardens_port() {
    let stack = Stack::start(Options {
        auth_proxy: true,
        ..Options::default()
    })
    .await;
    let w = &stack.warden_url;
    let http = &stack.http;
    let body = json!({"name": "Proxied", "email": "proxied@example.com", "password": stack::PASSWORD});
    // Sign up through warden: Better-Auth's answer comes back whole.
    let response = http
        .post(format!("{w}/api/auth/sign-up/email"))
        .header("origin", &stack.auth_url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("set-auth-token").is_some());
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.to_str().unwrap().contains("session_token")),
        "{cookies:?}"
    );
    let user: serde_json::Value = response.json().await.unwrap();
    assert_eq!(user["user"]["email"], "proxied@example.com");

    // Sign in, take the JWT, call the API: one origin for everything.
    let response = http
        .post(format!("{w}/api/auth/sign-in/email"))
        .header("origin", &stack.auth_url)
        .json(&json!({"email": "proxied@example.com", "password": stack::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session = response.headers()["set-auth-token"].to_str().unwrap().to_owned();
    let response = http
        .get(format!("{w}/api/auth/token"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let jwt = response.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, me) = stack.warden_get("/users/me", &jwt).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "proxied@example.com");

    // Better-Auth's own refusals pass through unchanged.
    let response = http
        .post(format!("{w}/api/auth/sign-in/email"))
        .header("origin", "https://evil.test")
        .json(&json!({"email": "proxied@example.com", "password": stack::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = http.get(format!("{w}/api/auth/jwks")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    stack.stop().await;
}

/// `POST /api/auth/admin/ban-user` through warden's auth proxy: status and body.
async fn proxied_ban(stack: &Stack, session: &str, user: &str, request_id: &str) -> (u16, serde_json::Value) {
    let response = stack
        .http
        .post(format!("{}/api/auth/admin/ban-user", stack.warden_url))
        .header("origin", &stack.auth_url)
        .header("x-request-id", request_id)
        .bearer_auth(session)
        .json(&json!({"userId": user, "banReason": "spam"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

async fn is_banned(stack: &Stack, user: &str) -> bool {
    sqlx::query_scalar::<_, Option<bool>>(r#"SELECT banned FROM "user" WHERE id = $1"#)
        .bind(user)
        .fetch_one(&stack.pool)
        .await
        .unwrap()
        .unwrap_or(false)
}

/// Better-Auth's own admin API reached through warden's port (`AUTH_PROXY=true`) bypasses
/// warden's last-admin rule. By default (`AUTH_PROXY_ADMIN=audit`) every write Better-Auth
/// accepts there lands in warden's audit trail, with its actor, target, session and request
/// id, and one it refuses does not; with `refuse`, such a write never reaches Better-Auth.
#[tokio::test]
async fn better_auth_admin_writes_through_the_proxy_are_audited_or_refused() {
    let mut stack = Stack::start(Options {
        auth_proxy: true,
        // The test names its requests' ids, as a proxy in front of warden would.
        warden_env: vec![("TRUSTED_PROXIES", "127.0.0.1".into())],
        ..Options::default()
    })
    .await;
    let admin = stack.sign_up_and_in("Admin", "admin@example.com").await;
    stack.sign_up_and_in("User", "user@example.com").await;
    let other = stack.sign_up_and_in("Other", "other@example.com").await;
    sqlx::query(r#"UPDATE "user" SET role = 'admin' WHERE email = 'admin@example.com'"#)
        .execute(&stack.pool)
        .await
        .unwrap();
    let id_of = async |email: &str| -> String {
        sqlx::query_scalar(r#"SELECT id FROM "user" WHERE email = $1"#)
            .bind(email)
            .fetch_one(&stack.pool)
            .await
            .unwrap()
    };
    let (admin_id, user_id, other_id) = (
        id_of("admin@example.com").await,
        id_of("user@example.com").await,
        id_of("other@example.com").await,
    );
    // Audited: Better-Auth bans, warden records who, whom, through which session, which request.
    let (status, body) = proxied_ban(&stack, &admin, &user_id, "e2e-proxied-ban").await;
    assert_eq!(status, 200, "{body}");
    assert!(is_banned(&stack, &user_id).await);
    let row: (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        serde_json::Value,
    ) = sqlx::query_as(
        "SELECT actor_id, target_user_id, session_id, request_id, details FROM warden_audit_log
         WHERE action = 'better-auth.admin/ban-user'",
    )
    .fetch_one(&stack.pool)
    .await
    .unwrap();
    let (actor, target, session, request_id, details) = row;
    assert_eq!(
        (actor.as_str(), target.as_deref(), request_id.as_deref()),
        (admin_id.as_str(), Some(user_id.as_str()), Some("e2e-proxied-ban"))
    );
    let owner: String = sqlx::query_scalar("SELECT user_id FROM session WHERE id = $1")
        .bind(session.expect("the admin's session is recorded"))
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    assert_eq!(owner, admin_id);
    assert_eq!(details["status"], 200);
    assert_eq!(details["body"]["banReason"], "spam");

    // A write Better-Auth refuses (a plain user may not ban) leaves no row.
    let (status, body) = proxied_ban(&stack, &other, &admin_id, "e2e-refused-by-better-auth").await;
    assert_eq!(status, 403, "{body}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM warden_audit_log")
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);

    // Refused: the ban never reaches Better-Auth.
    stack
        .restart(Options {
            auth_proxy: true,
            warden_env: vec![("AUTH_PROXY_ADMIN", "refuse".into())],
            ..Options::default()
        })
        .await;
    let (status, body) = proxied_ban(&stack, &admin, &other_id, "e2e-refused-by-warden").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("admin_through_proxy_refused")),
        "{body}"
    );
    assert!(!is_banned(&stack, &other_id).await, "the user is not banned");
    // Better-Auth's other endpoints still go through.
    let response = stack
        .http
        .get(format!("{}/api/auth/get-session", stack.warden_url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    stack.stop().await;
}

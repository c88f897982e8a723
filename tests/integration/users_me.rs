//! `GET /users/me` and the health routes through the real router, with a real database and
//! a JWKS server on 127.0.0.1: what a client sees (status, headers, body).

use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::json;
use sqlx::PgPool;
use warden::testing::auth::keys::Alg;

use crate::common::{Answer, TestKey, claims, insert_user, jwks_of, now};
use crate::world::{Setup, World};

fn assert_problem(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{:?}", answer.body);
    assert_eq!(answer.headers[CONTENT_TYPE], "application/problem+json");
    assert_eq!(answer.body["code"], code, "{:?}", answer.body);
    assert_eq!(answer.body["status"], status);
    assert!(answer.body["type"].as_str().unwrap().ends_with(code));
    assert!(answer.body["title"].is_string() && answer.body["detail"].is_string());
}

fn assert_invalid_token_challenge(answer: &Answer) {
    let challenge = answer.headers[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.starts_with(r#"Bearer error="invalid_token", error_description=""#),
        "{challenge}"
    );
}

#[sqlx::test]
async fn me_returns_the_fresh_user_row(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let app = World::with(db.clone(), Setup::empty().jwks(jwks_of(&[&key]))).await;
    insert_user(&db, "u1", "alice@example.com").await;
    // The database is the truth, not the token's copy of the user.
    sqlx::query(r#"UPDATE "user" SET name = 'Alice Fresh', role = 'admin, user', image = 'https://img.test/a.png' WHERE id = 'u1'"#)
        .execute(&db)
        .await
        .unwrap();

    let answer = app.bearer(&key.sign(&claims("u1"))).get("/users/me").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json");
    let body = &answer.body;
    assert_eq!(body["id"], "u1");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["emailVerified"], false);
    assert_eq!(body["name"], "Alice Fresh");
    assert_eq!(body["image"], "https://img.test/a.png");
    assert_eq!(body["role"], "admin, user");
    // Split as Better-Auth splits it, nothing trimmed: " user" is not "user".
    assert_eq!(body["roles"], json!(["admin", " user"]));
    assert_eq!(body["banned"], false);
    assert_eq!(body["banReason"], serde_json::Value::Null);
    assert_eq!(body["banExpires"], serde_json::Value::Null);
    for date in ["createdAt", "updatedAt"] {
        let text = body[date].as_str().unwrap();
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    }
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 12, "no other fields: {keys:?}");
}

#[sqlx::test]
async fn every_algorithm_reaches_me(db: PgPool) {
    let keys: Vec<TestKey> = crate::common::ALL_ALGS
        .into_iter()
        .map(TestKey::generate)
        .collect();
    let app = World::with(
        db.clone(),
        Setup::empty().jwks(jwks_of(&keys.iter().collect::<Vec<_>>())),
    )
    .await;
    insert_user(&db, "u1", "alice@example.com").await;
    for key in &keys {
        let answer = app.bearer(&key.sign(&claims("u1"))).get("/users/me").await;
        assert_eq!(answer.status, 200, "{}: {:?}", key.alg, answer.body);
        assert_eq!(answer.body["id"], "u1");
    }
}

#[sqlx::test]
async fn missing_and_invalid_tokens_get_401_with_a_challenge(db: PgPool) {
    let key = TestKey::generate(Alg::Es256);
    let app = World::with(db.clone(), Setup::empty().jwks(jwks_of(&[&key]))).await;
    insert_user(&db, "u1", "alice@example.com").await;

    let answer = app.anonymous().get("/users/me").await;
    assert_problem(&answer, 401, "missing_token");
    assert_eq!(answer.headers[WWW_AUTHENTICATE], "Bearer");

    for bad in ["garbage", "a.b.c"] {
        let answer = app.bearer(bad).get("/users/me").await;
        assert_problem(&answer, 401, "invalid_token");
        assert_invalid_token_challenge(&answer);
    }

    let mut expired = claims("u1");
    expired["exp"] = json!(now() - 3600);
    let answer = app.bearer(&key.sign(&expired)).get("/users/me").await;
    assert_problem(&answer, 401, "token_expired");
    assert_invalid_token_challenge(&answer);

    let mut wrong_iss = claims("u1");
    wrong_iss["iss"] = json!("http://evil.test");
    let answer = app.bearer(&key.sign(&wrong_iss)).get("/users/me").await;
    assert_problem(&answer, 401, "invalid_token");

    // A signing key the JWKS does not have: one refetch, then 401.
    let stranger = TestKey::generate(Alg::Es256);
    let answer = app.bearer(&stranger.sign(&claims("u1"))).get("/users/me").await;
    assert_problem(&answer, 401, "invalid_token");

    // Other schemes are not bearer tokens.
    let request = axum::http::Request::get("/users/me")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(axum::body::Body::empty())
        .unwrap();
    let answer = app.send(request).await;
    assert_problem(&answer, 401, "invalid_token");
}

#[sqlx::test]
async fn deleted_and_banned_users_are_refused_at_once(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let app = World::with(db.clone(), Setup::empty().jwks(jwks_of(&[&key]))).await;
    insert_user(&db, "u1", "alice@example.com").await;
    let token = key.sign(&claims("u1"));
    assert_eq!(app.bearer(&token).get("/users/me").await.status, 200);

    // Banned for an hour, with a reason: the same unexpired JWT is refused.
    sqlx::query(r#"UPDATE "user" SET banned = true, ban_reason = 'spamming', ban_expires = now() + interval '1 hour' WHERE id = 'u1'"#)
        .execute(&db)
        .await
        .unwrap();
    let answer = app.bearer(&token).get("/users/me").await;
    assert_problem(&answer, 403, "banned");
    assert!(answer.body["detail"].as_str().unwrap().contains("spamming"));
    assert!(answer.headers.get(WWW_AUTHENTICATE).is_none());

    // Banned forever, no reason given: Better-Auth's default wording.
    sqlx::query(r#"UPDATE "user" SET ban_reason = NULL, ban_expires = NULL WHERE id = 'u1'"#)
        .execute(&db)
        .await
        .unwrap();
    let answer = app.bearer(&token).get("/users/me").await;
    assert_problem(&answer, 403, "banned");
    assert!(answer.body["detail"].as_str().unwrap().contains("No reason"));

    // The ban has expired: accepted again.
    sqlx::query(r#"UPDATE "user" SET ban_expires = now() - interval '1 second' WHERE id = 'u1'"#)
        .execute(&db)
        .await
        .unwrap();
    let answer = app.bearer(&token).get("/users/me").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body["banned"], true,
        "the stale flag is shown, but no longer applies"
    );

    sqlx::query(r#"DELETE FROM "user" WHERE id = 'u1'"#)
        .execute(&db)
        .await
        .unwrap();
    let answer = app.bearer(&token).get("/users/me").await;
    assert_problem(&answer, 401, "user_not_found");
    assert_invalid_token_challenge(&answer);
}

#[sqlx::test]
async fn unknown_kid_with_the_jwks_down_is_503(db: PgPool) {
    let app = World::with(
        db.clone(),
        Setup::empty().jwks_url("http://127.0.0.1:9/api/auth/jwks"),
    )
    .await;
    insert_user(&db, "u1", "alice@example.com").await;
    let key = TestKey::generate(Alg::EdDsa);
    let answer = app.bearer(&key.sign(&claims("u1"))).get("/users/me").await;
    assert_problem(&answer, 503, "jwks_unavailable");
    assert_eq!(answer.headers["retry-after"], "5");
}

#[sqlx::test]
async fn database_down_is_503_not_500(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let app = World::with(db.clone(), Setup::empty().jwks(jwks_of(&[&key]))).await;
    db.close().await;
    let answer = app.bearer(&key.sign(&claims("u1"))).get("/users/me").await;
    assert_problem(&answer, 503, "database_unavailable");
    let answer = app.anonymous().get("/readyz").await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.body["database"], "unreachable");
}

#[sqlx::test]
async fn health_readiness_and_unknown_routes(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let app = World::with(db.clone(), Setup::empty().jwks(jwks_of(&[&key]))).await;

    let answer = app.anonymous().get("/healthz").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"], "ok");

    let answer = app.anonymous().get("/readyz").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        answer.body,
        json!({"status":"ready","database":"ok","jwks":"ok","keys":1,"algorithms":["EdDSA"],"sessions":"database"})
    );

    // Better-Auth has not signed anything yet: its JWKS is empty, so warden is not ready.
    let not_ready = World::with(db.clone(), Setup::empty().jwks(json!({"keys": []}))).await;
    let answer = not_ready.anonymous().get("/readyz").await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.body["status"], "not_ready");
    assert_eq!(answer.body["jwks"], "no keys loaded");
    assert_eq!(answer.body["database"], "ok");

    let answer = app.anonymous().get("/no/such/route").await;
    assert_problem(&answer, 404, "not_found");
}

/// A refused credential says what it was taken for: a JWT cut short is called that, not "no
/// live session"; a session token says which of its checks failed.
#[sqlx::test]
async fn a_refusal_says_what_the_credential_was_taken_for(db: PgPool) {
    let w = World::new(db).await;
    let detail = async |token: &str| {
        let answer = w.bearer(token).get("/users/me").await;
        assert_eq!(answer.outcome(), (401, Some("invalid_token")), "{token}");
        answer.body["detail"].as_str().unwrap().to_owned()
    };
    // A JWT cut after its header, and after its payload.
    let jwt = w.alice.clone();
    let header = jwt.split('.').next().unwrap();
    let two = jwt.rsplit_once('.').unwrap().0;
    for (cut, parts) in [(header, "1 dot-separated part,"), (two, "2 dot-separated parts")] {
        let said = detail(cut).await;
        assert!(
            said.contains("looks like a JWT cut short") && said.contains(parts),
            "{said}"
        );
        assert!(!said.contains("session"), "{said}");
    }
    // Garbage and an unknown session token: read as session tokens, and said so.
    let said = detail("not a token!").await;
    assert!(
        said.contains("no session token has") && said.contains("not a JWT"),
        "{said}"
    );
    let said = detail("unknownTokenNoSessionHas01234567").await;
    assert!(said.contains("no live session has this session token"), "{said}");
    let forged = "unknownTokenNoSessionHas01234567.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert!(detail(forged).await.contains("not BETTER_AUTH_SECRET's"));
}

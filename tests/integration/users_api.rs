//! `/users/me/*` beyond the profile read: profile edits, own sessions, linked accounts, and
//! how credentials are tied to sessions (SESSION_CHECK, session-token bearers).

use serde_json::json;
use sqlx::PgPool;
use warden::Secret;
use warden::testing::auth::SessionCheck;
use warden::testing::auth::session_token;

use crate::common::{self, claims, claims_with_sid, insert_session};
use crate::world::{Setup, World};

#[sqlx::test]
async fn patch_me_changes_name_and_image(db: PgPool) {
    let w = World::new(db).await;
    let before = w
        .scalar_text(r#"SELECT updated_at::text FROM "user" WHERE id = 'alice'"#)
        .await;
    let answer = w
        .as_alice()
        .patch(
            "/users/me",
            json!({"name": "  Alice A.  ", "image": "https://img.test/a.png"}),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["name"], "Alice A.");
    assert_eq!(answer.body["image"], "https://img.test/a.png");
    assert_eq!(
        w.scalar_text(r#"SELECT name FROM "user" WHERE id = 'alice'"#)
            .await
            .unwrap(),
        "Alice A."
    );
    let after = w
        .scalar_text(r#"SELECT updated_at::text FROM "user" WHERE id = 'alice'"#)
        .await;
    assert_ne!(before, after, "updated_at moves");

    // `image: null` clears it; an absent name stays.
    let answer = w.as_alice().patch("/users/me", json!({"image": null})).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["image"], serde_json::Value::Null);
    assert_eq!(answer.body["name"], "Alice A.");
    assert_eq!(
        w.scalar_text(r#"SELECT image FROM "user" WHERE id = 'alice'"#)
            .await,
        None
    );
}

#[sqlx::test]
async fn patch_me_refuses_bad_input_and_changes_nothing(db: PgPool) {
    let w = World::new(db).await;
    let before = w.snapshot().await;
    let long_url = format!("https://img.test/{}", "a".repeat(2048));
    for (body, status, code) in [
        (json!({}), 422, "validation_failed"),
        (json!({"name": ""}), 422, "validation_failed"),
        (json!({"name": "   "}), 422, "validation_failed"),
        (json!({"name": "x".repeat(101)}), 422, "validation_failed"),
        (json!({"name": null}), 422, "validation_failed"),
        (json!({"name": 42}), 422, "validation_failed"),
        (json!({"name": "ok\u{0007}"}), 422, "validation_failed"),
        (json!({"image": "ftp://img.test/a.png"}), 422, "validation_failed"),
        (json!({"image": "javascript:alert(1)"}), 422, "validation_failed"),
        (json!({"image": "not a url"}), 422, "validation_failed"),
        (json!({"image": long_url}), 422, "validation_failed"),
        (json!({"email": "evil@example.com"}), 422, "validation_failed"),
        (json!({"name": "Ok", "role": "admin"}), 422, "validation_failed"),
        (json!([1, 2]), 422, "validation_failed"),
    ] {
        let answer = w.as_alice().patch("/users/me", body.clone()).await;
        assert_eq!(answer.status.as_u16(), status, "{body}: {:?}", answer.body);
        assert_eq!(answer.body["code"], code, "{body}");
        assert_eq!(answer.headers["content-type"], "application/problem+json");
    }
    // Malformed JSON and a missing content type.
    let request = axum::http::Request::patch("/users/me")
        .header("authorization", format!("Bearer {}", w.alice))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{\"name\": "))
        .unwrap();
    let answer = common::send(&w.app, request).await;
    assert_eq!(answer.outcome(), (400, Some("invalid_json")));
    let request = axum::http::Request::patch("/users/me")
        .header("authorization", format!("Bearer {}", w.alice))
        .body(axum::body::Body::from("{\"name\":\"x\"}"))
        .unwrap();
    let answer = common::send(&w.app, request).await;
    assert_eq!(answer.outcome(), (415, Some("unsupported_media_type")));
    assert_eq!(w.snapshot().await, before);
}

#[sqlx::test]
async fn own_sessions_list_revoke_and_idor(db: PgPool) {
    let w = World::new(db).await;
    let answer = w.as_alice().get("/users/me/sessions").await;
    assert_eq!(answer.status, 200);
    let list = answer.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let current: Vec<_> = list
        .iter()
        .filter(|s| s["current"] == true)
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(current, vec![json!("s-alice-1")]);
    for s in list {
        assert!(s.get("token").is_none(), "never the token: {s}");
        assert_eq!(s["userId"], "alice");
        assert_eq!(s["ipAddress"], "127.0.0.1");
        assert!(s["expiresAt"].is_string() && s["createdAt"].is_string());
    }
    let body = answer.body.to_string();
    assert!(!body.contains("tok-alice"), "no token anywhere in {body}");

    // Better-Auth writes "" when it saw no address or user agent: shown as null (unknown).
    w.exec("UPDATE session SET ip_address = '', user_agent = '' WHERE id = 's-alice-2'")
        .await;
    let answer = w.as_alice().get("/users/me/sessions").await;
    let other = answer
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "s-alice-2")
        .unwrap()
        .clone();
    assert_eq!(
        (other["ipAddress"].clone(), other["userAgent"].clone()),
        (json!(null), json!(null))
    );

    // Bob's session id through Alice's route: 404, and Bob's session survives.
    let answer = w.as_alice().delete("/users/me/sessions/s-bob").await;
    assert_eq!(answer.outcome(), (404, Some("not_found")));
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM session WHERE id = 's-bob'")
            .await,
        1
    );
    let answer = w.as_alice().delete("/users/me/sessions/no-such").await;
    assert_eq!(answer.status, 404);

    let answer = w.as_alice().delete("/users/me/sessions/s-alice-2").await;
    assert_eq!(answer.status, 204);
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM session WHERE user_id = 'alice'")
            .await,
        1
    );

    // "Sign out everywhere else" keeps the current session.
    insert_session(&w.db, "s-alice-3", "alice", "tok-alice-3", 3600).await;
    insert_session(&w.db, "s-alice-4", "alice", "tok-alice-4", 3600).await;
    let answer = w.as_alice().delete("/users/me/sessions").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!({"revoked": 2}));
    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM session WHERE user_id = 'alice'")
        .fetch_all(&w.db)
        .await
        .unwrap();
    assert_eq!(left, vec!["s-alice-1"]);
    assert_eq!(w.as_alice().get("/users/me").await.status, 200);

    // Revoking the current session signs this JWT out at once.
    assert_eq!(
        w.as_alice().delete("/users/me/sessions/s-alice-1").await.status,
        204
    );
    let answer = w.as_alice().get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("session_revoked")));
}

#[sqlx::test]
async fn accounts_never_show_secrets(db: PgPool) {
    let w = World::new(db).await;
    sqlx::query(
        "INSERT INTO account (id, account_id, provider_id, user_id, access_token, refresh_token, id_token, scope, password, created_at, updated_at)
         VALUES ('a1', 'alice', 'credential', 'alice', NULL, NULL, NULL, NULL, 'scrypt-hash-SECRET1', now(), now()),
                ('a2', 'gh-123', 'github', 'alice', 'gho_SECRET2', 'ghr_SECRET3', 'idtok_SECRET4', 'read:user,user:email', NULL, now(), now()),
                ('a3', 'bob', 'credential', 'bob', NULL, NULL, NULL, NULL, 'scrypt-hash-SECRET5', now(), now())",
    )
    .execute(&w.db)
    .await
    .unwrap();
    let answer = w.as_alice().get("/users/me/accounts").await;
    assert_eq!(answer.status, 200);
    let list = answer.body.as_array().unwrap();
    assert_eq!(list.len(), 2, "only her own");
    let github = list.iter().find(|a| a["providerId"] == "github").unwrap();
    assert_eq!(github["accountId"], "gh-123");
    assert_eq!(github["scopes"], json!(["read:user", "user:email"]));
    let text = answer.body.to_string();
    assert!(!text.contains("SECRET"), "{text}");
    for field in ["password", "accessToken", "refreshToken", "idToken"] {
        assert!(list.iter().all(|a| a.get(field).is_none()), "{field}");
    }
}

#[sqlx::test]
async fn session_check_ties_jwts_to_live_sessions(db: PgPool) {
    let w = World::new(db.clone()).await;
    // auto: sid present → checked.
    w.exec("DELETE FROM session WHERE id = 's-bob'").await;
    let answer = w.as_bob().get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("session_revoked")));
    assert!(
        answer.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    insert_session(&w.db, "s-old", "bob", "tok-old", -10).await;
    let expired = w.key.sign(&claims_with_sid("bob", "s-old"));
    assert_eq!(
        w.bearer(&expired).get("/users/me").await.body["code"],
        "session_revoked"
    );
    // Alice's session in Bob's token.
    let stolen = w.key.sign(&claims_with_sid("bob", "s-alice-2"));
    assert_eq!(
        w.bearer(&stolen).get("/users/me").await.body["code"],
        "session_revoked"
    );
    // auto: no sid → accepted.
    let no_sid = w.key.sign(&claims("bob"));
    assert_eq!(w.bearer(&no_sid).get("/users/me").await.status, 200);

    // required: no sid → refused.
    let app = w
        .variant(Setup::default().policy(|p| p.session_check = SessionCheck::Required))
        .await;
    let answer = app.bearer(&no_sid).get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
    assert_eq!(app.bearer(&w.alice).get("/users/me").await.status, 200);

    // off: a deleted session does not matter.
    let app = w
        .variant(Setup::default().policy(|p| p.session_check = SessionCheck::Off))
        .await;
    assert_eq!(app.bearer(&w.bob).get("/users/me").await.status, 200);
}

#[sqlx::test]
async fn better_auth_session_tokens_are_bearer_credentials(db: PgPool) {
    let w = World::new(db.clone()).await;
    let secret = Secret::new(common::SECRET);
    let raw = "tok-alice-2";
    let signed = session_token::sign(raw, &secret);
    for credential in [
        raw.to_owned(),
        signed.clone(),
        signed.replace('=', "%3D").replace('+', "%2B").replace('/', "%2F"),
    ] {
        let answer = w.bearer(&credential).get("/users/me").await;
        assert_eq!(answer.status, 200, "{credential}: {:?}", answer.body);
        assert_eq!(answer.body["id"], "alice");
    }
    // The session a token stands for is the current one.
    let answer = w.bearer(&signed).get("/users/me/sessions").await;
    let current: Vec<_> = answer
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current[0]["id"], "s-alice-2");

    let forged = session_token::sign(raw, &Secret::new("not-the-secret"));
    let answer = w.bearer(&forged).get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
    let answer = w.bearer("no-such-session-token").get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
    insert_session(&w.db, "s-alice-old", "alice", "tok-alice-old", -5).await;
    let answer = w.bearer("tok-alice-old").get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("token_expired")));

    // A ban deletes sessions; but even a surviving session of a banned user is refused.
    w.exec(r#"UPDATE "user" SET banned = true WHERE id = 'alice'"#)
        .await;
    assert_eq!(w.bearer(raw).get("/users/me").await.status, 403);
}

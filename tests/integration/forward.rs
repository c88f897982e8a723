//! `GET /auth/verify`, forward auth: the `X-Auth-*` headers for a good credential, the same
//! refusals as `/users/me` otherwise, `?role=`, and Better-Auth's session cookie with its
//! cross-site rule (`COOKIE_AUTH`).

use serde_json::json;
use sqlx::PgPool;
use warden::auth::session_token;
use warden::secret::Secret;

use crate::common;
use crate::world::{Setup, World};

#[sqlx::test]
async fn a_good_credential_gets_200_and_the_identity_headers(db: PgPool) {
    let w = World::new(db).await;
    let answer = w
        .as_alice()
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/notes?secret=1")
        .get("/auth/verify")
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body, serde_json::Value::Null, "an empty body");
    assert_eq!(answer.headers["x-auth-user-id"], "alice");
    assert_eq!(answer.headers["x-auth-user-email"], "alice@example.com");
    assert_eq!(answer.headers["x-auth-user-role"], "user");
    assert_eq!(answer.headers["x-auth-session-id"], "s-alice-1");
    assert_eq!(answer.headers["cache-control"], "no-store");

    // A session token as the bearer plugin hands it out: its own session.
    let answer = w.bearer("tok-alice-2").get("/auth/verify").await;
    assert_eq!(answer.headers["x-auth-session-id"], "s-alice-2");
    // Several roles, comma-joined.
    w.exec(r#"UPDATE "user" SET role = 'user,editor' WHERE id = 'bob'"#)
        .await;
    assert_eq!(
        w.as_bob().get("/auth/verify").await.headers["x-auth-user-role"],
        "user,editor"
    );
}

#[sqlx::test]
async fn refusals_are_the_ones_users_me_gives(db: PgPool) {
    let w = World::new(db).await;
    w.exec(r#"UPDATE "user" SET banned = true, ban_reason = 'spam' WHERE id = 'bob'"#)
        .await;
    for (caller, expected) in [
        (w.anonymous(), (401, Some("missing_token"))),
        (w.bearer("junk.junk.junk"), (401, Some("invalid_token"))),
        (w.as_bob(), (403, Some("banned"))),
    ] {
        let verify = caller.get("/auth/verify").await;
        let me = caller.get("/users/me").await;
        assert_eq!(verify.outcome(), expected);
        assert_eq!(verify.body, me.body);
        assert_eq!(
            verify.headers.get("www-authenticate"),
            me.headers.get("www-authenticate")
        );
        assert!(verify.headers.get("x-auth-user-id").is_none());
    }
}

#[sqlx::test]
async fn role_requires_the_role(db: PgPool) {
    let w = World::with(
        db,
        Setup::default().policy(|p| p.admin_user_ids = vec!["bob".into()]),
    )
    .await;
    assert_eq!(w.as_admin().get("/auth/verify?role=admin").await.status, 200);
    let answer = w.as_alice().get("/auth/verify?role=admin").await;
    assert_eq!(answer.outcome(), (403, Some("forbidden")));
    // For an admin role, Better-Auth's rule: ADMIN_USER_IDS count.
    assert_eq!(w.as_bob().get("/auth/verify?role=admin").await.status, 200);
    // Any configured role.
    assert_eq!(
        w.as_alice().get("/auth/verify?role=editor").await.outcome(),
        (403, Some("forbidden"))
    );
    w.exec(r#"UPDATE "user" SET role = 'user,editor' WHERE id = 'alice'"#)
        .await;
    assert_eq!(w.as_alice().get("/auth/verify?role=editor").await.status, 200);
    let answer = w.as_alice().get("/auth/verify?role=wizard").await;
    assert_eq!(answer.outcome(), (422, Some("validation_failed")));
}

/// Better-Auth's session cookie, as a browser sends it: `token.signature`, URL-encoded.
fn cookie(token: &str) -> String {
    let signed = session_token::sign(token, &Secret::new(common::SECRET));
    let encoded = signed.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    format!("theme=dark; better-auth.session_token={encoded}")
}

#[sqlx::test]
async fn the_session_cookie_with_its_cross_site_rule(db: PgPool) {
    let w = World::new(db).await;
    // Cookies off (the default): a cookie alone is no credential.
    let answer = w
        .anonymous()
        .header("cookie", &cookie("tok-alice-1"))
        .get("/auth/verify")
        .await;
    assert_eq!(answer.outcome(), (401, Some("missing_token")));

    let on = w
        .variant(Setup::default().policy(|p| {
            p.cookie_auth = true;
            p.trusted_origins = vec!["https://app.test".into()];
        }))
        .await;
    let browser = || on.anonymous().header("cookie", &cookie("tok-alice-1"));
    let answer = browser().get("/auth/verify").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.headers["x-auth-session-id"], "s-alice-1");
    assert_eq!(browser().get("/users/me").await.body["id"], "alice");

    // A change carried by a cookie needs a trusted Origin (the original method is what counts).
    let post = |origin: Option<&str>| {
        let mut caller = browser().header("x-original-method", "POST");
        if let Some(origin) = origin {
            caller = caller.header("origin", origin);
        }
        caller
    };
    assert_eq!(
        post(None).get("/auth/verify").await.outcome(),
        (403, Some("invalid_origin"))
    );
    assert_eq!(
        post(Some("https://evil.test"))
            .get("/auth/verify")
            .await
            .outcome(),
        (403, Some("invalid_origin"))
    );
    assert_eq!(
        post(Some("https://app.test")).get("/auth/verify").await.status,
        200
    );
    // The same rule on warden's own routes: a cookie-borne PATCH from nowhere changes nothing.
    let before = w.snapshot().await;
    let answer = browser().patch("/users/me", json!({"name": "Mallory"})).await;
    assert_eq!(answer.outcome(), (403, Some("invalid_origin")));
    assert_eq!(w.snapshot().await, before);
    let answer = browser()
        .header("origin", "https://app.test")
        .patch("/users/me", json!({"name": "Alice A."}))
        .await;
    assert_eq!(answer.status, 200);

    // A forged cookie is refused, never treated as anonymous.
    let forged = "better-auth.session_token=tok-alice-1.AAAA";
    let answer = on.anonymous().header("cookie", forged).get("/auth/verify").await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
    // The bearer header wins over a cookie.
    let answer = on
        .as_bob()
        .header("cookie", &cookie("tok-alice-1"))
        .get("/auth/verify")
        .await;
    assert_eq!(answer.headers["x-auth-user-id"], "bob");
}

//! `GET /auth/verify`, forward auth: the `X-Auth-*` headers for a good credential, the same
//! refusals as `/users/me` otherwise, `?role=`, and Better-Auth's session cookie with its
//! cross-site rule (`COOKIE_AUTH`).

use serde_json::json;
use sqlx::PgPool;
use warden::Secret;
use warden::testing::auth::session_token;

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
    let answer = browser()
        .header("x-original-method", "GET")
        .get("/auth/verify")
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.headers["x-auth-session-id"], "s-alice-1");
    assert_eq!(answer.headers["x-auth-credential"], "cookie");
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
    let answer = on
        .anonymous()
        .header("cookie", forged)
        .header("x-original-method", "GET")
        .get("/auth/verify")
        .await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
    // The bearer header wins over a cookie.
    let answer = on
        .as_bob()
        .header("cookie", &cookie("tok-alice-1"))
        .get("/auth/verify")
        .await;
    assert_eq!(answer.headers["x-auth-user-id"], "bob");
}

/// A cookie world: cookies on, `https://app.test` trusted.
async fn cookies_on(w: &World) -> World {
    w.variant(Setup::default().policy(|p| {
        p.cookie_auth = true;
        p.trusted_origins = vec!["https://app.test".into()];
    }))
    .await
}

#[sqlx::test]
async fn the_client_cannot_choose_the_method_warden_judges(db: PgPool) {
    let w = World::new(db).await;
    let on = cookies_on(&w).await;
    let verify = async |headers: &[(&str, &str)]| {
        let mut caller = on.anonymous().header("cookie", &cookie("tok-alice-1"));
        for (name, value) in headers {
            caller = caller.header(name, value);
        }
        caller.get("/auth/verify").await.outcome().0
    };
    // nginx names the real method in X-Original-Method and passes the client's own
    // X-Forwarded-Method along: two answers that differ, so the request counts as unsafe.
    assert_eq!(
        verify(&[
            ("x-original-method", "POST"),
            ("x-forwarded-method", "GET"),
            ("origin", "https://evil.test")
        ])
        .await,
        403
    );
    // No method header at all: unsafe too, never taken for a GET.
    assert_eq!(verify(&[]).await, 403);
    assert_eq!(verify(&[("origin", "https://evil.test")]).await, 403);
    assert_eq!(verify(&[("origin", "https://app.test")]).await, 200);
    // A method named twice in one header is no answer either.
    assert_eq!(
        verify(&[("x-original-method", "GET"), ("x-original-method", "POST")]).await,
        403
    );
    // One method, or both spellings agreeing: judged as that method.
    assert_eq!(verify(&[("x-original-method", "GET")]).await, 200);
    assert_eq!(
        verify(&[("x-original-method", "GET"), ("x-forwarded-method", "GET")]).await,
        200
    );
}

#[sqlx::test]
async fn origin_null_and_cross_site_fetches_are_refused(db: PgPool) {
    let w = World::new(db).await;
    let on = cookies_on(&w).await;
    let before = w.snapshot().await;
    let patch = async |headers: &[(&str, &str)]| {
        let mut caller = on.anonymous().header("cookie", &cookie("tok-alice-1"));
        for (name, value) in headers {
            caller = caller.header(name, value);
        }
        caller
            .patch("/users/me", json!({"name": "Mallory"}))
            .await
            .outcome()
            .0
    };
    // `Origin: null` never falls back to a trusted Referer (Better-Auth refuses it too).
    assert_eq!(
        patch(&[("origin", "null"), ("referer", "https://app.test/profile")]).await,
        403
    );
    // The browser says the request comes from another site: refused whatever Origin says.
    assert_eq!(
        patch(&[("origin", "https://app.test"), ("sec-fetch-site", "cross-site")]).await,
        403
    );
    assert_eq!(w.snapshot().await, before, "nothing changed");
    // A same-origin fetch from the trusted origin still works.
    assert_eq!(
        patch(&[("origin", "https://app.test"), ("sec-fetch-site", "same-origin")]).await,
        200
    );
}

#[sqlx::test]
async fn the_cookie_name_follows_better_auths_prefix(db: PgPool) {
    let w = World::new(db).await;
    let on = w
        .variant(Setup::default().policy(|p| {
            p.cookie_auth = true;
            p.session_cookie = "myapp.session_token".into();
        }))
        .await;
    let signed = session_token::sign("tok-alice-1", &Secret::new(common::SECRET)).replace('=', "%3D");
    let get = async |cookie: String| {
        on.anonymous()
            .header("cookie", &cookie)
            .get("/users/me")
            .await
            .outcome()
            .0
    };
    assert_eq!(get(format!("myapp.session_token={signed}")).await, 200);
    assert_eq!(
        get(format!("better-auth.session_token={signed}")).await,
        401,
        "the default name is not the configured one"
    );
    // Over plain http Better-Auth reads the plain form only, so warden does too; over https
    // (SECURE_COOKIES) only the __Secure- form, which a sibling subdomain cannot plant.
    assert_eq!(get(format!("__Secure-myapp.session_token={signed}")).await, 401);
    let https = w
        .variant(Setup::default().policy(|p| {
            p.cookie_auth = true;
            p.session_cookie = "myapp.session_token".into();
            p.secure_cookies = true;
        }))
        .await;
    let get = async |cookie: String| {
        https
            .anonymous()
            .header("cookie", &cookie)
            .get("/users/me")
            .await
            .outcome()
            .0
    };
    assert_eq!(get(format!("__Secure-myapp.session_token={signed}")).await, 200);
    assert_eq!(get(format!("myapp.session_token={signed}")).await, 401);
}

#[sqlx::test]
async fn email_verification_and_impersonation_are_said(db: PgPool) {
    let w = World::new(db).await;
    let answer = w.as_alice().get("/auth/verify").await;
    assert_eq!(answer.headers["x-auth-user-email-verified"], "false");
    assert_eq!(answer.headers["x-auth-credential"], "jwt");
    assert!(answer.headers.get("x-auth-impersonated-by").is_none());
    let answer = w.as_alice().get("/auth/verify?verified=true").await;
    assert_eq!(answer.outcome(), (403, Some("email_not_verified")));
    assert!(answer.headers.get("x-auth-user-id").is_none());
    assert_eq!(w.as_alice().get("/auth/verify?verified=false").await.status, 200);

    w.exec(r#"UPDATE "user" SET email_verified = true WHERE id = 'alice'"#)
        .await;
    let answer = w.as_alice().get("/auth/verify?verified=true").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["x-auth-user-email-verified"], "true");

    // The admin impersonates alice (Better-Auth's admin plugin marks the session).
    w.exec("UPDATE session SET impersonated_by = 'admin' WHERE id = 's-alice-2'")
        .await;
    let answer = w.bearer("tok-alice-2").get("/auth/verify").await;
    assert_eq!(answer.headers["x-auth-impersonated-by"], "admin");
    assert_eq!(answer.headers["x-auth-credential"], "session-token");
    let me = w.bearer("tok-alice-2").get("/users/me").await;
    assert_eq!(me.body["id"], "alice");
}

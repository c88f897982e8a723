//! warden as an OAuth resource server, against signed tokens and rows as Better-Auth's OAuth
//! provider makes them (its real flows are in tests/e2e/oauth.rs): JWT and opaque access
//! tokens through forward auth, scopes, the challenges, the metadata document, DPoP, and the
//! rule that a session JWT and an access token are never taken for each other.

use serde_json::{Value, json};
use sqlx::PgPool;
use warden::testing::auth::api_key::stored_form;
use warden::testing::auth::oauth::dpop::testing_proofs::DpopKey;

use crate::common::Answer;
use crate::common::{claims_with_sid, now};
use crate::world::{Setup, World};

const RESOURCE: &str = "https://api.test";
const OAUTH_ISSUER: &str = "http://auth.test:3000/api/auth";
const METADATA: &str = "https://api.test/.well-known/oauth-protected-resource";

async fn world(db: PgPool) -> World {
    let w = World::with(
        db,
        Setup::default().policy(|p| {
            p.oauth = warden::OAuthSettings {
                resource: Some(RESOURCE.into()),
                issuer: OAUTH_ISSUER.into(),
                scopes_supported: vec!["notes:read".into(), "notes:write".into()],
                public_url: RESOURCE.into(),
                ..warden::OAuthSettings::default()
            };
        }),
    )
    .await;
    w.exec(
        r#"INSERT INTO oauth_client (id, client_id, redirect_uris, created_at, updated_at)
           VALUES ('oc-1', 'client-1', '["http://127.0.0.1:9/cb"]', now(), now())"#,
    )
    .await;
    w
}

/// Claims like the provider's JWT access token for `sub` through `client-1`.
fn access_claims(sub: &str, sid: Option<&str>, scope: &str) -> Value {
    let iat = now();
    let mut claims = json!({
        "iss": OAUTH_ISSUER, "aud": RESOURCE, "sub": sub, "client_id": "client-1", "azp": "client-1",
        "scope": scope, "iat": iat, "exp": iat + 3600, "jti": format!("j-{sub}-{scope}"),
    });
    if let Some(sid) = sid {
        claims["sid"] = Value::from(sid);
    }
    claims
}

fn at_jwt(w: &World, claims: &Value) -> String {
    w.key.sign_with_header(
        &json!({"alg": "EdDSA", "kid": w.key.kid, "typ": "at+jwt"}),
        claims,
    )
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer.headers.get(name).and_then(|v| v.to_str().ok())
}

fn challenges(answer: &Answer) -> Vec<String> {
    answer
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test]
async fn a_jwt_access_token_passes_forward_auth_with_its_client_scopes_and_user(db: PgPool) {
    let w = world(db).await;
    let token = at_jwt(
        &w,
        &access_claims("alice", Some("s-alice-1"), "openid notes:read"),
    );
    let ok = w.bearer(&token).get("/auth/verify?scope=openid").await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(header(&ok, "x-auth-credential"), Some("oauth-access-token"));
    assert_eq!(header(&ok, "x-auth-client-id"), Some("client-1"));
    assert_eq!(header(&ok, "x-auth-scope"), Some("openid notes:read"));
    assert_eq!(header(&ok, "x-auth-user-id"), Some("alice"));
    assert_eq!(header(&ok, "x-auth-session-id"), Some("s-alice-1"));
    // The user's identity, not their role: the client holds scopes, not the user's authority.
    assert_eq!(header(&ok, "x-auth-user-role"), None);

    let scoped = w.bearer(&token).get("/auth/verify?scope=notes:read").await;
    assert_eq!(scoped.status, 200);
    let short = w
        .bearer(&token)
        .get("/auth/verify?scope=notes:read%20notes:write%20files")
        .await;
    assert_eq!(short.outcome(), (403, Some("insufficient_scope")));
    assert!(
        short.body["detail"]
            .as_str()
            .unwrap()
            .contains("notes:write files")
    );
    let challenge = &challenges(&short)[0];
    assert!(
        challenge.starts_with(r#"Bearer error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"scope="notes:read notes:write files""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!(r#"resource_metadata="{METADATA}""#)),
        "{challenge}"
    );
}

#[sqlx::test]
async fn a_client_credentials_token_names_the_client_and_no_user(db: PgPool) {
    let w = world(db).await;
    let token = at_jwt(&w, &access_claims("client-1", None, "notes:read"));
    let ok = w.bearer(&token).get("/auth/verify?scope=notes:read").await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(header(&ok, "x-auth-client-id"), Some("client-1"));
    assert_eq!(header(&ok, "x-auth-user-id"), None);
    assert_eq!(header(&ok, "x-auth-session-id"), None);
    // A route asking a user's role: a client alone holds none.
    let role = w
        .bearer(&token)
        .get("/auth/verify?scope=notes:read&role=admin")
        .await;
    assert_eq!(role.outcome(), (403, Some("forbidden")));
}

#[sqlx::test]
async fn session_jwts_and_access_tokens_are_never_taken_for_each_other(db: PgPool) {
    let w = world(db).await;
    let access = at_jwt(&w, &access_claims("alice", Some("s-alice-1"), "notes:read"));
    // An access token on a route for people's own credentials.
    let me = w.bearer(&access).get("/users/me").await;
    assert_eq!(me.outcome(), (403, Some("insufficient_scope")));
    assert!(
        challenges(&me)[0].contains(r#"scope="warden:me""#),
        "{:?}",
        challenges(&me)
    );
    // Nor through forward auth without scopes, whatever the user who granted it may do: an
    // admin's token for notes:read is no admin.
    let admins = at_jwt(&w, &access_claims("admin", Some("s-admin"), "notes:read"));
    for path in ["/auth/verify", "/auth/verify?role=admin"] {
        let refused = w.bearer(&admins).get(path).await;
        assert_eq!(
            refused.outcome(),
            (403, Some("access_token_not_accepted")),
            "{path}"
        );
    }
    // A session JWT where scopes are asked.
    let session = w.as_alice().get("/auth/verify?scope=notes:read").await;
    assert_eq!(session.outcome(), (401, Some("access_token_required")));
    // An at+jwt carrying a session JWT's issuer and audience is judged as an access token.
    let mut disguised = claims_with_sid("alice", "s-alice-1");
    disguised["client_id"] = Value::from("client-1");
    let disguised = at_jwt(&w, &disguised);
    let refused = w.bearer(&disguised).get("/auth/verify?scope=notes:read").await;
    assert_eq!(refused.outcome(), (401, Some("invalid_token")));
    // A session JWT (no typ) with an access token's issuer and audience is judged as a
    // session JWT.
    let plain = w
        .key
        .sign(&access_claims("alice", Some("s-alice-1"), "notes:read"));
    let refused = w.bearer(&plain).get("/auth/verify?scope=notes:read").await;
    assert_eq!(refused.outcome(), (401, Some("invalid_token")));
    // Another resource's token.
    let mut other = access_claims("alice", Some("s-alice-1"), "notes:read");
    other["aud"] = json!(["https://other.test", "https://third.test"]);
    let refused = w
        .bearer(&at_jwt(&w, &other))
        .get("/auth/verify?scope=notes:read")
        .await;
    assert_eq!(refused.outcome(), (401, Some("invalid_token")));
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("another resource")
    );
    // An array naming this resource is fine.
    let mut both = access_claims("alice", Some("s-alice-1"), "notes:read");
    both["aud"] = json!(["https://other.test", RESOURCE]);
    assert_eq!(
        w.bearer(&at_jwt(&w, &both))
            .get("/auth/verify?scope=notes:read")
            .await
            .status,
        200
    );
    // Without RESOURCE_URL no access token passes at all, and ISSUER stays the session rule.
    let off = w.variant(Setup::default()).await;
    let refused = off.bearer(&access).get("/auth/verify?scope=notes:read").await;
    assert_eq!(refused.outcome(), (401, Some("invalid_token")));
    // A session JWT is still judged by the session rules there.
    assert_eq!(off.bearer(&w.alice).get("/auth/verify").await.status, 200);
}

#[sqlx::test]
async fn a_disabled_client_a_banned_user_and_an_ended_session_stop_the_token(db: PgPool) {
    let w = world(db).await;
    let token = at_jwt(&w, &access_claims("alice", Some("s-alice-1"), "notes:read"));
    assert_eq!(
        w.bearer(&token).get("/auth/verify?scope=notes:read").await.status,
        200
    );
    w.exec("DELETE FROM session WHERE id = 's-alice-1'").await;
    let ended = w.bearer(&token).get("/auth/verify?scope=notes:read").await;
    assert_eq!(ended.outcome(), (401, Some("session_revoked")));

    let token = at_jwt(&w, &access_claims("alice", Some("s-alice-2"), "notes:read"));
    assert_eq!(
        w.bearer(&token).get("/auth/verify?scope=notes:read").await.status,
        200
    );
    w.exec(r#"UPDATE "user" SET banned = true WHERE id = 'alice'"#)
        .await;
    assert_eq!(
        w.bearer(&token)
            .get("/auth/verify?scope=notes:read")
            .await
            .outcome(),
        (403, Some("banned"))
    );

    let client = at_jwt(&w, &access_claims("client-1", None, "notes:read"));
    assert_eq!(
        w.bearer(&client)
            .get("/auth/verify?scope=notes:read")
            .await
            .status,
        200
    );
    w.exec("UPDATE oauth_client SET disabled = true WHERE client_id = 'client-1'")
        .await;
    let disabled = w.bearer(&client).get("/auth/verify?scope=notes:read").await;
    assert_eq!(disabled.outcome(), (401, Some("invalid_token")));
    assert!(disabled.body["detail"].as_str().unwrap().contains("disabled"));
}

async fn insert_opaque(w: &World, id: &str, token: &str, extra: &str) {
    w.exec(&format!(
        r#"INSERT INTO oauth_access_token (id, token, client_id, session_id, user_id, scopes, expires_at, created_at{})
           VALUES ('{id}', '{}', 'client-1', 's-alice-1', 'alice', '["notes:read","openid"]', now() + interval '1 hour', now(){})"#,
        if extra.is_empty() { "" } else { ", revoked" },
        stored_form(token, true),
        if extra.is_empty() { String::new() } else { format!(", {extra}") },
    ))
    .await;
}

#[sqlx::test]
async fn an_opaque_token_is_found_by_its_hash_and_refused_once_revoked_or_expired(db: PgPool) {
    let w = world(db).await;
    let token = "OpaqueAccessTokenNumberOne012345";
    insert_opaque(&w, "oat-1", token, "").await;
    let ok = w.bearer(token).get("/auth/verify?scope=notes:read").await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(header(&ok, "x-auth-client-id"), Some("client-1"));
    assert_eq!(header(&ok, "x-auth-scope"), Some("notes:read openid"));
    assert_eq!(header(&ok, "x-auth-user-id"), Some("alice"));
    // A session token is still a session token.
    assert_eq!(
        header(
            &w.bearer("tok-alice-1").get("/auth/verify").await,
            "x-auth-credential"
        ),
        Some("session-token")
    );
    w.exec("UPDATE oauth_access_token SET revoked = now() WHERE id = 'oat-1'")
        .await;
    let revoked = w.bearer(token).get("/auth/verify?scope=notes:read").await;
    assert_eq!(revoked.outcome(), (401, Some("invalid_token")));
    assert!(revoked.body["detail"].as_str().unwrap().contains("revoked"));

    let expired = "OpaqueAccessTokenNumberTwo012345";
    insert_opaque(&w, "oat-2", expired, "").await;
    w.exec("UPDATE oauth_access_token SET expires_at = now() - interval '1 second' WHERE id = 'oat-2'")
        .await;
    assert_eq!(
        w.bearer(expired)
            .get("/auth/verify?scope=notes:read")
            .await
            .outcome(),
        (401, Some("token_expired"))
    );
    let unknown = w
        .bearer("NoSuchTokenAnywhere0123456789abc")
        .get("/auth/verify?scope=notes:read")
        .await;
    assert_eq!(unknown.outcome(), (401, Some("invalid_token")));
}

#[sqlx::test]
async fn the_metadata_document_is_where_the_challenge_says(db: PgPool) {
    let w = world(db).await;
    let refused = w.anonymous().get("/auth/verify?scope=notes:read").await;
    assert_eq!(refused.outcome(), (401, Some("missing_token")));
    let all = challenges(&refused);
    assert_eq!(
        all,
        vec![
            format!(r#"Bearer resource_metadata="{METADATA}""#),
            format!(r#"DPoP algs="ES256 EdDSA RS256 PS256 ES512", resource_metadata="{METADATA}""#),
        ]
    );
    let doc = w.anonymous().get("/.well-known/oauth-protected-resource").await;
    assert_eq!(doc.status, 200);
    assert_eq!(
        doc.body,
        json!({
            "resource": RESOURCE,
            "authorization_servers": [OAUTH_ISSUER],
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["notes:read", "notes:write"],
            "dpop_signing_alg_values_supported": ["ES256", "EdDSA", "RS256", "PS256", "ES512"],
        })
    );
    assert_eq!(
        w.anonymous()
            .get("/.well-known/oauth-protected-resource/other")
            .await
            .status,
        404
    );
    let off = w.variant(Setup::default()).await;
    assert_eq!(
        off.anonymous()
            .get("/.well-known/oauth-protected-resource")
            .await
            .status,
        404
    );
}

#[sqlx::test]
async fn a_dpop_bound_token_needs_a_fresh_proof_of_its_key_for_this_request(db: PgPool) {
    let w = world(db).await;
    let key = DpopKey::generate_es256();
    let mut claims = access_claims("alice", Some("s-alice-1"), "notes:read");
    claims["cnf"] = json!({"jkt": key.thumbprint()});
    let token = at_jwt(&w, &claims);
    let url = format!("{RESOURCE}/notes");
    let call = |proof: Option<String>, scheme: &str, uri: &str, method: &str| {
        let mut caller = w
            .anonymous()
            .header("authorization", &format!("{scheme} {token}"))
            .header("x-forwarded-uri", uri)
            .header("x-forwarded-method", method);
        if let Some(proof) = proof {
            caller = caller.header("dpop", &proof);
        }
        async move { caller.get("/auth/verify?scope=notes:read").await }
    };
    let proof = key.proof("GET", &url, Some(&token), now(), "jti-1");
    let ok = call(Some(proof.clone()), "DPoP", "/notes?page=2", "GET").await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(header(&ok, "x-auth-client-id"), Some("client-1"));

    let replayed = call(Some(proof), "DPoP", "/notes", "GET").await;
    assert_eq!(replayed.outcome(), (401, Some("invalid_dpop_proof")));
    assert!(challenges(&replayed)[0].starts_with(r#"DPoP error="invalid_dpop_proof""#));

    let as_bearer = call(None, "Bearer", "/notes", "GET").await;
    assert_eq!(as_bearer.outcome(), (401, Some("invalid_token")));
    let none = call(None, "DPoP", "/notes", "GET").await;
    assert_eq!(none.outcome(), (401, Some("invalid_dpop_proof")));
    let other_url = key.proof("GET", &format!("{RESOURCE}/other"), Some(&token), now(), "jti-2");
    assert_eq!(
        call(Some(other_url), "DPoP", "/notes", "GET").await.outcome(),
        (401, Some("invalid_dpop_proof"))
    );
    let other_method = key.proof("POST", &url, Some(&token), now(), "jti-3");
    assert_eq!(
        call(Some(other_method), "DPoP", "/notes", "GET").await.outcome(),
        (401, Some("invalid_dpop_proof"))
    );
    let stranger = DpopKey::generate_es256().proof("GET", &url, Some(&token), now(), "jti-4");
    let wrong_key = call(Some(stranger), "DPoP", "/notes", "GET").await;
    assert_eq!(wrong_key.outcome(), (401, Some("invalid_token")));
    let stale = key.proof("GET", &url, Some(&token), now() - 600, "jti-5");
    assert_eq!(
        call(Some(stale), "DPoP", "/notes", "GET").await.outcome(),
        (401, Some("invalid_dpop_proof"))
    );
    // An unbound token with the DPoP scheme.
    let unbound = at_jwt(&w, &access_claims("alice", Some("s-alice-1"), "notes:read"));
    let answer = w
        .anonymous()
        .header("authorization", &format!("DPoP {unbound}"))
        .header("dpop", &key.proof("GET", &url, Some(&unbound), now(), "jti-6"))
        .header("x-forwarded-uri", "/notes")
        .header("x-forwarded-method", "GET")
        .get("/auth/verify?scope=notes:read")
        .await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
}

#[sqlx::test]
async fn a_session_ended_through_warden_revokes_its_opaque_tokens_as_better_auth_does(db: PgPool) {
    let w = world(db).await;
    let token = "OpaqueAccessTokenOfSessionTwo012";
    w.exec(&format!(
        r#"INSERT INTO oauth_access_token (id, token, client_id, session_id, user_id, scopes, expires_at, created_at)
           VALUES ('oat-s2', '{}', 'client-1', 's-alice-2', 'alice', '["notes:read"]', now() + interval '1 hour', now())"#,
        stored_form(token, true)
    ))
    .await;
    assert_eq!(
        w.bearer(token).get("/auth/verify?scope=notes:read").await.status,
        200
    );
    let signed_out = w.as_alice().delete("/users/me/sessions/s-alice-2").await;
    assert!(signed_out.status.is_success(), "{:?}", signed_out.body);
    // The plugin's own rule on a session's deletion: its access tokens are revoked (the
    // foreign key alone would only clear `session_id`, and the token would stay active).
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM oauth_access_token WHERE id = 'oat-s2' AND revoked IS NOT NULL AND session_id IS NULL")
            .await,
        1
    );
    let refused = w.bearer(token).get("/auth/verify?scope=notes:read").await;
    assert_eq!(refused.outcome(), (401, Some("invalid_token")));
}

#[sqlx::test]
async fn a_location_asking_scopes_takes_no_api_key_and_counts_no_use(db: PgPool) {
    let w = world(db).await;
    let key = "wd_scoped_key_0123456789abcdefghij";
    w.exec(&format!(
        r#"INSERT INTO apikey (id, config_id, reference_id, key, enabled, rate_limit_enabled, remaining, created_at, updated_at)
           VALUES ('k-1', 'default', 'alice', '{}', true, false, 5, now(), now())"#,
        stored_form(key, true)
    ))
    .await;
    let refused = w
        .anonymous()
        .header("x-api-key", key)
        .get("/auth/verify?scope=notes:read")
        .await;
    assert_eq!(refused.outcome(), (401, Some("access_token_required")));
    assert_eq!(
        w.scalar_i64("SELECT remaining::bigint FROM apikey WHERE id = 'k-1'")
            .await,
        5
    );
    // Without scopes the key is what it always was.
    let ok = w.anonymous().header("x-api-key", key).get("/auth/verify").await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        w.scalar_i64("SELECT remaining::bigint FROM apikey WHERE id = 'k-1'")
            .await,
        4
    );
}

/// The cached paths: an opaque token and its client's state come from the row cache (held
/// until a notification drops them), and every change the plugin or an admin makes in SQL is
/// seen on the next requests: revocation, narrower scopes, a disabled client, a deleted row.
#[sqlx::test]
async fn cached_opaque_tokens_and_clients_follow_every_change_made_in_sql(db: PgPool) {
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use warden::testing::cache::{RowCache, RowCacheSettings, listener};

    let rows = Arc::new(RowCache::new(RowCacheSettings {
        enabled: true,
        ttl: Duration::from_secs(600),
        bytes: 8 * 1024 * 1024,
    }));
    let task = listener::spawn(Arc::clone(&rows), (*db.connect_options()).clone());
    let cached = Arc::clone(&rows);
    let w = World::with(
        db,
        Setup::default()
            .policy(|p| {
                p.oauth = warden::OAuthSettings {
                    resource: Some(RESOURCE.into()),
                    issuer: OAUTH_ISSUER.into(),
                    public_url: RESOURCE.into(),
                    ..warden::OAuthSettings::default()
                };
            })
            .auth(move |a| a.row_cache(cached)),
    )
    .await;
    let start = Instant::now();
    while !rows.trusted() {
        assert!(start.elapsed() < Duration::from_secs(5), "the listener is not up");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    w.exec(
        r#"INSERT INTO oauth_client (id, client_id, redirect_uris, created_at, updated_at)
           VALUES ('oc-1', 'client-1', '["http://127.0.0.1:9/cb"]', now(), now())"#,
    )
    .await;
    let seen = |token: &'static str, path: &'static str, expected: (u16, Option<&'static str>)| {
        let w = &w;
        async move {
            let start = Instant::now();
            loop {
                let answer = w.bearer(token).get(path).await;
                let (status, code) = answer.outcome();
                if (status, code) == expected {
                    return start.elapsed();
                }
                assert!(
                    start.elapsed() < Duration::from_secs(2),
                    "{path}: still {status} {code:?}"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    };
    let token = "CachedOpaqueTokenNumberOne012345";
    insert_opaque(&w, "oat-c1", token, "").await;
    seen(token, "/auth/verify?scope=notes:read", (200, None)).await;
    let slot = warden::testing::auth::api_key::cache_slot(&stored_form(token, true));
    assert!(rows.access_token(&slot).is_some() && rows.oauth_client("client-1").is_some());

    w.exec(r#"UPDATE oauth_access_token SET scopes = '["openid"]' WHERE id = 'oat-c1'"#)
        .await;
    seen(
        token,
        "/auth/verify?scope=notes:read",
        (403, Some("insufficient_scope")),
    )
    .await;
    w.exec(r#"UPDATE oauth_access_token SET scopes = '["notes:read"]' WHERE id = 'oat-c1'"#)
        .await;
    seen(token, "/auth/verify?scope=notes:read", (200, None)).await;
    w.exec("UPDATE oauth_access_token SET revoked = now() WHERE id = 'oat-c1'")
        .await;
    let took = seen(
        token,
        "/auth/verify?scope=notes:read",
        (401, Some("invalid_token")),
    )
    .await;
    eprintln!("revocation seen after {} ms", took.as_millis());

    let second = "CachedOpaqueTokenNumberTwo012345";
    insert_opaque(&w, "oat-c2", second, "").await;
    seen(second, "/auth/verify?scope=notes:read", (200, None)).await;
    w.exec("UPDATE oauth_client SET disabled = true WHERE client_id = 'client-1'")
        .await;
    seen(
        second,
        "/auth/verify?scope=notes:read",
        (401, Some("invalid_token")),
    )
    .await;
    w.exec("UPDATE oauth_client SET disabled = false WHERE client_id = 'client-1'")
        .await;
    seen(second, "/auth/verify?scope=notes:read", (200, None)).await;
    w.exec("DELETE FROM oauth_access_token WHERE id = 'oat-c2'").await;
    seen(
        second,
        "/auth/verify?scope=notes:read",
        (401, Some("invalid_token")),
    )
    .await;
    task.abort();
}

#[sqlx::test]
async fn a_token_bound_by_a_method_warden_cannot_check_is_refused(db: PgPool) {
    let w = world(db).await;
    let mut claims = access_claims("alice", Some("s-alice-1"), "notes:read");
    claims["cnf"] = json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"});
    let refused = w
        .bearer(&at_jwt(&w, &claims))
        .get("/auth/verify?scope=notes:read")
        .await;
    assert_eq!(refused.outcome(), (401, Some("invalid_token")));
    let token = "OpaqueBoundByMtlsToken0123456789";
    insert_opaque(&w, "oat-m", token, "").await;
    w.exec(r#"UPDATE oauth_access_token SET confirmation = '{"x5t#S256":"abc"}' WHERE id = 'oat-m'"#)
        .await;
    let refused = w.bearer(token).get("/auth/verify?scope=notes:read").await;
    assert_eq!(refused.outcome(), (401, Some("invalid_token")));
}

struct NotesWrite;
impl warden::Scopes for NotesWrite {
    const SCOPES: &'static [&'static str] = &["notes:write"];
}

/// The library's extractors under a nested router: the DPoP proof names the path the client
/// sent (`/api/notes`), not the nested router's (`/notes`); `RequireScope` names what a token
/// lacks; `Client` takes no session credential.
#[sqlx::test]
async fn client_and_require_scope_check_dpop_against_the_path_the_client_sent(db: PgPool) {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;

    let w = world(db).await;
    async fn write(caller: warden::RequireScope<NotesWrite>) -> axum::Json<Value> {
        axum::Json(json!({"client": caller.client.client_id()}))
    }
    async fn who(client: warden::Client) -> axum::Json<Value> {
        axum::Json(json!({"user": client.user.map(|u| u.id.clone())}))
    }
    let app = axum::Router::new()
        .nest(
            "/api",
            axum::Router::new()
                .route("/notes", get(write))
                .route("/who", get(who)),
        )
        .with_state(w.state.auth.clone());
    let key = DpopKey::generate_ed25519();
    let mut claims = access_claims("alice", Some("s-alice-1"), "notes:read notes:write");
    claims["cnf"] = json!({"jkt": key.thumbprint()});
    let token = at_jwt(&w, &claims);
    let request = |path: &str, proof_url: &str, jti: &str| {
        Request::get(path)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", key.proof("GET", proof_url, Some(&token), now(), jti))
            .body(Body::empty())
            .unwrap()
    };
    let ok = crate::common::send(&app, request("/api/notes", "https://api.test/api/notes", "n-1")).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body, json!({"client": "client-1"}));
    let nested = crate::common::send(&app, request("/api/notes", "https://api.test/notes", "n-2")).await;
    assert_eq!(nested.outcome(), (401, Some("invalid_dpop_proof")));
    assert!(challenges(&nested)[0].starts_with(r#"DPoP error="invalid_dpop_proof""#));

    let narrow = at_jwt(&w, &access_claims("alice", Some("s-alice-1"), "notes:read"));
    let short = crate::common::send(
        &app,
        Request::get("/api/notes")
            .header("authorization", format!("Bearer {narrow}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(short.outcome(), (403, Some("insufficient_scope")));
    assert!(challenges(&short)[0].contains(r#"scope="notes:write""#));
    let person = crate::common::send(
        &app,
        Request::get("/api/who")
            .header("authorization", format!("Bearer {}", w.alice))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(person.outcome(), (401, Some("access_token_required")));
    assert!(challenges(&person)[0].contains(&format!(r#"resource_metadata="{METADATA}""#)));
}

/// warden's own routes each name a scope: an access token whose user granted it stands in for
/// the user there (their role deciding the rest), and nowhere else.
#[sqlx::test]
async fn warden_own_routes_take_an_access_token_holding_their_scope(db: PgPool) {
    let w = world(db).await;
    let read = at_jwt(&w, &access_claims("alice", Some("s-alice-1"), "warden:me"));
    let me = w.bearer(&read).get("/users/me").await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["id"], "alice");
    let sessions = w.bearer(&read).get("/users/me/sessions").await;
    assert_eq!(sessions.status, 200);
    let write = w
        .bearer(&read)
        .patch("/users/me", json!({"name": "Alice A."}))
        .await;
    assert_eq!(write.outcome(), (403, Some("insufficient_scope")));
    assert!(write.body["detail"].as_str().unwrap().contains("warden:me.write"));
    assert_eq!(
        w.scalar_text(r#"SELECT name FROM "user" WHERE id = 'alice'"#)
            .await
            .as_deref(),
        Some("Test User")
    );
    let writer = at_jwt(
        &w,
        &access_claims("alice", Some("s-alice-1"), "warden:me warden:me.write"),
    );
    let changed = w
        .bearer(&writer)
        .patch("/users/me", json!({"name": "Alice A."}))
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);

    // /admin needs warden:admin and an admin.
    let admins = at_jwt(&w, &access_claims("admin", Some("s-admin"), "warden:admin"));
    assert_eq!(w.bearer(&admins).get("/admin/users").await.status, 200);
    let alices = at_jwt(&w, &access_claims("alice", Some("s-alice-1"), "warden:admin"));
    assert_eq!(
        w.bearer(&alices).get("/admin/users").await.outcome(),
        (403, Some("forbidden"))
    );
    let admin_reading = at_jwt(&w, &access_claims("admin", Some("s-admin"), "warden:me"));
    assert_eq!(
        w.bearer(&admin_reading).get("/admin/users").await.outcome(),
        (403, Some("insufficient_scope"))
    );
    // A client acting for itself is no user.
    let client = at_jwt(&w, &access_claims("client-1", None, "warden:me"));
    assert_eq!(
        w.bearer(&client).get("/users/me").await.outcome(),
        (403, Some("access_token_not_accepted"))
    );
}

/// An access token expires on the second, as the provider's introspection has it: none of the
/// leeway a session JWT gets (JWT_LEEWAY_SECS).
#[sqlx::test]
async fn an_access_token_expires_without_leeway(db: PgPool) {
    let w = world(db).await;
    let mut claims = access_claims("alice", Some("s-alice-1"), "notes:read");
    claims["exp"] = json!(now() - 5);
    let expired = w
        .bearer(&at_jwt(&w, &claims))
        .get("/auth/verify?scope=notes:read")
        .await;
    assert_eq!(expired.outcome(), (401, Some("token_expired")));
    // The same 5 s past is within a session JWT's leeway.
    let mut session = claims_with_sid("alice", "s-alice-1");
    session["exp"] = json!(now() - 5);
    assert_eq!(
        w.bearer(&w.key.sign(&session)).get("/auth/verify").await.status,
        200
    );
    // Without azp, the provider calls a token inactive.
    let mut claims = access_claims("alice", Some("s-alice-1"), "notes:read");
    claims.as_object_mut().unwrap().remove("azp");
    let refused = w
        .bearer(&at_jwt(&w, &claims))
        .get("/auth/verify?scope=notes:read")
        .await;
    assert_eq!(refused.outcome(), (401, Some("invalid_token")));
}

/// A route naming its scope takes a DPoP-bound token once per request, whatever number of
/// extractors the handler takes (the proof is single-use).
#[sqlx::test]
async fn a_route_scope_takes_a_dpop_bound_token_once_for_all_its_extractors(db: PgPool) {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;

    let w = world(db).await;
    async fn twice(first: warden::AuthUser, second: warden::MaybeAuthUser) -> axum::Json<Value> {
        axum::Json(json!({
            "first": first.user.id,
            "second": second.0.map(|u| u.user.id.clone()),
            "credential": first.credential.kind(),
        }))
    }
    let app = axum::Router::new()
        .route("/notes", get(twice))
        .route_layer(axum::Extension(warden::RouteScope("notes:read")))
        .with_state(w.state.auth.clone());
    let key = DpopKey::generate_es256();
    let mut claims = access_claims("alice", Some("s-alice-1"), "notes:read");
    claims["cnf"] = json!({"jkt": key.thumbprint()});
    let token = at_jwt(&w, &claims);
    let request = Request::get("/notes")
        .header("authorization", format!("DPoP {token}"))
        .header(
            "dpop",
            key.proof("GET", "https://api.test/notes", Some(&token), now(), "t-1"),
        )
        .body(Body::empty())
        .unwrap();
    let ok = crate::common::send(&app, request).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(
        ok.body,
        json!({"first": "alice", "second": "alice", "credential": "oauth-access-token"})
    );
}

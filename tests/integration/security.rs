//! RFC 8725 (JWT Best Current Practices), point by point where it applies to a resource
//! server, through the real router. Other points are covered where the code lives:
//! tests/integration/verify.rs (none, HS*, alg/key mismatch, tampering, claims),
//! users_api.rs (signed session tokens, secrets never in responses), binary.rs (logs).

use serde_json::json;
use sqlx::PgPool;
use warden::testing::auth::keys::Alg;

use crate::common::{ISSUER, MockJwks, TestKey, claims, insert_user, jwks_of};
use crate::world::{Setup, World};

async fn setup(db: &PgPool, keys: &[&TestKey]) -> World {
    insert_user(db, "u1", "u1@example.com").await;
    World::with(db.clone(), Setup::empty().jwks(jwks_of(keys))).await
}

/// §3.1, §2.1: the algorithm is the key's; a token cannot pick a weaker or another one.
#[sqlx::test]
async fn algorithm_confusion_is_refused(db: PgPool) {
    let rsa = TestKey::generate(Alg::Rs256);
    let app = setup(&db, &[&rsa]).await;
    // PS256 and RS256 share the RSA key type; the JWK says RS256, so PS256 is refused.
    let mut pss = TestKey::generate(Alg::Ps256);
    pss.kid = rsa.kid.clone();
    let answer = app.bearer(&pss.sign(&claims("u1"))).get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("does not match its key")
    );
    for alg in ["none", "HS256", "HS384", "HS512", "RS512", "ES384", "EdDSA2"] {
        let header = json!({"alg": alg, "kid": rsa.kid});
        let token = rsa.sign_with_header(&header, &claims("u1"));
        assert_eq!(
            app.bearer(&token).get("/users/me").await.outcome(),
            (401, Some("invalid_token")),
            "{alg}"
        );
    }
}

/// §3.10: header parameters that name keys (`jwk`, `jku`, `x5u`, `x5c`) are never followed.
#[sqlx::test]
async fn keys_named_in_the_header_are_ignored(db: PgPool) {
    let trusted = TestKey::generate(Alg::Es256);
    let app = setup(&db, &[&trusted]).await;
    let attacker = TestKey::generate(Alg::Es256);
    let attacker_jwks = MockJwks::start(jwks_of(&[&attacker])).await;
    for header in [
        json!({"alg": "ES256", "kid": attacker.kid, "jku": attacker_jwks.url}),
        json!({"alg": "ES256", "kid": attacker.kid, "jwk": attacker.jwk()}),
        json!({"alg": "ES256", "kid": trusted.kid, "jwk": attacker.jwk()}),
        json!({"alg": "ES256", "kid": attacker.kid, "x5u": attacker_jwks.url}),
        json!({"alg": "ES256", "kid": attacker.kid, "x5c": ["MIIB"]}),
    ] {
        let token = attacker.sign_with_header(&header, &claims("u1"));
        let answer = app.bearer(&token).get("/users/me").await;
        assert_eq!(answer.status, 401, "{header}");
    }
    assert_eq!(
        attacker_jwks.hits(),
        0,
        "warden never fetched a URL named by a token"
    );
    assert!(app.jwks.hits() >= 1);
}

/// §3.10: `kid` is only a map key: path, SQL and oversized values are harmless unknown kids.
#[sqlx::test]
async fn hostile_kids_are_just_unknown(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let app = setup(&db, &[&key]).await;
    for kid in [
        "../../../../etc/passwd",
        "' OR '1'='1",
        "x'; DROP TABLE \"user\"; --",
        "%00",
        "\u{202e}gnp.exe",
        &"k".repeat(2000),
    ] {
        let token = key.sign_with_header(&json!({"alg": "EdDSA", "kid": kid}), &claims("u1"));
        let answer = app.bearer(&token).get("/users/me").await;
        assert_eq!(answer.outcome(), (401, Some("invalid_token")), "{kid:?}");
    }
    let users: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "user""#)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

/// RFC 7515 §4.1.11: a `crit` header lists extensions the recipient must understand; warden
/// understands none, so any `crit` is refused.
#[sqlx::test]
async fn critical_headers_are_refused(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let app = setup(&db, &[&key]).await;
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("b64")] {
        let token = key.sign_with_header(
            &json!({"alg": "EdDSA", "kid": key.kid, "crit": crit}),
            &claims("u1"),
        );
        assert_eq!(app.bearer(&token).get("/users/me").await.status, 401, "{crit}");
    }
}

/// §3.8, §3.9: two Better-Auth instances (say staging and production) whose keys both end up
/// in one JWKS: a token of one is not accepted as the other's.
#[sqlx::test]
async fn tokens_of_another_better_auth_instance_are_refused(db: PgPool) {
    let ours = TestKey::generate(Alg::EdDsa);
    let theirs = TestKey::generate(Alg::EdDsa);
    let app = setup(&db, &[&ours, &theirs]).await;
    let other = "https://staging-auth.example.com";
    let mut foreign = claims("u1");
    foreign["iss"] = json!(other);
    foreign["aud"] = json!(other);
    let answer = app.bearer(&theirs.sign(&foreign)).get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
    // Right issuer, but meant for another audience.
    let mut wrong_aud = claims("u1");
    wrong_aud["aud"] = json!([other]);
    assert_eq!(
        app.bearer(&theirs.sign(&wrong_aud)).get("/users/me").await.status,
        401
    );
    // The same claims from our instance pass.
    assert_eq!(
        app.bearer(&ours.sign(&claims("u1")))
            .get("/users/me")
            .await
            .status,
        200
    );
    assert_eq!(claims("u1")["iss"], ISSUER);
}

/// RFC 6750 §2.3 / §5.3: bearer tokens in URLs leak through logs and referrers; warden only
/// reads the Authorization header.
#[sqlx::test]
async fn tokens_in_the_query_string_are_not_accepted(db: PgPool) {
    let key = TestKey::generate(Alg::EdDsa);
    let app = setup(&db, &[&key]).await;
    let token = key.sign(&claims("u1"));
    for query in ["access_token", "token", "jwt", "authorization"] {
        let answer = app.anonymous().get(&format!("/users/me?{query}={token}")).await;
        assert_eq!(answer.outcome(), (401, Some("missing_token")), "{query}");
    }
}

/// §3.4 (validate cryptographic inputs): a JWKS key whose point is not on its curve verifies
/// nothing.
#[sqlx::test]
async fn off_curve_keys_verify_nothing(db: PgPool) {
    let key = TestKey::generate(Alg::Es256);
    let mut bad = key.jwk();
    bad["y"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        [1u8; 32]
    ));
    insert_user(&db, "u1", "u1@example.com").await;
    let app = World::with(db, Setup::empty().jwks(json!({"keys": [bad]}))).await;
    let answer = app.bearer(&key.sign(&claims("u1"))).get("/users/me").await;
    assert_eq!(answer.outcome(), (401, Some("invalid_token")));
}

/// No response of any route carries a session token, an account token or a password hash.
#[sqlx::test]
async fn secrets_never_appear_in_responses(db: PgPool) {
    let w = World::new(db).await;
    sqlx::query(
        "INSERT INTO account (id, account_id, provider_id, user_id, access_token, refresh_token, id_token, password, created_at, updated_at)
         VALUES ('a-admin', 'admin', 'credential', 'admin', 'SECRET-access', 'SECRET-refresh', 'SECRET-id', 'SECRET-hash', now(), now()),
                ('a-bob', 'gh', 'github', 'bob', 'SECRET-gho', 'SECRET-ghr', NULL, NULL, now(), now())",
    )
    .execute(&w.db)
    .await
    .unwrap();
    for (token, path) in [
        (&w.admin, "/users/me"),
        (&w.admin, "/users/me/sessions"),
        (&w.admin, "/users/me/accounts"),
        (&w.admin, "/admin/users"),
        (&w.admin, "/admin/users/bob"),
        (&w.admin, "/admin/users/bob/sessions"),
        (&w.admin, "/admin/audit"),
        (&w.bob, "/users/me/accounts"),
    ] {
        let answer = w.bearer(token).get(path).await;
        assert_eq!(answer.status, 200, "{path}");
        let text = answer.body.to_string();
        assert!(
            !text.contains("SECRET") && !text.contains("tok-"),
            "{path}: {text}"
        );
    }
}

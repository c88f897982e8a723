//! warden as the resource server of Better-Auth's real OAuth provider
//! (`@better-auth/oauth-provider`): tokens obtained by both grants, JWT and opaque, Bearer and
//! DPoP-bound, accepted with their client, user and scopes; refused when the plugin's own
//! introspection says they are not active; and an agreement grid that asks the plugin and
//! warden the same question of every token.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::oauth_flows::{
    DpopKey, OAuthClient, REDIRECT_URI, RESOURCE, SCOPES, jwt_claims, register_client,
    register_confidential_client,
};
use crate::stack::{Options, Stack};

/// A resource the auth server also serves, which warden is not.
const OTHER: &str = "https://other.test";
/// Where clients reach the API behind warden (its `PUBLIC_URL`, from `RESOURCE_URL`): DPoP
/// proofs name it and the path the gateway reports.
const PUBLIC_NOTES: &str = "http://localhost:8080/notes";

async fn stack() -> Stack {
    Stack::start(Options {
        auth_env: vec![
            ("E2E_ENDPOINTS", "1".into()),
            ("OAUTH_RESOURCES", format!("{RESOURCE},{OTHER}")),
        ],
        warden_env: vec![
            ("RESOURCE_URL", RESOURCE.into()),
            ("OAUTH_SCOPES", "notes:read notes:write".into()),
        ],
        ..Options::default()
    })
    .await
}

/// warden's forward auth for `token` on `GET /notes` (the gateway's headers), with a DPoP
/// proof when `dpop` is given (then the DPoP scheme).
async fn verify(stack: &Stack, token: &str, query: &str, dpop: Option<String>) -> (u16, HeaderMap, Value) {
    // A location that names no scopes takes no access token: `""` asks `notes:read`, which
    // every token here holds.
    let query = if query.is_empty() {
        "?scope=notes:read"
    } else {
        query
    };
    let mut request = stack
        .http
        .get(format!("{}/auth/verify{query}", stack.warden_url))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/notes");
    request = match dpop {
        Some(proof) => request
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof),
        None => request.bearer_auth(token),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("")
}

fn token(answer: &Value) -> String {
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {answer}"))
        .to_owned()
}

#[tokio::test]
async fn tokens_of_the_real_provider_pass_warden_with_their_client_user_and_scopes() {
    let stack = stack().await;
    let client = register_confidential_client(&stack.auth_url, RESOURCE).await;

    // client_credentials: a JWT for the resource, and an opaque token; no user.
    let (_, cc) = client.client_credentials(None, Some(RESOURCE), None).await;
    let cc_jwt = token(&cc);
    let (_, cc) = client.client_credentials(Some("notes:read"), None, None).await;
    let cc_opaque = token(&cc);
    let (status, headers, body) = verify(&stack, &cc_jwt, "?scope=notes:read%20notes:write", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-auth-credential"), Some("oauth-access-token"));
    assert_eq!(header(&headers, "x-auth-client-id"), Some(client.id.as_str()));
    assert_eq!(header(&headers, "x-auth-scope"), Some("notes:read notes:write"));
    assert_eq!(header(&headers, "x-auth-user-id"), None);
    let (status, headers, body) = verify(&stack, &cc_opaque, "?scope=notes:write", None).await;
    assert_eq!((status, code(&body)), (403, "insufficient_scope"));
    let challenge = header(&headers, "www-authenticate").unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(r#"scope="notes:write""#),
        "{challenge}"
    );
    assert!(
        challenge
            .contains(r#"resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource""#),
        "{challenge}"
    );
    let (status, _, _) = verify(&stack, &cc_opaque, "?scope=notes:read", None).await;
    assert_eq!(status, 200);

    // The metadata names Better-Auth, whose discovery document is where it says.
    let metadata: Value = stack
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            stack.warden_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], RESOURCE);
    assert_eq!(metadata["authorization_servers"], json!([client.issuer()]));
    let discovery = stack
        .http
        .get(format!(
            "{}/api/auth/.well-known/openid-configuration",
            stack.auth_url
        ))
        .send()
        .await
        .unwrap();
    let discovery: Value = discovery.json().await.unwrap();
    assert_eq!(discovery["issuer"], client.issuer());

    // A user's tokens, by the authorization code flow with PKCE and consent.
    let session = stack.sign_up_and_in("Olivia", "olivia@oauth.test").await;
    let (_, _, me) = stack.auth_get("/get-session", &session).await;
    let user_id = me["user"]["id"].as_str().unwrap().to_owned();
    let session_id = me["session"]["id"].as_str().unwrap().to_owned();
    let tokens = client
        .authorization_code_with_pkce(&session, "openid notes:read", Some(RESOURCE))
        .await;
    let user_jwt = token(&tokens);
    let tokens = client
        .authorization_code_with_pkce(&session, "notes:read", None)
        .await;
    let user_opaque = token(&tokens);
    for token in [&user_jwt, &user_opaque] {
        let (status, headers, body) = verify(&stack, token, "?scope=notes:read", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&headers, "x-auth-user-id"), Some(user_id.as_str()));
        assert_eq!(header(&headers, "x-auth-session-id"), Some(session_id.as_str()));
        assert_eq!(header(&headers, "x-auth-client-id"), Some(client.id.as_str()));
        let (status, _, body) = verify(&stack, token, "?scope=notes:write", None).await;
        assert_eq!((status, code(&body)), (403, "insufficient_scope"));
        // Not a person's own credential: refused on warden's own routes.
        // warden's own routes name their scopes (`warden:me` for /users/me), which these
        // tokens were not granted.
        let (status, body) = stack.warden_get("/users/me", token).await;
        assert_eq!((status, code(&body)), (403, "insufficient_scope"));
        // Nor through a location that names no scopes, with the user's whole authority.
        let (status, _, body) = verify(&stack, token, "?verified=false", None).await;
        assert_eq!((status, code(&body)), (403, "access_token_not_accepted"));
    }
    // The user's own session JWT is not an access token.
    let session_jwt = stack.jwt(&session).await;
    let (status, _, body) = verify(&stack, &session_jwt, "?scope=notes:read", None).await;
    assert_eq!((status, code(&body)), (401, "access_token_required"));

    // Another resource's token.
    let other = register_client(
        &stack.auth_url,
        json!({
            "client_name": "other resource's client", "redirect_uris": [REDIRECT_URI],
            "application_type": "native", "grant_types": ["client_credentials"], "scope": SCOPES,
            "client_credentials_scopes": ["notes:read"], "resources": [OTHER],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await;
    let (_, answer) = other.client_credentials(None, Some(OTHER), None).await;
    let (status, _, body) = verify(&stack, &token(&answer), "", None).await;
    assert_eq!((status, code(&body)), (401, "invalid_token"), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("another resource"));

    // Revoked through the plugin (an opaque token's row goes): refused on the next request.
    let (status, _) = client.revoke(&cc_opaque).await;
    assert_eq!(status, 200);
    let (status, _, body) = verify_once_refused(&stack, &cc_opaque).await;
    assert_eq!((status, code(&body)), (401, "invalid_token"));

    // The user signs out through Better-Auth: the JWT's session is gone, the opaque token
    // revoked by the plugin.
    let (status, _, _) = stack.auth_post("/sign-out", Some(&session), json!({})).await;
    assert_eq!(status, 200);
    let (status, _, body) = verify_once_refused(&stack, &user_jwt).await;
    assert_eq!((status, code(&body)), (401, "session_revoked"));
    let (status, _, body) = verify_once_refused(&stack, &user_opaque).await;
    assert_eq!((status, code(&body)), (401, "invalid_token"), "{body}");
    stack.stop().await;
}

/// `verify` until it refuses, for at most a second (a change made through Better-Auth
/// reaches warden's cache through a PostgreSQL notification).
async fn verify_once_refused(stack: &Stack, token: &str) -> (u16, HeaderMap, Value) {
    let start = Instant::now();
    loop {
        let answer = verify(stack, token, "", None).await;
        if answer.0 != 200 || start.elapsed() > Duration::from_secs(1) {
            eprintln!("refused after {} ms", start.elapsed().as_millis());
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_dpop_bound_token_of_the_real_provider_needs_its_key_for_every_request() {
    let stack = stack().await;
    let client = register_confidential_client(&stack.auth_url, RESOURCE).await;
    let key = DpopKey::generate();
    for resource in [Some(RESOURCE), None] {
        let (status, answer) = client
            .client_credentials(None, resource, Some(key.proof("POST", &client.token_url(), None)))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["token_type"], "DPoP");
        let bound = token(&answer);
        if resource.is_some() {
            assert_eq!(jwt_claims(&bound)["cnf"]["jkt"], key.jkt.as_str());
        }
        let proof = key.proof("GET", PUBLIC_NOTES, Some(&bound));
        let (status, headers, body) = verify(&stack, &bound, "?scope=notes:read", Some(proof.clone())).await;
        assert_eq!(status, 200, "{resource:?}: {body}");
        assert_eq!(header(&headers, "x-auth-client-id"), Some(client.id.as_str()));
        let refusals = [
            ("replayed", Some(proof), "invalid_dpop_proof"),
            ("as Bearer", None, "invalid_token"),
            (
                "another URL",
                Some(key.proof("GET", "http://localhost:8080/other", Some(&bound))),
                "invalid_dpop_proof",
            ),
            (
                "another method",
                Some(key.proof("POST", PUBLIC_NOTES, Some(&bound))),
                "invalid_dpop_proof",
            ),
            (
                "another key",
                Some(DpopKey::generate().proof("GET", PUBLIC_NOTES, Some(&bound))),
                "invalid_token",
            ),
            (
                "another token's hash",
                Some(key.proof("GET", PUBLIC_NOTES, Some("something else"))),
                "invalid_dpop_proof",
            ),
        ];
        for (case, proof, expected) in refusals {
            let (status, headers, body) = verify(&stack, &bound, "", proof).await;
            assert_eq!(
                (status, code(&body)),
                (401, expected),
                "{resource:?} {case}: {body}"
            );
            // The error's challenge first: DPoP for a proof's failure or a request that used
            // the DPoP scheme, Bearer for a bound token sent as Bearer; DPoP offered either way.
            let all: Vec<&str> = headers
                .get_all("www-authenticate")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            let scheme = if case == "as Bearer" { "Bearer " } else { "DPoP " };
            assert!(all[0].starts_with(scheme), "{case}: {all:?}");
            assert!(
                all[0].contains(&format!(r#"error="{expected}""#)),
                "{case}: {all:?}"
            );
            assert!(
                all.iter()
                    .any(|c| c.starts_with("DPoP ") && c.contains("algs=\"ES256")),
                "{all:?}"
            );
        }
        // A fresh proof of the right key still works.
        let fresh = key.proof("GET", PUBLIC_NOTES, Some(&bound));
        assert_eq!(verify(&stack, &bound, "", Some(fresh)).await.0, 200);
    }
    stack.stop().await;
}

/// One token of the grid: how it was made, and what the plugin and warden say of it.
struct Case {
    name: &'static str,
    token: String,
    issuer: OAuthClient,
    dpop: Option<DpopKey>,
}

/// warden's verdict: 200 from forward auth (with a fresh proof for a bound token).
async fn warden_active(stack: &Stack, case: &Case) -> bool {
    let proof = case
        .dpop
        .as_ref()
        .map(|key| key.proof("GET", PUBLIC_NOTES, Some(&case.token)));
    verify(stack, &case.token, "", proof).await.0 == 200
}

#[tokio::test]
async fn warden_and_the_plugins_introspection_agree_on_every_token() {
    let stack = stack().await;
    let client = register_confidential_client(&stack.auth_url, RESOURCE).await;
    let doomed = register_confidential_client(&stack.auth_url, RESOURCE).await;
    let mut cases: Vec<Case> = Vec::new();
    let mut add = |name, token: String, issuer: &OAuthClient, dpop| {
        cases.push(Case {
            name,
            token,
            issuer: issuer.clone(),
            dpop,
        })
    };
    let (_, a) = client.client_credentials(None, Some(RESOURCE), None).await;
    add("client_credentials JWT", token(&a), &client, None);
    let (_, a) = client.client_credentials(None, None, None).await;
    add("client_credentials opaque", token(&a), &client, None);
    let (_, a) = client.client_credentials(Some("notes:read"), None, None).await;
    add(
        "client_credentials opaque, narrower scope",
        token(&a),
        &client,
        None,
    );
    let key = DpopKey::generate();
    let (_, a) = client
        .client_credentials(
            None,
            Some(RESOURCE),
            Some(key.proof("POST", &client.token_url(), None)),
        )
        .await;
    add("DPoP-bound JWT", token(&a), &client, Some(key));
    let (_, a) = client.client_credentials(None, None, None).await;
    let revoked = token(&a);
    add("opaque, revoked", revoked.clone(), &client, None);
    let (_, a) = client.client_credentials(None, None, None).await;
    let expired = token(&a);
    add("opaque, expired", expired.clone(), &client, None);
    let (_, a) = doomed.client_credentials(None, Some(RESOURCE), None).await;
    // A disabled client cannot introspect: another client asks (the plugin checks the
    // token's client before whether the asker may see the token).
    add("JWT of a disabled client", token(&a), &client, None);
    // (An opaque token of a disabled client cannot be asked of the plugin: only its issuer may
    // introspect an opaque token, and a disabled client may not introspect.
    // tests/integration/oauth.rs covers it.)

    let session = stack.sign_up_and_in("Grid", "grid@oauth.test").await;
    let kept = stack.sign_up_and_in("Kept", "kept@oauth.test").await;
    let t = client
        .authorization_code_with_pkce(&kept, "openid notes:read", Some(RESOURCE))
        .await;
    add("user JWT (openid: aud is an array)", token(&t), &client, None);
    let t = client
        .authorization_code_with_pkce(&kept, "notes:read", None)
        .await;
    add("user opaque", token(&t), &client, None);
    let t = client
        .authorization_code_with_pkce(&session, "offline_access notes:read", Some(RESOURCE))
        .await;
    add("user JWT, session signed out", token(&t), &client, None);
    let refresh_token = t["refresh_token"].as_str().unwrap().to_owned();
    let t = client
        .authorization_code_with_pkce(&session, "notes:read", None)
        .await;
    add("user opaque, session signed out", token(&t), &client, None);

    // Now change the world through Better-Auth and the plugin (and, for what they offer no
    // endpoint for, in their tables).
    assert_eq!(client.revoke(&revoked).await.0, 200);
    sqlx::query("UPDATE oauth_access_token SET expires_at = now() - interval '1 second' WHERE token = $1")
        .bind(crate::oauth_flows::sha256_b64url(&expired))
        .execute(&stack.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE oauth_client SET disabled = true WHERE client_id = $1")
        .bind(&doomed.id)
        .execute(&stack.pool)
        .await
        .unwrap();
    assert_eq!(
        stack.auth_post("/sign-out", Some(&session), json!({})).await.0,
        200
    );
    // A refresh after the session ended: offline access outlives it, with no session.
    let (status, t) = client.refresh(&refresh_token, None, Some(RESOURCE), None).await;
    assert_eq!(status, 200, "{t}");
    add(
        "JWT refreshed after sign-out (offline_access)",
        token(&t),
        &client,
        None,
    );

    let mut agree = 0;
    let mut verdicts: std::collections::BTreeMap<&str, usize> = Default::default();
    for case in &cases {
        let active = case.issuer.introspect(&case.token).await["active"] == true;
        // Within the freshness bound: warden may need a notification to see a change.
        let start = Instant::now();
        let mut warden = warden_active(&stack, case).await;
        while warden != active && start.elapsed() < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            warden = warden_active(&stack, case).await;
        }
        assert_eq!(warden, active, "{}: the plugin says active={active}", case.name);
        agree += 1;
        *verdicts
            .entry(if active { "active" } else { "inactive" })
            .or_default() += 1;
    }
    eprintln!(
        "oauth agreement: {} tokens, {agree} agree with the plugin's introspection; {verdicts:?}",
        cases.len()
    );
    assert!(
        verdicts.get("active").copied().unwrap_or(0) >= 5
            && verdicts.get("inactive").copied().unwrap_or(0) >= 5
    );
    stack.stop().await;
}

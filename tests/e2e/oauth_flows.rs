//! OAuth 2.1 flows against the real auth server's oauth-provider plugin
//! (`@better-auth/oauth-provider`, in `auth-server/`), over HTTP only, as a client would run
//! them: helpers for warden's OAuth tests, and a smoke test of the plugin alone.
//!
//! The auth server must run with `E2E_ENDPOINTS=1`: clients are registered through its test
//! endpoint `POST /e2e/oauth/client` (the plugin's server-only `adminCreateOAuthClient`, the
//! only way to grant `client_credentials` scopes and to link a client to a resource). Its
//! resources are `OAUTH_RESOURCES`, by default [`RESOURCE`].
//!
//! What the plugin (1.7.25) does, in short: a token request naming a `resource` the client is
//! linked to gets a JWT access token (`typ: at+jwt`, `aud` the resource, plus
//! `<issuer>/oauth2/userinfo` when `openid` is granted, `iss` = [`OAuthClient::issuer`]); one
//! naming none gets a 32-character opaque token, stored as base64url(SHA-256(token)) in
//! `oauth_access_token`. `/oauth2/revoke` deletes an opaque token's row and refuses a JWT
//! (`unsupported_token_type`). A DPoP proof at the token endpoint binds the token
//! (`token_type: DPoP`, `cnf.jkt`).
#![allow(
    dead_code,
    reason = "helpers for warden's OAuth tests; the smoke test uses part of them"
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::stack::{Options, Stack, jwt_header};
use crate::support::random_hex;

/// The resource the auth server knows by default (`OAUTH_RESOURCES`: warden's default URL).
pub const RESOURCE: &str = "http://localhost:8080";
/// The redirect URI of the clients registered here: a native client's loopback address (a
/// web client may not use plain http on loopback). Nothing listens there; the code is read
/// from the redirect.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
/// Every scope the auth server offers by default (`OAUTH_SCOPES` adds the `notes:*` ones).
pub const SCOPES: &str = "openid profile email offline_access notes:read notes:write";

/// An HTTP client that does not follow redirects (the authorization flow reads them).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `application/x-www-form-urlencoded` of `pairs` (reqwest here has no `form` feature).
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://form.invalid/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

/// base64url(SHA-256(`value`)) without padding: how the plugin stores opaque access tokens,
/// refresh tokens, client secrets and authorization codes, and a PKCE S256 challenge.
pub fn sha256_b64url(value: &str) -> String {
    B64.encode(digest(&SHA256, value.as_bytes()))
}

/// The decoded claims of a JWT (no signature check).
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

/// A registered OAuth client and how to call the auth server's OAuth endpoints as it.
#[derive(Clone, Debug)]
pub struct OAuthClient {
    http: reqwest::Client,
    /// The auth server's base URL (`BETTER_AUTH_URL`), e.g. `http://127.0.0.1:3000`.
    pub auth_url: String,
    pub id: String,
    /// Empty for a public client (`token_endpoint_auth_method: none`).
    pub secret: String,
    /// The plugin's answer to the registration (client metadata, `client_credentials_scopes`,
    /// linked `resources`).
    pub registration: Value,
}

/// Registers a client with the body given (the plugin's `adminCreateOAuthClient` fields:
/// `redirect_uris`, `grant_types`, `scope`, `client_credentials_scopes`, `resources`,
/// `token_endpoint_auth_method`, `application_type`, `skip_consent`,
/// `dpop_bound_access_tokens`, ...). Panics if the plugin refuses it.
pub async fn register_client(auth_url: &str, body: Value) -> OAuthClient {
    let (status, answer) = try_register_client(auth_url, body).await;
    assert_eq!(status, 200, "register: {answer}");
    assert!(answer["client_id"].is_string(), "register: {answer}");
    OAuthClient {
        http: http_client(),
        auth_url: auth_url.to_owned(),
        id: answer["client_id"].as_str().unwrap().to_owned(),
        secret: answer["client_secret"].as_str().unwrap_or_default().to_owned(),
        registration: answer,
    }
}

/// `POST /e2e/oauth/client` as is: `(200, client)`, or the plugin's refusal as
/// `(its status, {"status": .., "error": {"error": .., "error_description": ..}})`.
pub async fn try_register_client(auth_url: &str, body: Value) -> (u16, Value) {
    let response = http_client()
        .post(format!("{auth_url}/e2e/oauth/client"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "is E2E_ENDPOINTS=1 set?");
    let answer: Value = response.json().await.unwrap();
    let status = answer["status"].as_u64().map_or(200, |s| s as u16);
    (status, answer)
}

/// A confidential client (`client_secret_basic`) that may use every grant: authorization code
/// (PKCE) with [`REDIRECT_URI`] and [`SCOPES`], refresh tokens, and `client_credentials` with
/// `notes:read notes:write`; linked to `resource`.
pub async fn register_confidential_client(auth_url: &str, resource: &str) -> OAuthClient {
    register_client(
        auth_url,
        json!({
            "client_name": "e2e confidential client",
            "redirect_uris": [REDIRECT_URI],
            "application_type": "native",
            "grant_types": ["authorization_code", "client_credentials", "refresh_token"],
            "response_types": ["code"],
            "scope": SCOPES,
            "client_credentials_scopes": ["notes:read", "notes:write"],
            "resources": [resource],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await
}

/// An authorization code and the PKCE verifier its request was made with.
#[derive(Clone, Debug)]
pub struct Code {
    pub code: String,
    pub verifier: String,
}

impl OAuthClient {
    /// The issuer: `iss` of the plugin's tokens, `<BETTER_AUTH_URL>/api/auth`.
    pub fn issuer(&self) -> String {
        format!("{}/api/auth", self.auth_url)
    }

    /// The token endpoint, also the `htu` of a DPoP proof for it.
    pub fn token_url(&self) -> String {
        format!("{}/api/auth/oauth2/token", self.auth_url)
    }

    /// A POST to `/api/auth/oauth2/<path>` authenticated as this client (its registered
    /// method: Basic, or `client_id`/`client_secret` in the body); status, headers, JSON body
    /// (`Null` when empty).
    pub async fn post(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        dpop_proof: Option<String>,
    ) -> (u16, HeaderMap, Value) {
        let method = self.registration["token_endpoint_auth_method"]
            .as_str()
            .unwrap_or("client_secret_basic");
        let mut pairs = pairs.to_vec();
        let mut request = self
            .http
            .post(format!("{}/api/auth/oauth2/{path}", self.auth_url));
        match method {
            "client_secret_basic" => {
                let basic = B64_STANDARD.encode(format!("{}:{}", self.id, self.secret));
                request = request.header("authorization", format!("Basic {basic}"));
            }
            "client_secret_post" => {
                pairs.push(("client_id", &self.id));
                pairs.push(("client_secret", &self.secret));
            }
            _ => pairs.push(("client_id", &self.id)),
        }
        if let Some(proof) = dpop_proof {
            request = request.header("dpop", proof);
        }
        let response = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&pairs))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.unwrap_or(Value::Null))
    }

    /// `grant_type=client_credentials`: status and token response (or error). Without `scope`
    /// the token carries every scope granted to the client; with `resource` it is a JWT for it,
    /// without one it is opaque.
    pub async fn client_credentials(
        &self,
        scope: Option<&str>,
        resource: Option<&str>,
        dpop_proof: Option<String>,
    ) -> (u16, Value) {
        let mut pairs = vec![("grant_type", "client_credentials")];
        pairs.extend(scope.map(|s| ("scope", s)));
        pairs.extend(resource.map(|r| ("resource", r)));
        let (status, _, body) = self.post("token", &pairs, dpop_proof).await;
        (status, body)
    }

    /// The user behind the Better-Auth session token `session` (what sign-in answers in
    /// `set-auth-token`, sent as a bearer token) authorizes this client: `/oauth2/authorize`
    /// with PKCE (S256), `scope` and `resource`, then consent when the plugin asks for it
    /// (`POST /oauth2/consent` with the signed query it handed out). Returns the code.
    pub async fn authorize(&self, session: &str, scope: &str, resource: Option<&str>) -> Code {
        let verifier = random_hex(32);
        let state = random_hex(8);
        let challenge = sha256_b64url(&verifier);
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", self.id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("scope", scope),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        pairs.extend(resource.map(|r| ("resource", r)));
        let response = self
            .http
            .get(format!(
                "{}/api/auth/oauth2/authorize?{}",
                self.auth_url,
                form(&pairs)
            ))
            .bearer_auth(session)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let mut next = next_url(response).await;
        if !next.starts_with(REDIRECT_URI) {
            // The consent page, with the authorization request signed in its query string.
            assert!(
                next.contains("/consent?"),
                "authorize: neither the client nor consent: {next}"
            );
            let oauth_query = next.split_once('?').unwrap().1.to_owned();
            let response = self
                .http
                .post(format!("{}/api/auth/oauth2/consent", self.auth_url))
                .bearer_auth(session)
                .header("origin", &self.auth_url)
                .header("accept", "application/json")
                .json(&json!({"accept": true, "oauth_query": oauth_query}))
                .send()
                .await
                .unwrap();
            next = next_url(response).await;
        }
        let url = reqwest::Url::parse(&next).unwrap();
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(param("error"), None, "authorize: {next}");
        assert_eq!(param("state").as_deref(), Some(state.as_str()), "{next}");
        assert_eq!(param("iss"), Some(self.issuer()), "{next}");
        Code {
            code: param("code").expect("a code"),
            verifier,
        }
    }

    /// `grant_type=authorization_code` for `code` (PKCE verifier, `redirect_uri`, and
    /// `resource` when given): status and token response (or error).
    pub async fn exchange_code(
        &self,
        code: &Code,
        resource: Option<&str>,
        dpop_proof: Option<String>,
    ) -> (u16, Value) {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code.code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", code.verifier.as_str()),
        ];
        pairs.extend(resource.map(|r| ("resource", r)));
        let (status, _, body) = self.post("token", &pairs, dpop_proof).await;
        (status, body)
    }

    /// [`authorize`](Self::authorize) then [`exchange_code`](Self::exchange_code): the token
    /// response (`access_token`, `token_type`, `expires_in`, `scope`, and `refresh_token` with
    /// `offline_access`, `id_token` with `openid`). A JWT access token when `resource` is given
    /// (its `sid` is the session's id), else an opaque one.
    pub async fn authorization_code_with_pkce(
        &self,
        session: &str,
        scope: &str,
        resource: Option<&str>,
    ) -> Value {
        let code = self.authorize(session, scope, resource).await;
        let (status, body) = self.exchange_code(&code, resource, None).await;
        assert_eq!(status, 200, "token: {body}");
        body
    }

    /// `grant_type=refresh_token`: status and token response (or error).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        scope: Option<&str>,
        resource: Option<&str>,
        dpop_proof: Option<String>,
    ) -> (u16, Value) {
        let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        pairs.extend(scope.map(|s| ("scope", s)));
        pairs.extend(resource.map(|r| ("resource", r)));
        let (status, _, body) = self.post("token", &pairs, dpop_proof).await;
        (status, body)
    }

    /// `/oauth2/revoke`: 200 (empty body) when an opaque access token or a refresh token of
    /// this client is revoked (or the token is another client's: nothing happens); 400
    /// `unsupported_token_type` for a JWT access token, 400 `invalid_request` for an unknown one.
    pub async fn revoke(&self, token: &str) -> (u16, Value) {
        let (status, _, body) = self.post("revoke", &[("token", token)], None).await;
        (status, body)
    }

    /// `/oauth2/introspect` as this client (RFC 7662): `{"active": false}`, or the token's
    /// claims with `active: true` and `token_type` (`Bearer` or `DPoP`). A client sees the
    /// tokens it was issued, and those whose audience is a resource it is linked to.
    pub async fn introspect(&self, token: &str) -> Value {
        let (status, _, body) = self.post("introspect", &[("token", token)], None).await;
        assert_eq!(status, 200, "introspect: {body}");
        body
    }
}

/// Where a redirect points: the `Location` of a 302, or the `url` of the JSON answer
/// (`{"redirect": true, "url": ..}`) the plugin gives to `Accept: application/json`.
async fn next_url(response: reqwest::Response) -> String {
    let status = response.status().as_u16();
    if let Some(location) = response.headers().get("location") {
        return location.to_str().unwrap().to_owned();
    }
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    body["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no redirect: {body}"))
        .to_owned()
}

const B64_STANDARD: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A DPoP key (ES256, P-256): makes proofs (RFC 9449) and knows its thumbprint (`cnf.jkt`).
#[derive(Debug)]
pub struct DpopKey {
    pair: EcdsaKeyPair,
    /// The public key as a JWK (`kty`, `crv`, `x`, `y`).
    pub jwk: Value,
    /// Its RFC 7638 SHA-256 thumbprint, base64url: what a bound token's `cnf.jkt` says.
    pub jkt: String,
}

impl DpopKey {
    pub fn generate() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        // The uncompressed point: 0x04, x, y.
        let point = pair.public_key().as_ref().to_vec();
        let (x, y) = (B64.encode(&point[1..33]), B64.encode(&point[33..65]));
        let jkt = B64.encode(digest(
            &SHA256,
            format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#).as_bytes(),
        ));
        Self {
            pair,
            jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            jkt,
        }
    }

    /// A proof for `htm htu`, issued now, with a fresh `jti`; with `ath` (the hash of
    /// `access_token`) when presenting a token to a resource server.
    pub fn proof(&self, htm: &str, htu: &str, access_token: Option<&str>) -> String {
        let iat = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        self.proof_with(
            json!({"htm": htm, "htu": htu, "jti": random_hex(16), "iat": iat}),
            access_token,
        )
    }

    /// A proof with the claims given (to make bad ones), `ath` added for `access_token`.
    pub fn proof_with(&self, mut claims: Value, access_token: Option<&str>) -> String {
        if let Some(token) = access_token {
            claims["ath"] = sha256_b64url(token).into();
        }
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }
}

/// The plugin alone (warden runs but is not asked): tokens by both grants, JWT and opaque,
/// active at introspection; an opaque token revoked is inactive and its row gone; a DPoP
/// proof binds a token to its key.
#[tokio::test]
async fn the_plugin_issues_introspects_and_revokes_tokens_by_both_grants() {
    let stack = Stack::start(Options {
        auth_env: vec![("E2E_ENDPOINTS", "1".into())],
        ..Options::default()
    })
    .await;
    let client = register_confidential_client(&stack.auth_url, RESOURCE).await;
    assert_eq!(client.registration["resources"], json!([RESOURCE]));

    // client_credentials for the resource: a JWT whose subject is the client.
    let (status, cc) = client.client_credentials(None, Some(RESOURCE), None).await;
    assert_eq!(status, 200, "{cc}");
    assert_eq!(cc["token_type"], "Bearer");
    let cc_jwt = cc["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_header(&cc_jwt)["typ"], "at+jwt");
    let claims = jwt_claims(&cc_jwt);
    assert_eq!(claims["iss"], client.issuer());
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["azp"], client.id.as_str());
    assert_eq!(claims["scope"], "notes:read notes:write");
    assert!(claims.get("sid").is_none(), "{claims}");

    // ... without a resource and with a narrower scope: opaque, stored hashed.
    let (status, cc) = client.client_credentials(Some("notes:read"), None, None).await;
    assert_eq!(status, 200, "{cc}");
    assert_eq!(cc["scope"], "notes:read");
    let cc_opaque = cc["access_token"].as_str().unwrap().to_owned();
    assert_eq!(cc_opaque.len(), 32);
    let row: (String, Option<String>, Value) =
        sqlx::query_as("SELECT client_id, user_id, scopes FROM oauth_access_token WHERE token = $1")
            .bind(sha256_b64url(&cc_opaque))
            .fetch_one(&stack.pool)
            .await
            .unwrap();
    assert_eq!(row, (client.id.clone(), None, json!(["notes:read"])));

    // Authorization code with PKCE, for a user: a JWT for the resource (sub the user, sid the
    // session), and an opaque token without one.
    let session = stack.sign_up_and_in("Olivia", "olivia@oauth.test").await;
    let (_, _, me) = stack.auth_get("/get-session", &session).await;
    let tokens = client
        .authorization_code_with_pkce(&session, "openid offline_access notes:read", Some(RESOURCE))
        .await;
    assert!(
        tokens["refresh_token"].is_string() && tokens["id_token"].is_string(),
        "{tokens}"
    );
    let user_jwt = tokens["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_claims(&user_jwt);
    assert_eq!(claims["sub"], me["user"]["id"]);
    assert_eq!(claims["sid"], me["session"]["id"]);
    assert_eq!(
        claims["aud"],
        json!([RESOURCE, format!("{}/oauth2/userinfo", client.issuer())]),
        "openid adds the userinfo endpoint to the audience"
    );
    let tokens = client
        .authorization_code_with_pkce(&session, "notes:read", None)
        .await;
    let user_opaque = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(user_opaque.len(), 32);

    for token in [&cc_jwt, &cc_opaque, &user_jwt, &user_opaque] {
        let answer = client.introspect(token).await;
        assert_eq!(answer["active"], true, "{answer}");
        assert_eq!(answer["client_id"], client.id.as_str());
    }
    assert_eq!(client.introspect(&user_opaque).await["sub"], me["user"]["id"]);

    // Revoked: an opaque token's row is deleted, and it is inactive. A JWT cannot be revoked.
    for token in [&cc_opaque, &user_opaque] {
        let (status, body) = client.revoke(token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(client.introspect(token).await, json!({"active": false}));
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_access_token WHERE token = $1")
        .bind(sha256_b64url(&cc_opaque))
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    let (status, body) = client.revoke(&cc_jwt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_token_type"))
    );
    assert_eq!(client.introspect(&cc_jwt).await["active"], true);

    // A DPoP proof at the token endpoint binds the token to the key; a replayed proof fails.
    let key = DpopKey::generate();
    let proof = key.proof("POST", &client.token_url(), None);
    let (status, bound) = client
        .client_credentials(None, Some(RESOURCE), Some(proof.clone()))
        .await;
    assert_eq!(status, 200, "{bound}");
    assert_eq!(bound["token_type"], "DPoP");
    let bound = bound["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(bound)["cnf"], json!({"jkt": key.jkt}));
    let answer = client.introspect(bound).await;
    assert_eq!(
        (&answer["active"], &answer["token_type"]),
        (&json!(true), &json!("DPoP"))
    );
    let (status, body) = client.client_credentials(None, Some(RESOURCE), Some(proof)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    stack.stop().await;
}

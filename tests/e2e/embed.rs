//! `examples/embed.rs` (a notes service of its own behind warden's extractors) against the
//! real Better-Auth: JWTs and session tokens reach its routes, each user sees only their own
//! notes, no token is 401, a banned user 403, `/staff` is for admins only; API keys made by
//! the real api-key plugin reach `/notes/export` when their permissions grant it, and `/notes`
//! as their owner with `API_KEYS_AS_USERS=true`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::Child;

use crate::stack::{Options, Stack};
use crate::support::free_port;

struct Notes {
    url: String,
    _child: Child,
    http: reqwest::Client,
}

impl Notes {
    async fn start(stack: &Stack) -> Self {
        let port = free_port();
        let child = crate::stack::start_example(
            stack,
            "embed",
            port,
            &[("API_KEYS_AS_USERS", "true".into())],
            "/notes",
        )
        .await;
        Self {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
            http: reqwest::Client::new(),
        }
    }

    async fn with_key(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn the_embedding_example_serves_its_own_routes_behind_warden() {
    let stack = Stack::start(Options {
        auth_env: vec![("E2E_ENDPOINTS", "1".into())],
        ..Options::default()
    })
    .await;
    let alice_session = stack.sign_up_and_in("Alice", "alice@notes.test").await;
    let bob_session = stack.sign_up_and_in("Bob", "bob@notes.test").await;
    let alice = stack.jwt(&alice_session).await;
    let bob = stack.jwt(&bob_session).await;
    let notes = Notes::start(&stack).await;
    use reqwest::Method;

    let (status, body) = notes.call(Method::GET, "/notes", None, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("missing_token")),
        "{body}"
    );

    let (status, note) = notes
        .call(
            Method::POST,
            "/notes",
            Some(&alice),
            Some(json!({"text": "alice's note"})),
        )
        .await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(note["text"], "alice's note");
    // A Better-Auth session token (the bearer plugin's signed form) works as well.
    let (status, _) = notes
        .call(
            Method::POST,
            "/notes",
            Some(&bob_session),
            Some(json!({"text": "bob's note"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = notes
        .call(Method::POST, "/notes", Some(&bob), Some(json!({"text": "  "})))
        .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("validation_failed")));

    for credential in [&alice, &alice_session] {
        let (status, list) = notes.call(Method::GET, "/notes", Some(credential), None).await;
        assert_eq!(status, 200, "{list}");
        let texts: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, vec!["alice's note"], "only the caller's notes");
    }

    // API keys, made by the plugin (server-side, as only the server may set permissions).
    let alice_id: String = sqlx::query_scalar(r#"SELECT id FROM "user" WHERE email = 'alice@notes.test'"#)
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    let create = |permissions: Value| {
        let http = stack.http.clone();
        let url = format!("{}/e2e/api-key/create", stack.auth_url);
        let body = json!({"userId": alice_id, "permissions": permissions, "remaining": 10});
        async move {
            let made: Value = http
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            made["key"].as_str().unwrap().to_owned()
        }
    };
    let exporter = create(json!({"notes": ["export"]})).await;
    let reader = create(json!({"notes": ["read"]})).await;
    let (status, list) = notes.with_key("/notes/export", &exporter).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["text"], "alice's note");
    let (status, body) = notes.with_key("/notes/export", &reader).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, body) = notes.with_key("/notes/export", "not-a-key-at-all").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_api_key")),
        "{body}"
    );
    // As its owner on a route for users (the example runs with API_KEYS_AS_USERS=true).
    let (status, list) = notes.with_key("/notes", &reader).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    let remaining: i32 = sqlx::query_scalar("SELECT remaining FROM apikey WHERE permissions LIKE '%read%'")
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    assert_eq!(remaining, 9, "one use counted; the refused export counted none");

    // /staff: admins only, judged on the fresh row.
    let (status, body) = notes.call(Method::GET, "/staff", Some(&alice), None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    sqlx::query(r#"UPDATE "user" SET role = 'admin' WHERE email = 'alice@notes.test'"#)
        .execute(&stack.pool)
        .await
        .unwrap();
    let start = Instant::now();
    let (status, body) = loop {
        let answer = notes.call(Method::GET, "/staff", Some(&alice), None).await;
        if answer.0 == 200 || start.elapsed() > Duration::from_secs(1) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!((status, body["staff"].as_str()), (200, Some("alice@notes.test")));

    // Banned through Better-Auth's own admin API: refused by the example too.
    let bob_id: String = sqlx::query_scalar(r#"SELECT id FROM "user" WHERE email = 'bob@notes.test'"#)
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    let (status, _, body) = stack
        .auth_post(
            "/admin/ban-user",
            Some(&alice_session),
            json!({"userId": bob_id, "banReason": "spam"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let start = Instant::now();
    let (status, body) = loop {
        let answer = notes.call(Method::GET, "/notes", Some(&bob), None).await;
        if answer.0 == 403 || start.elapsed() > Duration::from_secs(1) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!((status, body["code"].as_str()), (403, Some("banned")), "{body}");
    stack.stop().await;
}

//! API keys made by the real api-key plugin (`@better-auth/api-key`, in `auth-server/`), asked
//! of Better-Auth's own `verifyApiKey` (server-only: through the auth server's test endpoints,
//! `E2E_ENDPOINTS=1`) and of warden (`/auth/verify`), key state by key state. Each case makes
//! two identical keys ("twins") through the plugin and puts them in the same state; one is
//! asked of Better-Auth, the other of warden, the same requests in the same order. The
//! verdicts must agree, and so must the twins' rows afterwards (`remaining`, `request_count`,
//! whether the key still exists, whether a refill or a request was stamped). One declared
//! difference: a banned owner's key, which warden refuses and the plugin does not look at.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::stack::{Options, Stack};

/// A verdict in one vocabulary: `ok`, or warden's refusal code (the plugin's mapped to it).
fn plugin_verdict(answer: &Value) -> String {
    if answer["valid"] == true {
        return "ok".into();
    }
    match answer["error"]["code"].as_str().unwrap_or_default() {
        "KEY_DISABLED" => "api_key_disabled",
        "KEY_EXPIRED" => "api_key_expired",
        "USAGE_EXCEEDED" => "usage_exceeded",
        "RATE_LIMITED" => "rate_limited",
        // The plugin says "not found" when the key's permissions fall short; warden says 403.
        "KEY_NOT_FOUND" => "forbidden",
        "INVALID_API_KEY" => "invalid_api_key",
        other => panic!("unexpected plugin answer {other}: {answer}"),
    }
    .into()
}

/// Asks keys of both servers; cheap to clone into concurrent tasks.
#[derive(Clone)]
struct Keys {
    http: reqwest::Client,
    auth_url: String,
    warden_url: String,
    pool: sqlx::PgPool,
}

impl Keys {
    fn of(stack: &Stack) -> Self {
        Self {
            http: stack.http.clone(),
            auth_url: stack.auth_url.clone(),
            warden_url: stack.warden_url.clone(),
            pool: stack.pool.clone(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/e2e/api-key/{path}", self.auth_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// A key made by the plugin's server-side `createApiKey`: `(id, key)`.
    async fn create(&self, body: Value) -> (String, String) {
        let made = self.post("create", body).await;
        assert!(made["key"].is_string(), "createApiKey: {made}");
        (
            made["id"].as_str().unwrap().to_owned(),
            made["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Better-Auth's `verifyApiKey({ key, permissions })`.
    async fn plugin(&self, key: &str, permissions: Option<&Value>) -> String {
        let mut body = json!({ "key": key });
        if let Some(p) = permissions {
            body["permissions"] = p.clone();
        }
        plugin_verdict(&self.post("verify", body).await)
    }

    /// Better-Auth's `verifyApiKey({ key, configId })`.
    async fn plugin_in(&self, key: &str, config_id: &str) -> String {
        plugin_verdict(
            &self
                .post("verify", json!({ "key": key, "configId": config_id }))
                .await,
        )
    }

    /// warden's `/auth/verify` with the key, `?permission=` from the same statements.
    async fn warden(&self, key: &str, permissions: Option<&Value>) -> String {
        let mut url = format!("{}/auth/verify", self.warden_url);
        if let Some(p) = permissions {
            let list: Vec<String> = p
                .as_object()
                .unwrap()
                .iter()
                .flat_map(|(r, a)| {
                    a.as_array()
                        .unwrap()
                        .iter()
                        .map(move |a| format!("{r}:{}", a.as_str().unwrap()))
                })
                .collect();
            url.push_str(&format!("?permission={}", list.join(",")));
        }
        let response = self.http.get(url).header("x-api-key", key).send().await.unwrap();
        if response.status() == 200 {
            return "ok".into();
        }
        let body: Value = response.json().await.unwrap();
        body["code"].as_str().unwrap().to_owned()
    }

    /// What the row says after the requests (`None`: deleted).
    async fn row(&self, id: &str) -> Option<Value> {
        sqlx::query_scalar::<_, Value>(
            "SELECT json_build_object('remaining', remaining, 'request_count', request_count, \
             'refilled', last_refill_at IS NOT NULL, 'requested', last_request IS NOT NULL, 'enabled', enabled) \
             FROM apikey WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .unwrap()
    }

    /// Puts key `id` in a state. Timestamps are written to the millisecond, as Better-Auth
    /// writes them: the plugin's refill guard compares `lastRefillAt` for equality with the
    /// value it read, a JavaScript date, so a microsecond written by anyone else makes its
    /// refill miss (warden's claim, one statement on the locked row, has no such guard).
    async fn sql(&self, id: &str, set: &str) {
        // The states are this file's own constants.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE apikey SET {set} WHERE id = $1"
        )))
        .bind(id)
        .execute(&self.pool)
        .await
        .unwrap();
    }
}

struct Case {
    name: &'static str,
    /// The body of `createApiKey` (the owner is added).
    create: Value,
    /// SQL `SET ...` putting the key in its state after creation ("" for none).
    state: &'static str,
    /// The permissions each request asks, and how many requests.
    permissions: Option<Value>,
    requests: usize,
    /// The owner: `alice`, `banned` (a banned user) or `org`.
    owner: &'static str,
}

fn cases() -> Vec<Case> {
    let case = |name, create: Value, state, requests| Case {
        name,
        create,
        state,
        permissions: None,
        requests,
        owner: "alice",
    };
    let no_limit = json!({"rateLimitEnabled": false});
    vec![
        case("valid, default rate limit", json!({}), "", 1),
        case("disabled", json!({}), "enabled = false", 1),
        case(
            "expired",
            json!({}),
            "expires_at = date_trunc('milliseconds', now() - interval '1 second')",
            1,
        ),
        case("expires later", json!({"expiresIn": 86400 * 2}), "", 1),
        case(
            "quota 1, then 0",
            json!({"remaining": 1, "rateLimitEnabled": false}),
            "",
            3,
        ),
        case(
            "quota 0, refill due",
            json!({"remaining": 1, "refillAmount": 3, "refillInterval": 1000, "rateLimitEnabled": false}),
            "remaining = 0, last_refill_at = date_trunc('milliseconds', now() - interval '2 seconds')",
            2,
        ),
        case(
            "quota 0, refill not due",
            json!({"remaining": 1, "refillAmount": 3, "refillInterval": 3_600_000, "rateLimitEnabled": false}),
            "remaining = 0",
            2,
        ),
        case(
            "refill due on first use (never refilled: created counts)",
            json!({"remaining": 2, "refillAmount": 5, "refillInterval": 1000, "rateLimitEnabled": false}),
            "created_at = date_trunc('milliseconds', now() - interval '1 minute')",
            2,
        ),
        case(
            "rate limit at its edge",
            json!({"rateLimitMax": 2, "rateLimitTimeWindow": 60_000}),
            "",
            3,
        ),
        case(
            "rate limit full, window passed",
            json!({"rateLimitMax": 1, "rateLimitTimeWindow": 1000}),
            "request_count = 1, last_request = date_trunc('milliseconds', now() - interval '2 seconds')",
            2,
        ),
        case(
            "rate limit full, window not passed",
            json!({"rateLimitMax": 1, "rateLimitTimeWindow": 60_000}),
            "request_count = 1, last_request = date_trunc('milliseconds', now() - interval '5 seconds')",
            1,
        ),
        case("rate limit off on the key", no_limit.clone(), "", 12),
        case(
            "quota and rate limit together",
            json!({"remaining": 3, "rateLimitMax": 2, "rateLimitTimeWindow": 60_000}),
            "",
            4,
        ),
        Case {
            permissions: Some(json!({"files": ["read"]})),
            ..case(
                "permissions granted",
                json!({"permissions": {"files": ["read", "write"]}, "rateLimitEnabled": false}),
                "",
                1,
            )
        },
        Case {
            permissions: Some(json!({"files": ["read", "delete"]})),
            ..case(
                "permissions not granted",
                json!({"permissions": {"files": ["read", "write"]}, "remaining": 2}),
                "",
                1,
            )
        },
        Case {
            permissions: Some(json!({"files": ["read"]})),
            ..case("no permissions on the key", no_limit.clone(), "", 1)
        },
        Case {
            owner: "org",
            ..case(
                "organization-owned",
                json!({"configId": "org", "remaining": 2}),
                "",
                3,
            )
        },
        Case {
            owner: "banned",
            ..case("owner banned", json!({"remaining": 2}), "", 1)
        },
    ]
}

#[tokio::test]
async fn warden_decides_every_key_as_the_plugin_does() {
    let stack = Stack::start(Options {
        auth_env: vec![("E2E_ENDPOINTS", "1".into())],
        warden_env: vec![("API_KEY_ORGANIZATION_CONFIGS", "org".into())],
        ..Options::default()
    })
    .await;
    let keys = Keys::of(&stack);
    let alice_session = stack.sign_up_and_in("Alice", "alice@keys.test").await;
    let (_, _, me) = stack.auth_get("/get-session", &alice_session).await;
    let alice = me["user"]["id"].as_str().unwrap().to_owned();
    stack.sign_up_and_in("Banned", "banned@keys.test").await;
    let banned: String = sqlx::query_scalar(r#"SELECT id FROM "user" WHERE email = 'banned@keys.test'"#)
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    sqlx::query(r#"UPDATE "user" SET banned = true WHERE id = $1"#)
        .bind(&banned)
        .execute(&stack.pool)
        .await
        .unwrap();
    let (status, _, org) = stack
        .auth_post(
            "/organization/create",
            Some(&alice_session),
            json!({"name": "Acme", "slug": "acme-keys"}),
        )
        .await;
    assert_eq!(status, 200, "{org}");
    let org = org["id"].as_str().unwrap().to_owned();

    let mut summary = BTreeMap::new();
    let mut differences = Vec::new();
    for case in cases() {
        let mut body = case.create.clone();
        match case.owner {
            "org" => {
                body["organizationId"] = json!(org);
                body["userId"] = json!(alice);
            }
            "banned" => body["userId"] = json!(banned),
            _ => body["userId"] = json!(alice),
        }
        let (plugin_id, plugin_key) = keys.create(body.clone()).await;
        let (warden_id, warden_key) = keys.create(body).await;
        if !case.state.is_empty() {
            keys.sql(&plugin_id, case.state).await;
            keys.sql(&warden_id, case.state).await;
        }
        let mut plugin_verdicts = Vec::new();
        let mut warden_verdicts = Vec::new();
        for _ in 0..case.requests {
            plugin_verdicts.push(keys.plugin(&plugin_key, case.permissions.as_ref()).await);
            warden_verdicts.push(keys.warden(&warden_key, case.permissions.as_ref()).await);
        }
        let (plugin_row, warden_row) = (keys.row(&plugin_id).await, keys.row(&warden_id).await);
        eprintln!(
            "{:<58} plugin {plugin_verdicts:?} {plugin_row:?}\n{:<58} warden {warden_verdicts:?} {warden_row:?}",
            case.name, ""
        );
        if case.owner == "banned" {
            // Declared: the plugin's verifyApiKey does not look at the owner; warden refuses a
            // banned owner's key before counting it.
            assert_eq!(plugin_verdicts, ["ok"]);
            assert_eq!(warden_verdicts, ["banned"]);
            assert_eq!(warden_row.as_ref().unwrap()["remaining"], 2, "not counted");
            differences.push(case.name);
            continue;
        }
        assert_eq!(warden_verdicts, plugin_verdicts, "{}: verdicts", case.name);
        assert_eq!(warden_row, plugin_row, "{}: the rows afterwards", case.name);
        for verdict in plugin_verdicts {
            *summary.entry(verdict).or_insert(0) += 1;
        }
    }

    // Unknown keys: the same answer.
    assert_eq!(keys.plugin("no-such-key-at-all", None).await, "invalid_api_key");
    assert_eq!(keys.warden("no-such-key-at-all", None).await, "invalid_api_key");

    // One key asked of both in turn: one counter, decremented once per request, never below 0.
    let (id, key) = keys
        .create(json!({"userId": alice, "remaining": 6, "rateLimitMax": 100, "rateLimitTimeWindow": 60_000}))
        .await;
    for turn in 0..6 {
        let verdict = if turn % 2 == 0 {
            keys.plugin(&key, None).await
        } else {
            keys.warden(&key, None).await
        };
        assert_eq!(verdict, "ok", "turn {turn}");
        let row = keys.row(&id).await.unwrap();
        assert_eq!(row["remaining"], 5 - turn, "turn {turn}: {row}");
        assert_eq!(row["request_count"], turn + 1, "turn {turn}: {row}");
    }
    assert_eq!(keys.warden(&key, None).await, "usage_exceeded");
    assert_eq!(keys.row(&id).await, None, "deleted, as the plugin would");
    assert_eq!(keys.plugin(&key, None).await, "invalid_api_key");

    // Both at once on one key with 50 uses: 100 requests to each, exactly 50 granted in all.
    let (id, key) = keys
        .create(json!({"userId": alice, "remaining": 50, "rateLimitEnabled": false}))
        .await;
    let mut all = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (keys, key) = (keys.clone(), key.clone());
        all.spawn(async move {
            if i % 2 == 0 {
                keys.plugin(&key, None).await
            } else {
                keys.warden(&key, None).await
            }
        });
    }
    let verdicts = all.join_all().await;
    let granted = verdicts.iter().filter(|v| *v == "ok").count();
    // Never over the quota. (A use can go unreported, never uncounted: the plugin decrements,
    // then writes `updatedAt` in a second statement and answers INVALID_API_KEY when the row
    // is gone by then, which happens when the request after the last use, Better-Auth's or
    // warden's, has deleted the used-up key in between. warden's own claim is one statement,
    // so its grants are exactly its uses: 200 requests to warden alone on 50 uses grant 50,
    // tests/integration/api_keys.rs.)
    assert!((45..=50).contains(&granted), "{verdicts:?}");
    assert!(
        verdicts
            .iter()
            .all(|v| ["ok", "usage_exceeded", "invalid_api_key"].contains(&v.as_str())),
        "{verdicts:?}"
    );
    assert!(
        keys.row(&id).await.is_none_or(|row| row["remaining"] == 0),
        "never below 0"
    );
    let by_warden = verdicts.iter().skip(1).step_by(2).filter(|v| *v == "ok").count();
    eprintln!(
        "api-key concurrency: 100 requests to Better-Auth and 100 to warden at once on remaining 50: \
         {granted} granted ({by_warden} by warden), the key never below 0"
    );

    // A configuration other than the one asked for: refused by both (warden told to serve
    // only "default", the plugin asked with configId "default").
    let (_, org_key) = keys
        .create(json!({"configId": "org", "organizationId": org, "userId": alice}))
        .await;
    assert_eq!(keys.plugin_in(&org_key, "default").await, "invalid_api_key");
    let mut stack = stack;
    stack
        .restart(Options {
            auth_env: vec![("E2E_ENDPOINTS", "1".into())],
            warden_env: vec![
                ("API_KEY_ORGANIZATION_CONFIGS", "org".into()),
                ("API_KEY_CONFIG_ID", "default".into()),
            ],
            ..Options::default()
        })
        .await;
    assert_eq!(keys.warden(&org_key, None).await, "invalid_api_key");
    assert_eq!(
        keys.plugin_in(&org_key, "org").await,
        "ok",
        "its own configuration"
    );

    let cases = cases().len() + 1;
    eprintln!(
        "api-key agreement: {cases} cases, {} agree on every verdict and on the rows afterwards, \
         {} differ by design ({}); verdicts {summary:?}; interleaved key: 6 uses, one counter",
        cases - differences.len(),
        differences.len(),
        differences.join(", ")
    );
    // (The count includes the configuration case just above.)
    stack.stop().await;
}

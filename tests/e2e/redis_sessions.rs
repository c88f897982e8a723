//! Sessions in Redis against the real thing: Better-Auth (`auth-server/`) with the official
//! `@better-auth/redis-storage` on a real `redis-server`, and the real `warden` binary with
//! `SESSION_STORE=redis`, in each of Better-Auth's three secondary-storage modes. Every way
//! Better-Auth ends a session or changes a user is seen by warden on its next requests; every
//! session warden ends is ended for Better-Auth too. Each mode prints one line with the
//! slowest time from Better-Auth's answer to warden's refusal.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::stack::{Options, Stack};
use crate::support::redis::{self as r, RedisServer};
use crate::support::{Env, warden_command};

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Sessions in Redis only.
    RedisOnly,
    /// `storeSessionInDatabase`.
    WithRows,
    /// `storeSessionInDatabase` + `preserveSessionInDatabase`.
    PreservedRows,
}

impl Mode {
    fn env(self, redis: &RedisServer) -> Vec<(&'static str, String)> {
        let (rows, preserve) = match self {
            Self::RedisOnly => ("0", "0"),
            Self::WithRows => ("1", "0"),
            Self::PreservedRows => ("1", "1"),
        };
        vec![
            ("SESSION_STORE", "redis".into()),
            ("REDIS_URL", redis.url()),
            ("STORE_SESSION_IN_DATABASE", rows.into()),
            ("PRESERVE_SESSION_IN_DATABASE", preserve.into()),
        ]
    }
}

/// Slowest time from Better-Auth's answer to warden's answer changing, across a scenario.
#[derive(Default)]
struct Seen {
    checks: usize,
    slowest: Duration,
}

impl Seen {
    /// Asks warden `GET /users/me` with `bearer` until it answers `status` (at most 1 s: far
    /// beyond the freshness bound); the time it took is recorded.
    async fn until(&mut self, stack: &Stack, bearer: &str, status: u16, what: &str) -> Value {
        let start = Instant::now();
        loop {
            let (got, body) = stack.warden_get("/users/me", bearer).await;
            if got == status {
                self.checks += 1;
                self.slowest = self.slowest.max(start.elapsed());
                return body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{what}: warden still answers {got} ({body}), not {status}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// The raw token of a bearer token Better-Auth hands out (`token.signature`): the key it is
/// stored under.
fn raw(bearer: &str) -> &str {
    bearer.split('.').next().unwrap()
}

async fn better_auth_has_session(stack: &Stack, token: &str) -> bool {
    let (status, _, body) = stack.auth_get("/get-session", token).await;
    status == 200 && !body.is_null()
}

async fn run(mode: Mode) {
    if !r::available() {
        return;
    }
    let redis = RedisServer::start().await;
    let env = mode.env(&redis);
    let stack = Stack::start(Options {
        warden_env: env.clone(),
        auth_env: env,
        ..Options::default()
    })
    .await;
    let mut conn = redis.connect().await;
    let mut seen = Seen::default();

    // An admin (for the ban): the role set before the sign-in whose session carries the user.
    stack.sign_up_and_in("Admin", "admin@redis.test").await;
    sqlx::query(r#"UPDATE "user" SET role = 'admin' WHERE email = 'admin@redis.test'"#)
        .execute(&stack.pool)
        .await
        .unwrap();
    let admin = stack.sign_in("admin@redis.test").await;

    // Sign-in: the session token and the sid JWT, both accepted; the session is in Redis.
    let t1 = stack.sign_up_and_in("Alice", "alice@redis.test").await;
    let j1 = stack.jwt(&t1).await;
    let me = seen.until(&stack, &t1, 200, "session token").await;
    let alice_id = me["id"].as_str().unwrap().to_owned();
    seen.until(&stack, &j1, 200, "sid JWT").await;
    assert!(
        r::get(&mut conn, &format!("better-auth:{}", raw(&t1)))
            .await
            .is_some()
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM session")
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    match mode {
        Mode::RedisOnly => assert_eq!(rows, 0, "no rows without storeSessionInDatabase"),
        _ => assert!(rows >= 2, "rows as well"),
    }
    if let Mode::RedisOnly = mode {
        // `warden check` sees the store, the prefix in use, and the auth server's Better-Auth.
        let mut vars = vec![
            ("DATABASE_URL", stack.db.url.clone()),
            ("BETTER_AUTH_URL", stack.auth_url.clone()),
        ];
        vars.extend(mode.env(&redis));
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = warden_command(&["check"], Env::Clean, &vars)
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        for line in [
            "[ok  ] better-auth: 1.7.",
            "(warden is tested with 1.7.25 to 1.7.29)",
            "[ok  ] sessions: in Redis only; Redis 7.",
            "[ok  ] sessions: keys found under \"better-auth:\"",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
    let (_, listed) = stack.warden_get("/users/me/sessions", &t1).await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "the sign-up's and the sign-in's: {listed}"
    );

    // An update of the user: warden reads users from PostgreSQL.
    let (status, _, body) = stack
        .auth_post("/update-user", Some(&t1), json!({"name": "Alice Two"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let start = Instant::now();
    while stack.warden_get("/users/me", &j1).await.1["name"] != "Alice Two" {
        assert!(start.elapsed() < Duration::from_secs(1), "the new name not seen");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // Sign-out.
    let t2 = stack.sign_in("alice@redis.test").await;
    let j2 = stack.jwt(&t2).await;
    seen.until(&stack, &j2, 200, "second session").await;
    let (status, _, _) = stack.auth_post("/sign-out", Some(&t2), json!({})).await;
    assert_eq!(status, 200);
    seen.until(&stack, &t2, 401, "signed-out token").await;
    seen.until(&stack, &j2, 401, "signed-out JWT").await;
    if let Mode::PreservedRows = mode {
        let ended: i64 =
            sqlx::query_scalar(r#"SELECT count(*) FROM session WHERE token = $1 AND expires_at <= now()"#)
                .bind(raw(&t2))
                .fetch_one(&stack.pool)
                .await
                .unwrap();
        assert_eq!(ended, 1, "the row is kept, ended");
    }

    // Revoke one.
    let t3 = stack.sign_in("alice@redis.test").await;
    seen.until(&stack, &t3, 200, "third session").await;
    let (status, _, _) = stack
        .auth_post("/revoke-session", Some(&t1), json!({"token": raw(&t3)}))
        .await;
    assert_eq!(status, 200);
    seen.until(&stack, &t3, 401, "revoked session").await;

    // Revoke the others.
    let (t4, t5) = (
        stack.sign_in("alice@redis.test").await,
        stack.sign_in("alice@redis.test").await,
    );
    let j4 = stack.jwt(&t4).await;
    seen.until(&stack, &j4, 200, "fourth session").await;
    let (status, _, _) = stack
        .auth_post("/revoke-other-sessions", Some(&t1), json!({}))
        .await;
    assert_eq!(status, 200);
    seen.until(&stack, &j4, 401, "another session").await;
    seen.until(&stack, &t5, 401, "another session").await;
    seen.until(&stack, &t1, 200, "the session kept").await;

    // Expiry by TTL: Redis drops the key when it expires (as at the session's end).
    let t6 = stack.sign_in("alice@redis.test").await;
    seen.until(&stack, &t6, 200, "sixth session").await;
    let _: () = redis::cmd("PEXPIRE")
        .arg(format!("better-auth:{}", raw(&t6)))
        .arg(50)
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    match mode {
        // The row still answers for a token Redis lacks, as for Better-Auth.
        Mode::WithRows => {
            seen.until(&stack, &t6, 200, "expired key, live row").await;
            assert!(better_auth_has_session(&stack, &t6).await);
        }
        _ => {
            seen.until(&stack, &t6, 401, "expired key").await;
            assert!(!better_auth_has_session(&stack, &t6).await);
        }
    }

    // Revoke all: the revoked-before mark.
    let (status, _, _) = stack.auth_post("/revoke-sessions", Some(&t1), json!({})).await;
    assert_eq!(status, 200);
    assert!(
        r::get(
            &mut conn,
            &format!("better-auth:revoked-sessions-before-{alice_id}")
        )
        .await
        .is_some()
    );
    seen.until(&stack, &t1, 401, "after revoke-sessions").await;
    seen.until(&stack, &j1, 401, "JWT after revoke-sessions").await;

    // A ban deletes her sessions.
    let t7 = stack.sign_in("alice@redis.test").await;
    let j7 = stack.jwt(&t7).await;
    seen.until(&stack, &j7, 200, "seventh session").await;
    let (status, _, body) = stack
        .auth_post(
            "/admin/ban-user",
            Some(&admin),
            json!({"userId": alice_id, "banReason": "test"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let refused = seen.until(&stack, &j7, 403, "banned").await;
    assert_eq!(refused["code"], "banned");
    seen.until(&stack, &t7, 401, "banned user's session token").await;
    let (status, _, _) = stack
        .auth_post("/admin/unban-user", Some(&admin), json!({"userId": alice_id}))
        .await;
    assert_eq!(status, 200);

    // The other way: sessions warden ends are ended for Better-Auth too.
    let t8 = stack.sign_in("alice@redis.test").await;
    let t9 = stack.sign_in("alice@redis.test").await;
    let (_, me9) = stack.warden_get("/users/me/sessions", &t9).await;
    let id8 = me9
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .unwrap();
    let response = stack
        .http
        .delete(format!("{}/users/me/sessions/{id8}", stack.warden_url))
        .bearer_auth(&t9)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert!(
        !better_auth_has_session(&stack, &t8).await,
        "ended through warden, still live for Better-Auth"
    );
    assert!(better_auth_has_session(&stack, &t9).await);
    let response = stack
        .http
        .post(format!("{}/admin/users/{alice_id}/ban", stack.warden_url))
        .bearer_auth(&admin)
        .json(&json!({"reason": "through warden"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        !better_auth_has_session(&stack, &t9).await,
        "banned through warden, still live for Better-Auth"
    );

    // The grid: every session token of this run, each ended its own way (one kept live in
    // the row mode, and a new one after an unban), asked of Better-Auth's get-session and of
    // warden; the two verdicts must agree for every one.
    let (status, _, _) = stack
        .auth_post("/admin/unban-user", Some(&admin), json!({"userId": alice_id}))
        .await;
    assert_eq!(status, 200);
    let t10 = stack.sign_in("alice@redis.test").await;
    let tokens = [&t1, &t2, &t3, &t4, &t5, &t6, &t7, &t8, &t9, &t10, &admin];
    let mut live = 0;
    for (n, token) in tokens.iter().enumerate() {
        let better_auth = better_auth_has_session(&stack, token).await;
        let (status, body) = stack.warden_get("/users/me", token).await;
        let warden = status == 200;
        assert_eq!(
            warden, better_auth,
            "token {n}: Better-Auth says live={better_auth}, warden answers {status} {body}"
        );
        live += usize::from(better_auth);
    }
    eprintln!(
        "redis agreement ({mode:?}): {} session tokens, {} agree with Better-Auth's get-session; {{\"live\": {live}, \"ended\": {}}}",
        tokens.len(),
        tokens.len(),
        tokens.len() - live
    );
    eprintln!(
        "redis sessions ({mode:?}): {} checks against Better-Auth 1.7 with redis-storage, every change seen by warden; slowest {} ms",
        seen.checks,
        seen.slowest.as_millis()
    );
    stack.stop().await;
}

#[tokio::test]
async fn sessions_in_redis_only() {
    run(Mode::RedisOnly).await;
}

#[tokio::test]
async fn sessions_in_redis_and_the_table() {
    run(Mode::WithRows).await;
}

#[tokio::test]
async fn sessions_in_redis_with_rows_preserved() {
    run(Mode::PreservedRows).await;
}

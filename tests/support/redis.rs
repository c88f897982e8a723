//! A real `redis-server` (Debian's package) started by a test on 127.0.0.1, with nothing kept
//! on disk, stopped when dropped; and Better-Auth's secondary-storage records written into it
//! as `@better-auth/redis-storage` writes them.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde_json::json;

use super::{Env, command, free_port};

/// Whether `redis-server` is installed; CI must have it (`.ci/run` and `scripts/test` install
/// it), elsewhere a test without it says so and passes.
pub fn available() -> bool {
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "redis-server is not installed (Debian: apt install redis-server); CI needs it"
    );
    eprintln!("skipping: redis-server is not installed (Debian: apt install redis-server)");
    false
}

/// One `redis-server` process on its own port.
pub struct RedisServer {
    pub port: u16,
    child: Option<tokio::process::Child>,
}

impl RedisServer {
    pub async fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
        };
        server.run().await;
        server
    }

    async fn run(&mut self) {
        let port = self.port.to_string();
        let child = command(
            "redis-server",
            &[
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            Env::Clean,
            &[],
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if let Ok(mut conn) = self.try_connect().await
                && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {port} did not answer");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn try_connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }

    /// A plain connection, as another client (Better-Auth) would hold.
    pub async fn connect(&self) -> MultiplexedConnection {
        self.try_connect().await.expect("redis connects")
    }

    /// Kills the server (its data goes with it).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub async fn pause(&self) {
        self.signal("-STOP").await;
    }

    /// Lets a frozen server run again (SIGCONT).
    pub async fn resume(&self) {
        self.signal("-CONT").await;
    }

    async fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .and_then(tokio::process::Child::id)
            .expect("running");
        let status = tokio::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    /// Starts it again on the same port, empty.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.run().await;
    }

    /// How many `GET`s the server has answered so far.
    pub async fn gets(&self) -> u64 {
        let mut conn = self.connect().await;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// ms since the epoch, now.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// An ISO date as `JSON.stringify` writes one, `ms` since the epoch.
pub fn js_date(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A session as Better-Auth's `createSession` writes it to secondary storage: the value under
/// its token and an entry on its user's `active-sessions-` list. `created_ms` is its
/// `createdAt`; it ends `lasts_secs` from now.
pub async fn put_session(
    conn: &mut MultiplexedConnection,
    prefix: &str,
    (id, user_id, token): (&str, &str, &str),
    created_ms: i64,
    lasts_secs: i64,
) {
    let expires_ms = now_ms() + lasts_secs * 1000;
    let value = json!({
        "session": {
            "id": id, "ipAddress": "127.0.0.1", "userAgent": "test-agent",
            "expiresAt": js_date(expires_ms), "userId": user_id, "token": token,
            "createdAt": js_date(created_ms), "updatedAt": js_date(created_ms),
        },
        "user": { "id": user_id, "name": "Test User" },
    });
    let ttl = lasts_secs.max(1);
    let _: () = redis::cmd("SETEX")
        .arg(format!("{prefix}{token}"))
        .arg(ttl)
        .arg(value.to_string())
        .query_async(conn)
        .await
        .unwrap();
    let list_key = format!("{prefix}active-sessions-{user_id}");
    let raw: Option<String> = redis::cmd("GET").arg(&list_key).query_async(conn).await.unwrap();
    let mut list: Vec<serde_json::Value> = raw.map(|r| serde_json::from_str(&r).unwrap()).unwrap_or_default();
    list.push(json!({ "token": token, "expiresAt": expires_ms }));
    let _: () = redis::cmd("SETEX")
        .arg(&list_key)
        .arg(ttl)
        .arg(serde_json::Value::Array(list).to_string())
        .query_async(conn)
        .await
        .unwrap();
}

/// `GET key` as text.
pub async fn get(conn: &mut MultiplexedConnection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query_async(conn).await.unwrap()
}

/// `SET key value` (no TTL) or `DEL key` (value `None`).
pub async fn set(conn: &mut MultiplexedConnection, key: &str, value: Option<&str>) {
    let _: () = match value {
        Some(v) => redis::cmd("SET").arg(key).arg(v).query_async(conn).await.unwrap(),
        None => redis::cmd("DEL").arg(key).query_async(conn).await.unwrap(),
    };
}

//! The real stack for end-to-end tests: a fresh PostgreSQL database, warden's migrations,
//! the real Better-Auth server from `auth-server/` (Node), and the real `warden` binary, all
//! on 127.0.0.1 with free ports. Everything started here is stopped when the [`Stack`] drops.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::oneshot;

use crate::support::{Env, free_port, random_hex, repo, warden_command};

pub const PASSWORD: &str = "correct-horse-battery-staple";
pub const SECRET: &str = "e2e-secret-0123456789abcdef0123456789abcdef";

fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `admin_url` with its database name replaced.
fn url_for(database: &str) -> String {
    let base = admin_url();
    let (prefix, rest) = base.rsplit_once('/').expect("DATABASE_URL has a database name");
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{prefix}/{database}{query}")
}

/// The auth server's folder: `auth-server/` (the pinned Better-Auth), or `AUTH_SERVER_DIR`, a
/// copy at another Better-Auth version (`scripts/e2e-lowest`: the lowest warden supports).
pub fn auth_server_dir() -> std::path::PathBuf {
    std::env::var_os("AUTH_SERVER_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join("auth-server"))
}

/// A fresh database, dropped by [`Stack::stop`].
pub struct Database {
    pub name: String,
    pub url: String,
}

impl Database {
    pub async fn create() -> Self {
        let name = format!("warden_e2e_{}", random_hex(6));
        let mut conn = PgConnection::connect(&admin_url())
            .await
            .expect("PostgreSQL reachable at DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut conn)
            .await
            .unwrap();
        Self {
            url: url_for(&name),
            name,
        }
    }

    async fn drop_database(&self) {
        if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
            let sql = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
        }
    }
}

/// Options for one stack.
#[derive(Clone, Debug)]
pub struct Options {
    pub alg: &'static str,
    pub rotation_secs: Option<u64>,
    /// warden forwards /api/auth/* to Better-Auth (AUTH_PROXY=true).
    pub auth_proxy: bool,
    /// More environment for warden (e.g. limits a test lowers).
    pub warden_env: Vec<(&'static str, String)>,
    /// More environment for Better-Auth.
    pub auth_env: Vec<(&'static str, String)>,
    /// The host name in both servers' public URLs (`BETTER_AUTH_URL`, `warden_url`); they
    /// listen on 127.0.0.1 either way. A browser test uses `localhost`.
    pub host: &'static str,
    /// Better-Auth trusts warden's origin (its `TRUSTED_ORIGINS`): a page served by warden
    /// signs in there, directly or through the auth proxy.
    pub trust_warden: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            alg: "EdDSA",
            rotation_secs: None,
            auth_proxy: false,
            warden_env: Vec::new(),
            auth_env: Vec::new(),
            host: "127.0.0.1",
            trust_warden: false,
        }
    }
}

pub struct Stack {
    pub db: Database,
    pub pool: PgPool,
    pub auth_url: String,
    pub warden_url: String,
    pub http: reqwest::Client,
    auth: Option<Child>,
    warden: Option<Child>,
}

/// The port of a `http://host:port` URL.
pub fn port_of(url: &str) -> u16 {
    url.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// Better-Auth and warden on the given ports, against the database at `db_url`, and what
/// says that Better-Auth listens ([`listening`]).
fn spawn_servers(
    db_url: &str,
    options: &Options,
    auth_port: u16,
    warden_port: u16,
) -> (Child, Child, oneshot::Receiver<()>) {
    let auth_url = format!("http://{}:{auth_port}", options.host);
    let warden_url = format!("http://{}:{warden_port}", options.host);
    let mut auth = Command::new("node");
    auth.arg("server.mjs")
        .current_dir(auth_server_dir())
        .env("DATABASE_URL", db_url)
        .env("BETTER_AUTH_SECRET", SECRET)
        .env("BETTER_AUTH_URL", &auth_url)
        .env("HOST", "127.0.0.1")
        .env("PORT", auth_port.to_string())
        .env("JWT_ALG", options.alg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(secs) = options.rotation_secs {
        auth.env("JWKS_ROTATION_INTERVAL_SECS", secs.to_string());
    }
    if options.trust_warden {
        auth.env("TRUSTED_ORIGINS", &warden_url);
    }
    for (k, v) in &options.auth_env {
        auth.env(k, v);
    }
    let mut auth = auth.spawn().expect("node is installed");
    let listening = watch_for_listening(auth.stdout.take().expect("stdout is piped"));

    let mut warden = warden_command(&["serve"], Env::Inherited, &[]);
    for (k, v) in &options.warden_env {
        warden.env(k, v);
    }
    let warden = warden
        .env("DATABASE_URL", db_url)
        .env("BETTER_AUTH_URL", &auth_url)
        .env("BIND_ADDR", format!("127.0.0.1:{warden_port}"))
        .env("RUN_MIGRATIONS", "false")
        .env("JWKS_COOLDOWN_SECS", "1")
        .env("BETTER_AUTH_SECRET", SECRET)
        .env("AUTH_PROXY", if options.auth_proxy { "true" } else { "false" })
        .env(
            "RUST_LOG",
            std::env::var("E2E_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    (auth, warden, listening)
}

/// Passes Better-Auth's output on, and fires once it prints that it listens: only the server
/// that bound the port prints that. The sender drops, unfired, when the output ends first.
fn watch_for_listening(stdout: ChildStdout) -> oneshot::Receiver<()> {
    let (fire, fired) = oneshot::channel();
    tokio::spawn(async move {
        let mut fire = Some(fire);
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = writeln!(std::io::stdout(), "{line}");
            if line.starts_with("auth-server: listening on")
                && let Some(fire) = fire.take()
            {
                let _ = fire.send(());
            }
        }
    });
    fired
}

/// Whether the servers just spawned hold their ports: Better-Auth printed that it listens, and
/// warden (which binds within milliseconds, where Node takes about a second) is still running.
/// `free_port` hands out a port that was free a moment ago; a server another test starts in
/// that moment can take it, and the one spawned here then exits.
async fn listening(listening: oneshot::Receiver<()>, warden: &mut Child) -> bool {
    let auth_up = tokio::time::timeout(Duration::from_secs(30), listening)
        .await
        .expect("Better-Auth neither listened nor exited in 30 s")
        .is_ok();
    auth_up && matches!(warden.try_wait(), Ok(None))
}

impl Stack {
    pub async fn start(options: Options) -> Self {
        let node_modules = auth_server_dir().join("node_modules");
        assert!(
            node_modules.is_dir(),
            "{} is missing: run `npm ci --prefix auth-server` (scripts/test does)",
            node_modules.display()
        );
        let db = Database::create().await;

        let status = warden_command(
            &["migrate"],
            Env::Inherited,
            &[("DATABASE_URL", &db.url), ("RUST_LOG", "warn")],
        )
        .status()
        .await
        .unwrap();
        assert!(status.success(), "warden migrate failed");
        let pool = PgPool::connect(&db.url).await.unwrap();

        let mut attempts = 0;
        let (auth_port, warden_port, auth, warden) = loop {
            let (auth_port, warden_port) = (free_port(), free_port());
            let (mut auth, mut warden, up) = spawn_servers(&db.url, &options, auth_port, warden_port);
            if listening(up, &mut warden).await {
                break (auth_port, warden_port, auth, warden);
            }
            attempts += 1;
            assert!(attempts < 3, "the servers could not take their ports in 3 tries");
            for child in [&mut auth, &mut warden] {
                let _ = child.kill().await;
            }
        };
        let auth_url = format!("http://{}:{auth_port}", options.host);
        let warden_url = format!("http://{}:{warden_port}", options.host);

        let stack = Self {
            db,
            pool,
            auth_url,
            warden_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            auth: Some(auth),
            warden: Some(warden),
        };
        stack.wait_healthy(&format!("{}/healthz", stack.auth_url)).await;
        stack.wait_healthy(&format!("{}/healthz", stack.warden_url)).await;
        stack
    }

    async fn wait_healthy(&self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(url).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "{url} did not become healthy in 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops both servers and starts them again, on the same ports and database, with
    /// `options` (e.g. `ADMIN_USER_IDS` naming a user signed up meanwhile). Sessions and keys
    /// live in the database, so tokens handed out before stay good.
    pub async fn restart(&mut self, options: Options) {
        for child in [self.auth.take(), self.warden.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
        let (auth, mut warden, up) = spawn_servers(
            &self.db.url,
            &options,
            port_of(&self.auth_url),
            port_of(&self.warden_url),
        );
        assert!(
            listening(up, &mut warden).await,
            "the servers did not take their ports again"
        );
        self.auth = Some(auth);
        self.warden = Some(warden);
        self.wait_healthy(&format!("{}/healthz", self.auth_url)).await;
        self.wait_healthy(&format!("{}/healthz", self.warden_url)).await;
    }

    /// Freezes Better-Auth (SIGSTOP): its port still accepts connections, nothing answers.
    pub async fn pause_auth_server(&self) {
        self.signal_auth_server("-STOP").await;
    }

    /// Lets a frozen Better-Auth run again (SIGCONT).
    pub async fn resume_auth_server(&self) {
        self.signal_auth_server("-CONT").await;
    }

    async fn signal_auth_server(&self, signal: &str) {
        let pid = self.auth.as_ref().and_then(Child::id).expect("Better-Auth runs");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// warden's resident memory, in MiB (from /proc).
    pub fn warden_rss_mib(&self) -> f64 {
        let pid = self.warden.as_ref().and_then(Child::id).expect("warden runs");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// Stops Better-Auth only (warden keeps running).
    pub async fn stop_auth_server(&mut self) {
        if let Some(mut child) = self.auth.take() {
            let _ = child.kill().await;
        }
    }

    /// Stops everything and drops the database.
    pub async fn stop(mut self) {
        for child in [self.auth.take(), self.warden.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill().await;
        }
        self.pool.close().await;
        self.db.drop_database().await;
    }

    /// POST to Better-Auth with the `Origin` header it requires.
    pub async fn auth_post(&self, path: &str, bearer: Option<&str>, body: Value) -> (u16, HeaderMap, Value) {
        let mut request = self
            .http
            .post(format!("{}/api/auth{path}", self.auth_url))
            .header("origin", &self.auth_url)
            .json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn auth_get(&self, path: &str, bearer: &str) -> (u16, HeaderMap, Value) {
        let response = self
            .http
            .get(format!("{}/api/auth{path}", self.auth_url))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.unwrap_or(Value::Null))
    }

    /// Signs a new user up, then in; returns the bearer session token of the sign-in.
    pub async fn sign_up_and_in(&self, name: &str, email: &str) -> String {
        let (status, _, body) = self
            .auth_post(
                "/sign-up/email",
                None,
                json!({"name": name, "email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "sign-up: {body}");
        self.sign_in(email).await
    }

    /// Signs in (a new session); returns the bearer session token Better-Auth hands out.
    pub async fn sign_in(&self, email: &str) -> String {
        let (status, headers, body) = self
            .auth_post(
                "/sign-in/email",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "sign-in: {body}");
        headers["set-auth-token"].to_str().unwrap().to_owned()
    }

    /// The JWT Better-Auth hands out for a session (`GET /api/auth/token`).
    pub async fn jwt(&self, session_token: &str) -> String {
        let (status, _, body) = self.auth_get("/token", session_token).await;
        assert_eq!(status, 200, "token: {body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// GET on warden with a bearer token; returns status and JSON body.
    pub async fn warden_get(&self, path: &str, bearer: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.warden_url))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Stack {
    /// `warden_get` until `seen` holds, for at most a second: a change made outside warden
    /// (SQL, Better-Auth) reaches its cache through a PostgreSQL notification, a few
    /// milliseconds after the commit. Returns the last answer (the caller asserts on it).
    pub async fn warden_get_once_seen(
        &self,
        path: &str,
        bearer: &str,
        seen: impl Fn(u16, &Value) -> bool,
    ) -> (u16, Value) {
        let start = Instant::now();
        loop {
            let (status, body) = self.warden_get(path, bearer).await;
            if seen(status, &body) || start.elapsed() > Duration::from_secs(1) {
                eprintln!("seen after {} ms", start.elapsed().as_millis());
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// The decoded JOSE header of a JWT.
pub fn jwt_header(jwt: &str) -> Value {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap()
}

/// One of the crate's examples (`examples/<name>.rs`, built beside the test binaries: `cargo
/// test` builds them), run against the stack's database and Better-Auth on 127.0.0.1:`port`
/// with `vars` besides; killed when dropped. Returns once it answers a GET of `probe`.
pub async fn start_example(
    stack: &Stack,
    name: &str,
    port: u16,
    vars: &[(&str, String)],
    probe: &str,
) -> Child {
    let binary = crate::support::warden_binary()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build --example {name}` (cargo test builds it)",
        binary.display()
    );
    let mut command = Command::new(binary);
    command
        .env("DATABASE_URL", &stack.db.url)
        .env("BETTER_AUTH_URL", &stack.auth_url)
        .env("BETTER_AUTH_SECRET", SECRET)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn");
    for (key, value) in vars {
        command.env(key, value);
    }
    let child = command
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}{probe}");
    let start = Instant::now();
    while stack.http.get(&url).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the example {name} did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child
}

//! Any backend behind warden: the forward-auth recipes in `deploy/forward-auth/` run as they
//! are (only their addresses changed) in real nginx and Caddy, in front of a tiny upstream that
//! echoes what it receives, with the real Better-Auth signing and warden deciding.
//!
//! Needs `nginx` (with the auth_request module, as Debian's has) and `caddy`. Without them the
//! tests say so and pass, except under CI (`CI` set), where they fail.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::stack::{Options, Stack, free_port};

fn recipe(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/forward-auth")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `true` when `program` can run; `false` (with a note) when it is not installed outside CI.
fn available(program: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is not installed (apt-get install nginx caddy)"
        );
        eprintln!("SKIPPED: {program} is not installed (apt-get install nginx caddy)");
    }
    found
}

/// The upstream app: answers with the method, path and headers it received.
async fn echo() -> (u16, tokio::task::JoinHandle<()>) {
    let router = axum::Router::new().fallback(
        |method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap| async move {
            let headers: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                .collect();
            axum::Json(json!({"method": method.as_str(), "path": uri.path(), "headers": headers}))
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (
        port,
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() }),
    )
}

struct Gateway {
    url: String,
    _child: Child,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", crate::stack::random_hex(6)));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The recipe with the test's addresses in place of the example ones.
fn addresses(text: &str, listen: u16, app: u16, warden: &str) -> String {
    let warden = warden.trim_start_matches("http://");
    text.replace("127.0.0.1:3001", &format!("127.0.0.1:{app}"))
        .replace("127.0.0.1:8080", warden)
        .replace("listen 8000;", &format!("listen 127.0.0.1:{listen};"))
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{listen}"))
}

async fn wait_for_port(port: u16, what: &str, log: &Path) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{what} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Gateway {
    async fn nginx(app: u16, warden: &str) -> Self {
        let dir = TempDir::new("warden-nginx");
        let port = free_port();
        let site = addresses(&recipe("nginx.conf"), port, app, warden);
        let d = dir.0.display();
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n");
        let main = format!(
            "{user}daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log warn;
             events {{ worker_connections 256; }}
             http {{
               access_log off;
               client_body_temp_path {d}/client; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
               {site}
             }}",
            user = if root { "user root; " } else { "" },
        );
        std::fs::write(dir.0.join("nginx.conf"), main).unwrap();
        let child = Command::new("nginx")
            .args(["-p", &d.to_string(), "-c", &format!("{d}/nginx.conf")])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_for_port(port, "nginx", &dir.0.join("error.log")).await;
        Self {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
            _dir: dir,
        }
    }

    async fn caddy(app: u16, warden: &str) -> Self {
        let dir = TempDir::new("warden-caddy");
        let port = free_port();
        let file = dir.0.join("Caddyfile");
        std::fs::write(&file, addresses(&recipe("Caddyfile"), port, app, warden)).unwrap();
        let log = dir.0.join("caddy.log");
        let child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&file)
            .env("XDG_DATA_HOME", &dir.0)
            .env("XDG_CONFIG_HOME", &dir.0)
            .env("HOME", &dir.0)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_for_port(port, "caddy", &log).await;
        Self {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
            _dir: dir,
        }
    }
}

/// One request through the gateway: status, `WWW-Authenticate`, and what the upstream saw.
async fn through(
    http: &reqwest::Client,
    gateway: &Gateway,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let mut request = http.request(method, format!("{}{path}", gateway.url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, challenge, response.json().await.unwrap_or(Value::Null))
}

/// What the gateway scenarios need: users with JWTs and Better-Auth's session cookie.
struct People {
    user_id: String,
    user_jwt: String,
    user_cookie: String,
    admin_jwt: String,
    admin_session: String,
}

async fn people(stack: &Stack) -> People {
    let admin_session = stack.sign_up_and_in("Admin", "admin@gateway.test").await;
    sqlx::query(r#"UPDATE "user" SET role = 'admin' WHERE email = 'admin@gateway.test'"#)
        .execute(&stack.pool)
        .await
        .unwrap();
    let (status, _, body) = stack
        .auth_post(
            "/sign-up/email",
            None,
            json!({"name": "User", "email": "user@gateway.test", "password": crate::stack::PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Sign in as a browser would: Better-Auth answers with its session cookie.
    let (status, headers, _) = stack
        .auth_post(
            "/sign-in/email",
            None,
            json!({"email": "user@gateway.test", "password": crate::stack::PASSWORD}),
        )
        .await;
    assert_eq!(status, 200);
    let user_cookie = headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .find(|c| c.starts_with("better-auth.session_token="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let user_session = headers["set-auth-token"].to_str().unwrap().to_owned();
    let user_jwt = stack.jwt(&user_session).await;
    let (_, me) = stack.warden_get("/users/me", &user_jwt).await;
    People {
        user_id: me["id"].as_str().unwrap().to_owned(),
        user_jwt,
        user_cookie,
        admin_jwt: stack.jwt(&admin_session).await,
        admin_session,
    }
}

async fn scenarios(name: &str, stack: &Stack, gateway: &Gateway, p: &People) {
    use reqwest::Method;
    let http = reqwest::Client::new();
    let bearer = |jwt: &str| format!("Bearer {jwt}");
    let mut transcript = Vec::new();

    // A user: the app sees who warden says, never what the client claims.
    let user = bearer(&p.user_jwt);
    let (status, _, seen) = through(
        &http,
        gateway,
        Method::GET,
        "/notes",
        &[
            ("authorization", &user),
            ("x-auth-user-id", "admin-forged"),
            ("x-auth-user-role", "admin"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    let headers = &seen["headers"];
    assert_eq!(headers["x-auth-user-id"], p.user_id.as_str(), "{seen}");
    assert_eq!(headers["x-auth-user-email"], "user@gateway.test");
    assert_eq!(headers["x-auth-user-role"], "user");
    assert!(
        headers["x-auth-session-id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    transcript.push(format!(
        "GET /notes with the user's JWT and forged X-Auth-User-Id: {status}, upstream saw x-auth-user-id={}",
        headers["x-auth-user-id"]
    ));

    // No credential: 401 at the gateway, with warden's challenge.
    let (status, challenge, _) = through(&http, gateway, Method::GET, "/notes", &[]).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer")));
    transcript.push(format!(
        "GET /notes without a token: {status}, WWW-Authenticate: {challenge:?}"
    ));

    // Admin pages: the role is required.
    let (status, _, _) = through(
        &http,
        gateway,
        Method::GET,
        "/admin/users",
        &[("authorization", &user)],
    )
    .await;
    assert_eq!(status, 403);
    let admin = bearer(&p.admin_jwt);
    let (status, _, seen) = through(
        &http,
        gateway,
        Method::GET,
        "/admin/users",
        &[("authorization", &admin)],
    )
    .await;
    assert_eq!(
        (status, seen["headers"]["x-auth-user-role"].as_str()),
        (200, Some("admin")),
        "{seen}"
    );
    transcript.push(format!("GET /admin/users: user 403, admin {status}"));

    // Browsers with Better-Auth's session cookie (COOKIE_AUTH=true on warden).
    let cookie = p.user_cookie.as_str();
    let (status, _, seen) = through(&http, gateway, Method::GET, "/notes", &[("cookie", cookie)]).await;
    assert_eq!(
        (status, seen["headers"]["x-auth-user-id"].as_str()),
        (200, Some(p.user_id.as_str()))
    );
    let (without, _, _) = through(&http, gateway, Method::POST, "/notes", &[("cookie", cookie)]).await;
    let (evil, _, _) = through(
        &http,
        gateway,
        Method::POST,
        "/notes",
        &[("cookie", cookie), ("origin", "http://evil.test")],
    )
    .await;
    let (trusted, _, seen) = through(
        &http,
        gateway,
        Method::POST,
        "/notes",
        &[("cookie", cookie), ("origin", "http://app.test")],
    )
    .await;
    assert_eq!((without, evil, trusted), (403, 403, 200), "{seen}");
    assert_eq!(seen["method"], "POST");
    transcript.push(format!(
        "cookie: GET {status}; POST without Origin {without}, from http://evil.test {evil}, from http://app.test {trusted}"
    ));
    eprintln!("{name} forward auth:\n  {}", transcript.join("\n  "));

    // Banned through Better-Auth: refused at the gateway on the next request.
    let (status, _, body) = stack
        .auth_post(
            "/admin/ban-user",
            Some(&p.admin_session),
            json!({"userId": p.user_id, "banReason": "spam"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let start = Instant::now();
    let status = loop {
        let (status, _, _) =
            through(&http, gateway, Method::GET, "/notes", &[("authorization", &user)]).await;
        if status == 403 || start.elapsed() > Duration::from_secs(1) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(status, 403);
    eprintln!("  after a ban through Better-Auth: {status}");
}

fn cookie_options() -> Options {
    Options {
        warden_env: vec![
            ("COOKIE_AUTH", "true".into()),
            ("TRUSTED_ORIGINS", "http://app.test".into()),
            ("TRUSTED_PROXIES", "127.0.0.1".into()),
        ],
        ..Options::default()
    }
}

#[tokio::test]
async fn nginx_auth_request_in_front_of_any_backend() {
    if !available("nginx") {
        return;
    }
    let stack = Stack::start(cookie_options()).await;
    let people = people(&stack).await;
    let (app, _echo) = echo().await;
    let gateway = Gateway::nginx(app, &stack.warden_url).await;
    scenarios("nginx", &stack, &gateway, &people).await;
    stack.stop().await;
}

#[tokio::test]
async fn caddy_forward_auth_in_front_of_any_backend() {
    if !available("caddy") {
        return;
    }
    let stack = Stack::start(cookie_options()).await;
    let people = people(&stack).await;
    let (app, _echo) = echo().await;
    let gateway = Gateway::caddy(app, &stack.warden_url).await;
    scenarios("Caddy", &stack, &gateway, &people).await;
    stack.stop().await;
}

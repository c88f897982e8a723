//! Any backend behind warden: the forward-auth recipes in `deploy/forward-auth/` run as they
//! are (only their addresses changed) in real nginx and Caddy, in front of a tiny upstream that
//! echoes what it receives and logs every request that reaches it, with the real Better-Auth
//! signing and warden deciding. Each gateway gets the same scenarios:
//!
//! - every name on warden's list of identity headers (`IDENTITY_HEADERS`), in every spelling a
//!   CGI or WSGI server folds into it (`X_Auth_User_Id`, `X-Auth_User-Id`, ...), forged by a
//!   signed-in user: the app sees exactly what warden answered for that credential (asked
//!   directly), and nothing under a name warden did not answer;
//! - every spelling of `/admin` (case, slashes, `%61`, dot segments, `;`, suffixes), written
//!   byte for byte over TCP: 403 for a plain user without reaching the app, 200 for an admin;
//! - cookie POSTs from a foreign origin claiming `GET` in each method header (403), cookie GETs
//!   claiming `POST` (200: warden judges the method the gateway received), a trusted origin;
//! - a query string (`?role=admin&x=1`) reaching the app and never warden;
//! - keep-alive: requests one after another reuse the gateway's connections to warden and to
//!   the app instead of opening new ones (nginx's default would open one of each per request).
//!
//! Each test prints a transcript (`cargo nextest run --test e2e gateway --no-capture`).
//! Traefik cannot run here: `tests/integration/forward_recipes.rs` checks its file instead.
//!
//! Needs `nginx` (with the auth_request module, as Debian's has) and `caddy`. Without them the
//! tests say so and pass, except under CI (`CI` set), where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use warden::server::IDENTITY_HEADERS;

use crate::stack::{Options, Stack, port_of};
use crate::support::{free_port, random_hex, repo};

fn recipe(name: &str) -> String {
    let path = repo().join("deploy/forward-auth").join(name);
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

/// The upstream app: answers with the method, URI and headers it received (a repeated header's
/// values joined by ", "), and keeps each answer in its log: the admin gate's proof is that a
/// refused request never arrives.
#[derive(Clone, Default)]
struct Echo {
    log: Arc<Mutex<Vec<Value>>>,
}

impl Echo {
    fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn last(&self) -> Value {
        self.log.lock().unwrap().last().cloned().unwrap_or(Value::Null)
    }
}

async fn echo() -> (u16, Echo, tokio::task::JoinHandle<()>) {
    let app = Echo::default();
    let log = app.clone();
    let router = axum::Router::new().fallback(
        move |method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap| {
            let log = log.clone();
            async move {
                let mut seen = serde_json::Map::new();
                for (name, value) in &headers {
                    let value = value.to_str().unwrap_or("");
                    let joined = match seen.get(name.as_str()).and_then(Value::as_str) {
                        Some(earlier) => format!("{earlier}, {value}"),
                        None => value.to_owned(),
                    };
                    seen.insert(name.to_string(), json!(joined));
                }
                let answer = json!({
                    "method": method.as_str(),
                    "path": uri.path(),
                    "uri": uri.path_and_query().map_or("", |p| p.as_str()),
                    "headers": seen,
                });
                log.log.lock().unwrap().push(answer.clone());
                axum::Json(answer)
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (
        port,
        app,
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() }),
    )
}

struct Gateway {
    url: String,
    /// The ports of the app and of warden behind it, whose connections the keep-alive check
    /// counts.
    app: u16,
    warden: u16,
    _child: Child,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", random_hex(6)));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The recipe with the test's addresses in place of the example ones (for nginx, the `server`
/// lines of its upstream blocks and its `listen`; for Caddy, the site and the upstreams).
fn addresses(text: &str, listen: u16, app: u16, warden: &str) -> String {
    for example in ["127.0.0.1:3001", "127.0.0.1:8080"] {
        assert!(text.contains(example), "the recipe no longer names {example}");
    }
    assert!(
        text.contains("listen 8000;") || text.contains("127.0.0.1:8000"),
        "the recipe no longer listens on 8000"
    );
    let warden = warden.trim_start_matches("http://");
    text.replace("127.0.0.1:3001", &format!("127.0.0.1:{app}"))
        .replace("127.0.0.1:8080", warden)
        .replace("listen 8000;", &format!("listen 127.0.0.1:{listen};"))
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{listen}"))
}

/// Every TCP connection on this machine to `port` that the kernel still knows of, open or in
/// TIME-WAIT, named by its client's end (address and port, as /proc/net/tcp spells them). A
/// connection closed by either side stays in TIME-WAIT on that side for a minute, so two calls
/// a few seconds apart tell how many connections were opened in between.
fn connections_to(port: u16) -> BTreeSet<String> {
    let mut clients = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for row in text.lines().skip(1) {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let (Some(local), Some(remote), Some(state)) = (fields.get(1), fields.get(2), fields.get(3))
            else {
                continue;
            };
            let port_in = |end: &str| {
                end.rsplit_once(':')
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            };
            if *state == "0A" {
                continue; // the listening socket
            }
            if port_in(local) == Some(port) {
                clients.insert((*remote).to_owned());
            } else if port_in(remote) == Some(port) {
                clients.insert((*local).to_owned());
            }
        }
    }
    clients
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
        // One process (no master): the test kills it on drop, and a killed master would
        // leave its worker serving the port.
        let main = format!(
            "{user}daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log warn;
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
            app,
            warden: port_of(warden),
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
            app,
            warden: port_of(warden),
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

/// One request written by hand, its target exactly as given: HTTP clients (reqwest, browsers)
/// resolve `/./admin`, `/x/../admin` and merge `//admin` before sending, a hostile client does
/// not. Returns the gateway's status.
async fn raw(gateway: &Gateway, target: &str, headers: &[(&str, &str)]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = gateway.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("GET {target}: no status line in {answer:?}"))
}

/// What the gateway scenarios need: users with JWTs and Better-Auth's session cookie; the
/// user is a member of an organization, active in their session, so warden answers
/// `X-Auth-Org-Id` and `X-Auth-Org-Role` too.
struct People {
    user_id: String,
    user_jwt: String,
    /// An API key of the user's (rate limiting off), and one with no use left (a refill far off).
    user_key: String,
    used_up_key: String,
    /// A key whose rate-limit window is full (a minute long).
    limited_key: String,
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
    let user_id = me["id"].as_str().unwrap().to_owned();
    for statement in [
        r#"INSERT INTO organization (id, name, slug, created_at) VALUES ('org-gateway', 'Gateway', 'gateway', now())"#,
        r#"INSERT INTO member (id, organization_id, user_id, role, created_at) VALUES ('member-gateway', 'org-gateway', $1, 'member', now())"#,
        r#"UPDATE session SET active_organization_id = 'org-gateway' WHERE user_id = $1"#,
    ] {
        sqlx::query(statement)
            .bind(&user_id)
            .execute(&stack.pool)
            .await
            .unwrap();
    }
    // API keys as the api-key plugin stores them: hashed, the user's.
    let (user_key, used_up_key) = (
        "gateway-user-key-00000000000000000000".to_owned(),
        "gateway-used-up-key-000000000000000000".to_owned(),
    );
    for (id, key, remaining) in [
        ("key-gateway", &user_key, None),
        ("key-used-up", &used_up_key, Some(0)),
    ] {
        sqlx::query(
            "INSERT INTO apikey (id, config_id, reference_id, key, enabled, rate_limit_enabled, remaining, \
             refill_amount, refill_interval, created_at, updated_at) \
             VALUES ($1, 'default', $2, $3, true, false, $4, 5, 86400000, now(), now())",
        )
        .bind(id)
        .bind(&user_id)
        .bind(warden::testing::auth::api_key::stored_form(key, true))
        .bind(remaining)
        .execute(&stack.pool)
        .await
        .unwrap();
    }
    let limited_key = "gateway-limited-key-0000000000000000000".to_owned();
    sqlx::query(
        "INSERT INTO apikey (id, config_id, reference_id, key, enabled, rate_limit_enabled, rate_limit_max, \
         rate_limit_time_window, request_count, last_request, created_at, updated_at) \
         VALUES ('key-limited', 'default', $1, $2, true, true, 1, 60000, 1, now(), now(), now())",
    )
    .bind(&user_id)
    .bind(warden::testing::auth::api_key::stored_form(&limited_key, true))
    .execute(&stack.pool)
    .await
    .unwrap();
    People {
        limited_key,
        user_id,
        user_jwt,
        user_key,
        used_up_key,
        user_cookie,
        admin_jwt: stack.jwt(&admin_session).await,
        admin_session,
    }
}

/// The identity headers warden itself answers for a credential (lower-case name → value),
/// asked directly, without a gateway: what the app must see, and all it may see.
async fn answered(stack: &Stack, credential: (&str, &str)) -> BTreeMap<String, String> {
    let response = stack
        .http
        .get(format!("{}/auth/verify", stack.warden_url))
        .header(credential.0, credential.1)
        .header("x-forwarded-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    IDENTITY_HEADERS
        .iter()
        .filter_map(|h| {
            let value = response.headers().get(h.name)?.to_str().unwrap();
            Some((h.name.to_ascii_lowercase(), value.to_owned()))
        })
        .collect()
}

/// A forged value for every spelling of every name on warden's list.
fn forgeries() -> Vec<(String, &'static str)> {
    IDENTITY_HEADERS
        .iter()
        .flat_map(|h| {
            let value = match h.name {
                "X-Auth-User-Role" => "admin",
                "X-Auth-Org-Id" => "victim-org",
                "X-Auth-Org-Role" => "owner",
                "X-Auth-User-Email-Verified" => "true",
                _ => "forged",
            };
            h.spellings().into_iter().map(move |s| (s, value))
        })
        .collect()
}

/// Each identity header the upstream saw that warden did not answer in exactly that form
/// (another value, a spelling with underscores, one warden did not send), and each answered
/// one it did not see. Empty when the app saw warden's answer and nothing else.
fn identity_differences(seen: &Value, answered: &BTreeMap<String, String>) -> Vec<String> {
    let on_the_list = |name: &str| {
        IDENTITY_HEADERS
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(&name.replace('_', "-")))
    };
    let headers = seen["headers"].as_object().cloned().unwrap_or_default();
    let mut differences = Vec::new();
    for (name, value) in &headers {
        let value = value.as_str().unwrap_or_default();
        if !on_the_list(name) {
            continue;
        }
        match answered.get(name) {
            Some(answer) if answer == value => {}
            Some(answer) => differences.push(format!("{name}: {value:?} (warden answered {answer:?})")),
            None => differences.push(format!("{name}: {value:?} (warden answered none)")),
        }
    }
    for name in answered.keys() {
        if !headers.contains_key(name) {
            differences.push(format!("no {name} (warden answered it)"));
        }
    }
    differences
}

/// Every spelling of /admin an app's router may take for its admin pages: any case, no
/// trailing slash, percent-encoded, doubled slashes, dot segments, `;` parameters, suffixes.
const ADMIN_PATHS: [&str; 12] = [
    "/admin",
    "/admin/",
    "/admin/users",
    "/ADMIN/users",
    "/Admin",
    "/aDmIn/x",
    "/%61dmin/users",
    "//admin/users",
    "/./admin/users",
    "/x/../admin/users",
    "/admin;x/users",
    "/admin.json",
];

/// The transcript of one gateway's scenarios: every line is printed, and a line that broke
/// the rule is marked and makes the test fail at the end, so one run names every gap.
struct Transcript {
    name: &'static str,
    lines: Vec<String>,
    failures: Vec<String>,
}

impl Transcript {
    fn check(&mut self, ok: bool, line: String) {
        if ok {
            self.lines.push(line);
        } else {
            self.lines.push(format!("FAILED: {line}"));
            self.failures.push(line);
        }
    }

    fn finish(self) {
        eprintln!("{} forward auth:\n  {}", self.name, self.lines.join("\n  "));
        assert!(
            self.failures.is_empty(),
            "{} let through:\n  {}",
            self.name,
            self.failures.join("\n  ")
        );
    }
}

async fn scenarios(name: &'static str, stack: &Stack, gateway: &Gateway, app: &Echo, p: &People) {
    use reqwest::Method;
    let http = reqwest::Client::new();
    let bearer = |jwt: &str| format!("Bearer {jwt}");
    let user = bearer(&p.user_jwt);
    let admin = bearer(&p.admin_jwt);
    let cookie = p.user_cookie.as_str();
    let mut t = Transcript {
        name,
        lines: Vec::new(),
        failures: Vec::new(),
    };
    assert_eq!(
        answered(stack, ("authorization", &user)).await["x-auth-user-id"],
        p.user_id
    );

    // Every name on warden's list forged by a signed-in user, as spelled, then in every
    // spelling with underscores (all underscores, then hyphens and underscores mixed): the app
    // sees warden's answer and nothing else, for a JWT and for the session cookie.
    let forged = forgeries();
    let batches: [(&str, Vec<&(String, &str)>); 3] = [
        (
            "as spelled",
            forged.iter().filter(|(n, _)| !n.contains('_')).collect(),
        ),
        (
            "with underscores only (X_Auth_User_Id)",
            forged.iter().filter(|(n, _)| !n.contains('-')).collect(),
        ),
        (
            "with hyphens and underscores mixed (X-Auth_User-Id)",
            forged
                .iter()
                .filter(|(n, _)| n.contains('-') && n.contains('_'))
                .collect(),
        ),
    ];
    for credential in [
        ("authorization", user.as_str()),
        ("cookie", cookie),
        ("x-api-key", p.user_key.as_str()),
    ] {
        let expected = answered(stack, credential).await;
        for (spelled, batch) in &batches {
            let mut headers: Vec<(&str, &str)> = batch.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            headers.push(credential);
            let (status, _, seen) = through(&http, gateway, Method::GET, "/notes", &headers).await;
            let differences = identity_differences(&seen, &expected);
            let request = format!(
                "GET /notes, {} credential, {} identity headers forged {spelled}: {status}",
                credential.0,
                batch.len()
            );
            if *spelled != "as spelled" {
                let outcome = if differences.is_empty() {
                    "the app saw warden's answer, none of them".to_owned()
                } else {
                    format!("the app saw {}", differences.join("; "))
                };
                t.check(
                    status == 200 && differences.is_empty(),
                    format!("{request}; {outcome}"),
                );
                continue;
            }
            t.check(status == 200, format!("{request}; the app saw:"));
            for header in IDENTITY_HEADERS {
                let name = header.name.to_ascii_lowercase();
                let seen = seen["headers"][&name].as_str();
                let answer = expected.get(&name).map(String::as_str);
                let line = match (seen, answer) {
                    (None, None) => "(none: warden answered none)".to_owned(),
                    (Some(seen), Some(answer)) if seen == answer => format!("{seen} (warden's answer)"),
                    (seen, answer) => format!("{seen:?}, but warden answered {answer:?}"),
                };
                t.check(seen == answer, format!("    {}: {line}", header.name));
            }
        }
    }

    // No credential: 401 at the gateway, with warden's challenge.
    let (status, challenge, _) = through(&http, gateway, Method::GET, "/notes", &[]).await;
    t.check(
        (status, challenge.as_deref()) == (401, Some("Bearer")),
        format!("GET /notes without a token: {status}, WWW-Authenticate: {challenge:?}"),
    );

    // An API key with no use left: the client hears 429 with Retry-After, not a 500.
    let response = http
        .get(format!("{}/notes", gateway.url))
        .header("x-api-key", &p.used_up_key)
        .send()
        .await
        .unwrap();
    let (status, retry) = (
        response.status().as_u16(),
        response.headers().get("retry-after").is_some(),
    );
    t.check(
        status == 429 && !retry,
        format!("GET /notes with a used-up API key: {status}, Retry-After {retry}"),
    );
    let response = http
        .get(format!("{}/notes", gateway.url))
        .header("x-api-key", &p.limited_key)
        .send()
        .await
        .unwrap();
    let (status, retry) = (
        response.status().as_u16(),
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok()),
    );
    t.check(
        status == 429 && retry.is_some_and(|s| (50..=60).contains(&s)),
        format!("GET /notes with an API key over its rate limit: {status}, Retry-After {retry:?}"),
    );
    let (status, _, _) = through(
        &http,
        gateway,
        Method::GET,
        "/notes",
        &[("x-api-key", "no-such-key-0000000000000")],
    )
    .await;
    t.check(
        status == 401,
        format!("GET /notes with an unknown API key: {status}"),
    );

    // The client's query string is the app's, never warden's.
    let (status, _, seen) = through(
        &http,
        gateway,
        Method::GET,
        "/notes?role=admin&x=1",
        &[("authorization", &user)],
    )
    .await;
    t.check(
        status == 200
            && seen["uri"] == "/notes?role=admin&x=1"
            && seen["headers"]["x-auth-user-role"] == "user",
        format!(
            "GET /notes?role=admin&x=1 as the user: {status}, the app saw {} as role {}",
            seen["uri"], seen["headers"]["x-auth-user-role"]
        ),
    );
    let (status, _, _) = through(
        &http,
        gateway,
        Method::GET,
        "/admin/users?role=user",
        &[("authorization", &user)],
    )
    .await;
    t.check(
        status == 403,
        format!("GET /admin/users?role=user as the user: {status}"),
    );

    // Admin pages, every spelling: a plain user is stopped at the gateway, an admin gets in.
    let mut plain = Vec::new();
    let mut reached = Vec::new();
    for path in ADMIN_PATHS {
        let before = app.count();
        let status = raw(gateway, path, &[("Authorization", &user)]).await;
        if app.count() != before {
            reached.push(path);
        }
        plain.push((path, status));
    }
    t.check(
        plain.iter().all(|(_, status)| *status == 403) && reached.is_empty(),
        format!(
            "admin pages as a plain user: {}; {}",
            plain
                .iter()
                .map(|(p, s)| format!("{p} {s}"))
                .collect::<Vec<_>>()
                .join(", "),
            if reached.is_empty() {
                "the app was never reached".to_owned()
            } else {
                format!("the app was reached for {reached:?}")
            }
        ),
    );
    let mut admitted = Vec::new();
    let mut all_in = true;
    for path in ADMIN_PATHS {
        let before = app.count();
        let status = raw(gateway, path, &[("Authorization", &admin)]).await;
        let seen = app.last();
        all_in &=
            status == 200 && app.count() == before + 1 && seen["headers"]["x-auth-user-role"] == "admin";
        admitted.push(format!("{path} {status}"));
    }
    t.check(
        all_in,
        format!("admin pages as an admin: {}", admitted.join(", ")),
    );

    // Browsers with Better-Auth's session cookie (COOKIE_AUTH=true on warden): the method
    // warden judges is the one the gateway received, whatever the client claims.
    let (status, _, seen) = through(&http, gateway, Method::GET, "/notes", &[("cookie", cookie)]).await;
    t.check(
        status == 200 && seen["headers"]["x-auth-user-id"] == p.user_id.as_str(),
        format!("cookie GET /notes: {status}"),
    );
    let claims: [&[(&str, &str)]; 4] = [
        &[("x-forwarded-method", "GET")],
        &[("x-original-method", "GET")],
        &[("x-forwarded-method", "GET"), ("x-original-method", "GET")],
        &[],
    ];
    let mut refused = Vec::new();
    for claim in claims {
        let mut headers = vec![("cookie", cookie), ("origin", "http://evil.test")];
        headers.extend_from_slice(claim);
        let (status, _, _) = through(&http, gateway, Method::POST, "/notes", &headers).await;
        refused.push((said(claim), status));
    }
    t.check(
        refused.iter().all(|(_, status)| *status == 403),
        format!(
            "cookie POST /notes from http://evil.test: {}",
            refused
                .iter()
                .map(|(c, s)| format!("{c} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let mut judged = Vec::new();
    for claim in &claims[..3] {
        let posted: Vec<(&str, &str)> = claim.iter().map(|(n, _)| (*n, "POST")).collect();
        let mut headers = vec![("cookie", cookie)];
        headers.extend_from_slice(&posted);
        let (status, _, _) = through(&http, gateway, Method::GET, "/notes", &headers).await;
        judged.push((said(&posted), status));
    }
    t.check(
        judged.iter().all(|(_, status)| *status == 200),
        format!(
            "cookie GET /notes without Origin, claiming POST: {}",
            judged
                .iter()
                .map(|(c, s)| format!("{c} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let (trusted, _, seen) = through(
        &http,
        gateway,
        Method::POST,
        "/notes",
        &[("cookie", cookie), ("origin", "http://app.test")],
    )
    .await;
    let (cross_site, _, _) = through(
        &http,
        gateway,
        Method::POST,
        "/notes",
        &[
            ("cookie", cookie),
            ("origin", "http://app.test"),
            ("sec-fetch-site", "cross-site"),
        ],
    )
    .await;
    t.check(
        (trusted, seen["method"].as_str(), cross_site) == (200, Some("POST"), 403),
        format!(
            "cookie POST /notes from http://app.test: {trusted}; with Sec-Fetch-Site: cross-site: {cross_site}"
        ),
    );

    // Keep-alive: requests one after another reuse the gateway's connections to warden and to
    // the app. Without it (nginx's default, HTTP/1.0 and `Connection: close`) each request
    // opens one of each. An earlier refusal may have closed one (nginx does not read the body
    // of a subrequest's answer, so it closes that connection), so the first may open one.
    const REQUESTS: usize = 20;
    let (warden_before, app_before) = (connections_to(gateway.warden), connections_to(gateway.app));
    let mut statuses = Vec::new();
    for _ in 0..REQUESTS {
        let (status, _, _) =
            through(&http, gateway, Method::GET, "/notes", &[("authorization", &user)]).await;
        statuses.push(status);
    }
    let opened = |before: &BTreeSet<String>, port: u16| connections_to(port).difference(before).count();
    let (to_warden, to_app) = (
        opened(&warden_before, gateway.warden),
        opened(&app_before, gateway.app),
    );
    t.check(
        statuses.iter().all(|s| *s == 200) && to_warden <= 1 && to_app <= 1,
        format!(
            "{REQUESTS} requests one after another: {}; new connections to warden: {to_warden}, to the app: {to_app}",
            if statuses.iter().all(|s| *s == 200) {
                "all 200".to_owned()
            } else {
                format!("{statuses:?}")
            }
        ),
    );

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
    t.check(
        status == 403,
        format!("after a ban through Better-Auth: {status}"),
    );
    t.finish();
}

/// The method headers a request carries, for the transcript.
fn said(claim: &[(&str, &str)]) -> String {
    if claim.is_empty() {
        return "no method header".to_owned();
    }
    claim
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect::<Vec<_>>()
        .join(" + ")
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
    let (port, app, _echo) = echo().await;
    let gateway = Gateway::nginx(port, &stack.warden_url).await;
    scenarios("nginx", &stack, &gateway, &app, &people).await;
    stack.stop().await;
}

#[tokio::test]
async fn caddy_forward_auth_in_front_of_any_backend() {
    if !available("caddy") {
        return;
    }
    let stack = Stack::start(cookie_options()).await;
    let people = people(&stack).await;
    let (port, app, _echo) = echo().await;
    let gateway = Gateway::caddy(port, &stack.warden_url).await;
    scenarios("Caddy", &stack, &gateway, &app, &people).await;
    stack.stop().await;
}

//! Test helpers: signing keys for all five algorithms, token minting, a JWKS server on
//! 127.0.0.1 whose answers a test controls, and app/state builders.

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;
use warden::Secret;
use warden::testing::auth::jwks::{JwksCache, JwksSource};
use warden::testing::auth::verify::ClaimRules;
use warden::testing::auth::{Auth, AuthBuilder, AuthPolicy, Verifier};

pub const ISSUER: &str = "http://auth.test:3000";

pub use warden::testing::{ALL_ALGS, TestKey, jwks_of};

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims like Better-Auth's jwt plugin emits for user `sub`.
pub fn claims(sub: &str) -> Value {
    let iat = now();
    json!({
        "iat": iat, "exp": iat + 900, "iss": ISSUER, "aud": ISSUER, "sub": sub, "id": sub,
        "name": "Test User", "email": format!("{sub}@example.com"), "emailVerified": false,
        "image": null, "createdAt": "2026-11-27T08:00:00.000Z", "updatedAt": "2026-11-27T08:00:00.000Z",
        "role": "user", "banned": false, "banReason": null, "banExpires": null,
    })
}

pub fn rules() -> ClaimRules {
    ClaimRules {
        issuer: ISSUER.into(),
        audience: vec![ISSUER.into()],
        leeway_secs: 30,
    }
}

/// A JWKS endpoint on 127.0.0.1 that counts its hits and answers what the test says.
pub struct MockJwks {
    pub url: String,
    state: Arc<MockState>,
    _server: tokio::task::JoinHandle<()>,
}

struct MockState {
    body: Mutex<String>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    hits: AtomicU64,
}

impl MockJwks {
    pub async fn start(jwks: Value) -> Self {
        Self::start_on(0, jwks).await
    }

    /// On a given port (0 = any free one).
    pub async fn start_on(port: u16, jwks: Value) -> Self {
        let state = Arc::new(MockState {
            body: Mutex::new(jwks.to_string()),
            status: AtomicU16::new(200),
            delay_ms: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        });
        let shared = Arc::clone(&state);
        let router = axum::Router::new().route(
            "/api/auth/jwks",
            get(move || {
                let s = Arc::clone(&shared);
                async move {
                    s.hits.fetch_add(1, Ordering::SeqCst);
                    let delay = s.delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    let status = StatusCode::from_u16(s.status.load(Ordering::SeqCst)).unwrap();
                    let body = s.body.lock().unwrap().clone();
                    (status, [("content-type", "application/json")], body).into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let url = format!("http://{}/api/auth/jwks", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            url,
            state,
            _server: server,
        }
    }

    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    pub fn set_jwks(&self, jwks: Value) {
        *self.state.body.lock().unwrap() = jwks.to_string();
    }

    pub fn set_body(&self, body: &str) {
        *self.state.body.lock().unwrap() = body.to_owned();
    }

    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

/// A JWKS cache on `url`, with the database fallback when `db` is given.
pub fn cache(url: &str, db: Option<PgPool>, cooldown: Duration) -> Arc<JwksCache> {
    JwksCache::new(
        JwksSource {
            url: url.to_owned(),
            client: reqwest::Client::new(),
            timeout: Duration::from_secs(2),
            db,
            db_grace: Duration::from_secs(30 * 24 * 3600),
        },
        cooldown,
    )
}

pub const SECRET: &str = "integration-test-better-auth-secret";

/// The policy `warden serve` builds from the default configuration, plus a secret and a
/// third assignable role.
pub fn policy() -> AuthPolicy {
    AuthPolicy {
        assignable_roles: vec!["admin".into(), "user".into(), "editor".into()],
        better_auth_secret: Some(Secret::new(SECRET)),
        ..AuthPolicy::default()
    }
}

/// The server's state as `warden serve` builds it (no user cache, no failure limit: tests
/// that want them say so), against `db` and the JWKS at `jwks_url`, changed by `auth`.
pub async fn state(
    db: PgPool,
    jwks_url: &str,
    policy: AuthPolicy,
    auth: impl FnOnce(AuthBuilder) -> AuthBuilder,
) -> warden::server::AppState {
    let jwks = cache(jwks_url, Some(db.clone()), Duration::from_secs(5));
    let _ = jwks.refresh().await;
    let builder = Auth::builder(db)
        .verifier(Verifier::new(jwks, rules()))
        .policy(policy)
        .user_cache(None)
        .failures_per_minute(0)
        .route_scopes(warden::server::routes::own_scope);
    warden::server::AppState::new(auth(builder).build().await.unwrap())
}

/// A response, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The status and the problem `code` (if any): what most assertions compare.
    pub fn outcome(&self) -> (u16, Option<&str>) {
        (self.status.as_u16(), self.body["code"].as_str())
    }
}

pub async fn send(app: &axum::Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// Inserts a user row the way Better-Auth writes one.
pub async fn insert_user(db: &PgPool, id: &str, email: &str) {
    sqlx::query(
        r#"INSERT INTO "user" (id, name, email, email_verified, image, created_at, updated_at, role, banned)
           VALUES ($1, 'Test User', $2, false, NULL, now(), now(), 'user', false)"#,
    )
    .bind(id)
    .bind(email)
    .execute(db)
    .await
    .unwrap();
}

/// Inserts a session row the way Better-Auth writes one; `expires_in` may be negative.
pub async fn insert_session(db: &PgPool, id: &str, user_id: &str, token: &str, expires_in_secs: i64) {
    sqlx::query(
        "INSERT INTO session (id, expires_at, token, created_at, updated_at, ip_address, user_agent, user_id)
         VALUES ($1, now() + make_interval(secs => $4), $2, now(), now(), '127.0.0.1', 'test-agent', $3)",
    )
    .bind(id)
    .bind(token)
    .bind(user_id)
    .bind(expires_in_secs as f64)
    .execute(db)
    .await
    .unwrap();
}

/// Claims for `sub` tied to session `sid`.
pub fn claims_with_sid(sub: &str, sid: &str) -> Value {
    let mut c = claims(sub);
    c["sid"] = json!(sid);
    c
}

/// warden's real server (`warden::server::run`: timeouts, connection cap, client addresses) serving
/// `state` on 127.0.0.1, stopped when dropped.
pub struct Served {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Served {
    pub async fn start(state: warden::server::AppState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = warden::server::run(listener, None, state, async move {
                let _ = stopped.await;
            })
            .await;
        });
        Self {
            addr,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response read whole as text (for `/metrics` and other non-JSON bodies).
pub async fn send_raw(
    app: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

/// A pool on `db`'s database that counts each connection given back to it: one per query
/// outside a transaction, so a test can count the reads a request took.
pub async fn counting_pool(db: &PgPool) -> (PgPool, Arc<std::sync::atomic::AtomicUsize>) {
    let released = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&released);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .after_release(move |_, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Ok(true) })
        })
        .connect_with((*db.connect_options()).clone())
        .await
        .unwrap();
    (pool, released)
}

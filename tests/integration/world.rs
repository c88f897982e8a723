//! The one entry point of the integration tests: a [`World`] is a test database with people in
//! it, a JWKS server on 127.0.0.1, and warden's app over them; a [`Caller`] is someone calling
//! that app.
//!
//! ```text
//! let w = World::new(db).await;                          // admin, alice, bob; the default server
//! w.as_admin().put("/admin/users/alice/role", json!({"role": "editor"})).await
//! w.as_alice().get("/users/me").await;  w.anonymous().get("/healthz").await
//! w.bearer(&token).get("/users/me").await                // any credential
//! let w = World::with(db, Setup::empty().policy(|p| p.session_check = Required)).await;
//! let strict = w.variant(Setup::default().auth(|a| a.failures_per_minute(5))).await;
//! let server = w.serve().await;                          // the real server, over TCP
//! ```
//!
//! People (unless [`Setup::empty`]): `admin` (role admin, session `s-admin`), `alice`
//! (sessions `s-alice-1`, `s-alice-2`, tokens `tok-alice-1`/`-2`) and `bob` (`s-bob`), each with
//! a JWT tied to their first session, signed by `w.key`, whose public key `w.jwks` serves.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use sqlx::PgPool;
use warden::server::state::Shared;
use warden::testing::auth::keys::Alg;
use warden::testing::auth::{AuthBuilder, AuthPolicy};

use crate::common::{
    self, Answer, MockJwks, Served, TestKey, claims_with_sid, insert_session, insert_user, jwks_of,
};

type AuthChange = Box<dyn FnOnce(AuthBuilder) -> AuthBuilder + Send>;
type StateChange = Box<dyn FnOnce(&mut Shared) + Send>;

/// How a [`World`]'s app differs from the default server.
pub struct Setup {
    people: bool,
    jwks: Option<Value>,
    jwks_url: Option<String>,
    policy: AuthPolicy,
    auth: Vec<AuthChange>,
    state: Vec<StateChange>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            people: true,
            jwks: None,
            jwks_url: None,
            policy: common::policy(),
            auth: Vec::new(),
            state: Vec::new(),
        }
    }
}

impl Setup {
    /// No people: the test inserts its own rows.
    pub fn empty() -> Self {
        Self {
            people: false,
            ..Self::default()
        }
    }

    /// The JWKS document served at start (default: the world's own key).
    pub fn jwks(mut self, document: Value) -> Self {
        self.jwks = Some(document);
        self
    }

    /// Fetch the JWKS from `url` instead of the world's own server (e.g. one that is down).
    pub fn jwks_url(mut self, url: &str) -> Self {
        self.jwks_url = Some(url.to_owned());
        self
    }

    /// Changes the policy (roles, session check, secret, cookies).
    pub fn policy(mut self, change: impl FnOnce(&mut AuthPolicy)) -> Self {
        change(&mut self.policy);
        self
    }

    /// Changes how the `Auth` is built (failure limit, trusted proxies, verifier, row cache).
    pub fn auth(mut self, change: impl FnOnce(AuthBuilder) -> AuthBuilder + Send + 'static) -> Self {
        self.auth.push(Box::new(change));
        self
    }

    /// Changes the server's state (HTTP settings, replica, proxy).
    pub fn state(mut self, change: impl FnOnce(&mut Shared) + Send + 'static) -> Self {
        self.state.push(Box::new(change));
        self
    }
}

pub struct World {
    pub db: PgPool,
    pub app: axum::Router,
    pub state: warden::server::AppState,
    pub key: Arc<TestKey>,
    pub jwks: Arc<MockJwks>,
    /// JWT of `admin` (session `s-admin`).
    pub admin: String,
    /// JWT of `alice` (session `s-alice-1`; she also has `s-alice-2`).
    pub alice: String,
    /// JWT of `bob` (session `s-bob`).
    pub bob: String,
}

impl World {
    /// The default server over admin, alice and bob.
    pub async fn new(db: PgPool) -> Self {
        Self::with(db, Setup::default()).await
    }

    pub async fn with(db: PgPool, mut setup: Setup) -> Self {
        let key = Arc::new(TestKey::generate(Alg::EdDsa));
        let document = setup.jwks.take().unwrap_or_else(|| jwks_of(&[&*key]));
        let jwks = Arc::new(MockJwks::start(document).await);
        if setup.people {
            insert_user(&db, "admin", "admin@example.com").await;
            insert_user(&db, "alice", "alice@example.com").await;
            insert_user(&db, "bob", "bob@example.com").await;
            sqlx::query(r#"UPDATE "user" SET role = 'admin' WHERE id = 'admin'"#)
                .execute(&db)
                .await
                .unwrap();
            insert_session(&db, "s-admin", "admin", "tok-admin", 3600).await;
            insert_session(&db, "s-alice-1", "alice", "tok-alice-1", 3600).await;
            insert_session(&db, "s-alice-2", "alice", "tok-alice-2", 3600).await;
            insert_session(&db, "s-bob", "bob", "tok-bob", 3600).await;
        }
        let admin = key.sign(&claims_with_sid("admin", "s-admin"));
        let alice = key.sign(&claims_with_sid("alice", "s-alice-1"));
        let bob = key.sign(&claims_with_sid("bob", "s-bob"));
        let state = Self::state_for(&db, &jwks, setup).await;
        Self {
            app: warden::server::app(state.clone()),
            state,
            db,
            key,
            jwks,
            admin,
            alice,
            bob,
        }
    }

    async fn state_for(db: &PgPool, jwks: &MockJwks, setup: Setup) -> warden::server::AppState {
        let Setup {
            policy,
            auth,
            state,
            jwks_url,
            ..
        } = setup;
        let url = jwks_url.unwrap_or_else(|| jwks.url.clone());
        let built = common::state(db.clone(), &url, policy, move |mut builder| {
            for change in auth {
                builder = change(builder);
            }
            builder
        })
        .await;
        built.with(move |shared| {
            for change in state {
                change(shared);
            }
        })
    }

    /// Another app over the same database, people, key and JWKS.
    pub async fn variant(&self, setup: Setup) -> Self {
        let state = Self::state_for(&self.db, &self.jwks, setup).await;
        Self {
            db: self.db.clone(),
            app: warden::server::app(state.clone()),
            state,
            key: Arc::clone(&self.key),
            jwks: Arc::clone(&self.jwks),
            admin: self.admin.clone(),
            alice: self.alice.clone(),
            bob: self.bob.clone(),
        }
    }

    /// The real server (`warden::server::run`: connections, client addresses) over this world's state.
    pub async fn serve(&self) -> Served {
        Served::start(self.state.clone()).await
    }

    pub fn as_admin(&self) -> Caller<'_> {
        self.bearer(&self.admin)
    }

    pub fn as_alice(&self) -> Caller<'_> {
        self.bearer(&self.alice)
    }

    pub fn as_bob(&self) -> Caller<'_> {
        self.bearer(&self.bob)
    }

    /// Someone sending `Authorization: Bearer <token>`.
    pub fn bearer(&self, token: &str) -> Caller<'_> {
        Caller {
            app: &self.app,
            token: Some(token.to_owned()),
            headers: Vec::new(),
        }
    }

    /// Someone with no credential.
    pub fn anonymous(&self) -> Caller<'_> {
        Caller {
            app: &self.app,
            token: None,
            headers: Vec::new(),
        }
    }

    /// A request built by the test, through the app.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        common::send(&self.app, request).await
    }

    /// Runs SQL the way Better-Auth (or an operator) would change the database.
    pub async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.db)
            .await
            .unwrap();
    }

    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn scalar_text(&self, sql: &str) -> Option<String> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// A snapshot of every row warden may write, to prove a refused request changed nothing.
    pub async fn snapshot(&self) -> String {
        let users: Vec<String> = sqlx::query_scalar(
            r#"SELECT concat_ws('|', id, name, image, role, banned, ban_reason, ban_expires, updated_at)
               FROM "user" ORDER BY id"#,
        )
        .fetch_all(&self.db)
        .await
        .unwrap();
        let sessions: Vec<(String,)> = sqlx::query_as("SELECT id FROM session ORDER BY id")
            .fetch_all(&self.db)
            .await
            .unwrap();
        let audit: i64 = sqlx::query_scalar("SELECT count(*) FROM warden_audit_log")
            .fetch_one(&self.db)
            .await
            .unwrap();
        format!("{users:?} {sessions:?} {audit}")
    }
}

/// Someone calling a world's app: a credential (or none) and extra headers.
pub struct Caller<'w> {
    app: &'w axum::Router,
    token: Option<String>,
    headers: Vec<(String, String)>,
}

impl Caller<'_> {
    /// Adds a header to every request this caller sends.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call("DELETE", path, None).await
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> Answer {
        self.call("POST", path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call("PUT", path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call("PATCH", path, Some(body)).await
    }

    /// Any method, optionally with a JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        common::send(self.app, request.unwrap()).await
    }
}

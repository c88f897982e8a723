//! A small populated world for API tests: an admin, two users, live sessions for each, and
//! JWTs tied to those sessions.

use serde_json::Value;
use sqlx::PgPool;
use warden::auth::keys::Alg;
use warden::auth::policy::AuthPolicy;

use crate::common::{self, MockJwks, TestKey, claims_with_sid, insert_session, insert_user, jwks_of};

pub struct World {
    pub db: PgPool,
    pub app: axum::Router,
    pub key: TestKey,
    pub jwks: MockJwks,
    /// JWT of `admin` (session `s-admin`).
    pub admin: String,
    /// JWT of `alice` (session `s-alice-1`; she also has `s-alice-2`).
    pub alice: String,
    /// JWT of `bob` (session `s-bob`).
    pub bob: String,
}

impl World {
    pub async fn new(db: PgPool) -> Self {
        Self::with_policy(db, common::policy()).await
    }

    pub async fn with_policy(db: PgPool, policy: AuthPolicy) -> Self {
        let key = TestKey::generate(Alg::EdDsa);
        let jwks = MockJwks::start(jwks_of(&[&key])).await;
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
        let admin = key.sign(&claims_with_sid("admin", "s-admin"));
        let alice = key.sign(&claims_with_sid("alice", "s-alice-1"));
        let bob = key.sign(&claims_with_sid("bob", "s-bob"));
        let app = warden::app(common::state(db.clone(), &jwks.url, policy).await);
        Self {
            db,
            app,
            key,
            jwks,
            admin,
            alice,
            bob,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> common::Answer {
        common::call(&self.app, method, path, token, body).await
    }

    /// Runs SQL the way Better-Auth (or an operator) would change the database.
    pub async fn exec(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
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
        // Every column warden may write, as text, one line per user.
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

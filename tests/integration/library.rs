//! warden as a library in an app of its own: the extractors on the app's own state type,
//! `MaybeAuthUser`, the rejection's `status()`/`code()`, and an `Auth` whose background tasks
//! stop with its last clone.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use sqlx::PgPool;
use warden::{Admin, ApiError, Auth, AuthUser, MaybeAuthUser};

use crate::common::{self, MockJwks, TestKey, jwks_of};
use crate::world::World;

/// The app's own state and error type, as an embedding app has them.
#[derive(Clone)]
struct Notes {
    auth: Auth,
    greeting: &'static str,
}

impl FromRef<Notes> for Auth {
    fn from_ref(app: &Notes) -> Self {
        app.auth.clone()
    }
}

/// An app's own error, built from warden's rejection through `status()` and `code()`.
struct AppError(StatusCode, String);

impl From<ApiError> for AppError {
    fn from(err: ApiError) -> Self {
        Self(err.status(), format!("auth:{}", err.code()))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

async fn hello(State(app): State<Notes>, caller: MaybeAuthUser) -> String {
    match caller.0 {
        Some(user) => format!("{} {}", app.greeting, user.user.name),
        None => format!("{} stranger", app.greeting),
    }
}

async fn mine(user: Result<AuthUser, ApiError>) -> Result<String, AppError> {
    Ok(user?.user.id.clone())
}

async fn staff(Admin(admin): Admin) -> String {
    admin.user.email.clone()
}

fn notes_app(auth: Auth) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/mine", get(mine))
        .route("/staff", get(staff))
        .with_state(Notes {
            auth,
            greeting: "hello",
        })
}

#[sqlx::test]
async fn extractors_work_on_an_apps_own_state(db: PgPool) {
    let w = World::new(db).await;
    let app = notes_app(w.state.auth.clone());
    let call = async |path: &str, token: Option<&str>| {
        let mut request = axum::http::Request::get(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let (status, _, body) =
            common::send_raw(&app, request.body(axum::body::Body::empty()).unwrap()).await;
        (status.as_u16(), body)
    };
    assert_eq!(call("/hello", None).await, (200, "hello stranger".into()));
    assert_eq!(
        call("/hello", Some(&w.alice)).await,
        (200, "hello Test User".into())
    );
    // A bad credential is refused, never silently anonymous.
    let (status, body) = call("/hello", Some("junk.junk.junk")).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_token"));
    // The app maps warden's rejection into its own error shape.
    assert_eq!(
        call("/mine", None).await,
        (401, r#"{"error":"auth:missing_token"}"#.into())
    );
    assert_eq!(call("/mine", Some(&w.bob)).await, (200, "bob".into()));
    assert_eq!(call("/staff", Some(&w.bob)).await.0, 403);
    assert_eq!(
        call("/staff", Some(&w.admin)).await,
        (200, "admin@example.com".into())
    );
}

#[sqlx::test]
async fn an_auths_background_tasks_stop_with_its_last_clone(db: PgPool) {
    let key = TestKey::generate(warden::testing::auth::keys::Alg::EdDsa);
    let jwks = MockJwks::start(jwks_of(&[&key])).await;
    let auth = Auth::builder(db.clone())
        .better_auth_url(common::ISSUER)
        .jwks_url(jwks.url.clone())
        .jwks_settings(warden::testing::auth::JwksSettings {
            refresh: Duration::from_millis(200),
            ..Default::default()
        })
        .build()
        .await
        .unwrap();
    let listeners = async || -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = 'warden-cache-listener' AND datname = current_database()",
        )
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let start = Instant::now();
    while listeners().await == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the listener never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let clone = auth.clone();
    drop(auth);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(jwks.hits() > 1, "the refresher runs while a clone lives");
    drop(clone);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hits = jwks.hits();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(jwks.hits(), hits, "no more refreshes once the last clone is gone");
    let start = Instant::now();
    while listeners().await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the listener's connection stays open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// README's embedding example is the crate docs' one, which `cargo test --doc` compiles.
#[test]
fn the_readme_example_is_the_compiled_one() {
    let root = env!("CARGO_MANIFEST_DIR");
    let docs = std::fs::read_to_string(format!("{root}/docs/embedding.md")).unwrap();
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let start = docs.find("```rust").unwrap();
    let end = start + docs[start..].find("\n```\n").unwrap();
    let example = &docs[start..end];
    assert!(example.contains("warden::Auth::from_env()"));
    assert!(
        readme.contains(example),
        "README's embedding example differs from docs/embedding.md"
    );
}

/// docs/embedding.md's example is the code of `tests/library-only/`, the crate `.ci/run` builds
/// against warden with `default-features = false`: what the document shows builds without the
/// server.
#[test]
fn the_embedding_example_is_the_library_only_crate() {
    let root = crate::support::repo();
    let document = std::fs::read_to_string(root.join("docs/embedding.md")).unwrap();
    let shown = document
        .split("```rust,no_run\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a rust,no_run block");
    let built = std::fs::read_to_string(root.join("tests/library-only/src/main.rs")).unwrap();
    let code = built.split_once("\n\n").map(|(_comment, code)| code).unwrap();
    assert_eq!(
        code, shown,
        "docs/embedding.md and tests/library-only/src/main.rs differ"
    );
}

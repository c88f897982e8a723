//! A small notes service of its own, behind warden's extractors: what a Rust team with its own
//! API does with warden. Its table lives in its own schema (`notes`), created here; warden's
//! migrations know nothing of it.
//!
//! - `GET /notes`: the caller's notes, newest first (a JWT or a session token).
//! - `POST /notes` with `{"text": "..."}`: 201 with the new note.
//! - `GET /staff`: admins only (Better-Auth's rule: an admin role or `ADMIN_USER_IDS`).
//! - `GET /notes/export`: for scripts: the notes of an API key's owner (Better-Auth's api-key
//!   plugin), for a key whose own permissions grant `notes: ["export"]`. (With
//!   `API_KEYS_AS_USERS=true` a user's key also works on `/notes` as its owner.)
//!
//! Same environment as the warden server (`DATABASE_URL`, `BETTER_AUTH_URL`, ...), plus
//! `BIND_ADDR` (default `127.0.0.1:8090`):
//!
//!     DATABASE_URL=postgres://postgres@127.0.0.1:5432/warden_dev cargo run --example embed

use std::net::SocketAddr;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use warden::{Admin, ApiError, ApiKeyOwner, Auth, AuthUser, Permission, RequireApiKeyPermission};

/// The app's own state: warden's `Auth` is one part of it.
#[derive(Clone)]
struct App {
    auth: Auth,
    db: PgPool,
}

impl FromRef<App> for Auth {
    fn from_ref(app: &App) -> Self {
        app.auth.clone()
    }
}

#[derive(Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
struct Note {
    id: i64,
    text: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNote {
    text: String,
}

/// The caller's notes only: the user id comes from warden, never from the request.
async fn my_notes(user: AuthUser, State(app): State<App>) -> Result<Json<Vec<Note>>, ApiError> {
    let notes =
        sqlx::query_as("SELECT id, text, created_at FROM notes.note WHERE user_id = $1 ORDER BY id DESC")
            .bind(&user.user.id)
            .fetch_all(&app.db)
            .await?;
    Ok(Json(notes))
}

async fn add_note(
    user: AuthUser,
    State(app): State<App>,
    Json(new): Json<NewNote>,
) -> Result<(StatusCode, Json<Note>), ApiError> {
    let text = new.text.trim();
    if text.is_empty() || text.chars().count() > 1000 || text.chars().any(char::is_control) {
        // warden's error type renders problem+json with a stable code; an app may use its own.
        return Err(ApiError::ValidationFailed(
            "`text` must be 1 to 1000 characters, without control characters".into(),
        ));
    }
    let note = sqlx::query_as(
        "INSERT INTO notes.note (user_id, text) VALUES ($1, $2) RETURNING id, text, created_at",
    )
    .bind(&user.user.id)
    .bind(text)
    .fetch_one(&app.db)
    .await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// What a key must be granted to export notes: its own `permissions`, `{"notes": ["export"]}`.
struct ExportNotes;

impl Permission for ExportNotes {
    const STATEMENTS: &'static [(&'static str, &'static [&'static str])] = &[("notes", &["export"])];
}

/// For scripts with an API key: the key's owner's notes. The key is checked as Better-Auth's
/// plugin checks it (and one use is counted) before this runs.
async fn export_notes(
    key: RequireApiKeyPermission<ExportNotes>,
    State(app): State<App>,
) -> Result<Json<Vec<Note>>, ApiError> {
    let ApiKeyOwner::User(user_id) = &key.key.owner else {
        return Err(ApiError::Forbidden(
            "an organization's key has no notes of its own".into(),
        ));
    };
    let notes =
        sqlx::query_as("SELECT id, text, created_at FROM notes.note WHERE user_id = $1 ORDER BY id DESC")
            .bind(user_id)
            .fetch_all(&app.db)
            .await?;
    Ok(Json(notes))
}

async fn staff(Admin(admin): Admin) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "staff": admin.user.email }))
}

/// The example's own schema, next to (not inside) warden's.
async fn create_schema(db: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS notes;
         CREATE TABLE IF NOT EXISTS notes.note (
             id bigserial PRIMARY KEY,
             user_id text NOT NULL,
             text text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now()
         );
         CREATE INDEX IF NOT EXISTS note_user_idx ON notes.note (user_id, id DESC);",
    )
    .execute(db)
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let auth = Auth::from_env().await?;
    let db = auth.db().clone();
    create_schema(&db).await?;
    let app = App { auth, db };
    let router = Router::new()
        .route("/notes", get(my_notes).post(add_note))
        .route("/notes/export", get(export_notes))
        .route("/staff", get(staff))
        .with_state(app);
    let addr: SocketAddr = std::env::var("BIND_ADDR")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:8090".into())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "notes example listening");
    // axum's own server, as docs/embedding.md serves: the app chooses its HTTP server, and
    // ConnectInfo gives warden the client's address for its per-client limits.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

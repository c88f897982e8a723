// The example of docs/embedding.md, as a crate of its own that depends on warden with
// `default-features = false`: the library alone, no server. `.ci/run` checks that it builds;
// tests/integration/library.rs checks that it is the very code the document shows.

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use sqlx::PgPool;

#[derive(Clone)]
struct App {
    auth: warden::Auth,
    notes: PgPool,
}

impl FromRef<App> for warden::Auth {
    fn from_ref(app: &App) -> Self {
        app.auth.clone()
    }
}

async fn my_notes(
    user: warden::AuthUser,
    State(app): State<App>,
) -> Result<Json<Vec<String>>, warden::ApiError> {
    let notes = sqlx::query_scalar("SELECT text FROM notes.note WHERE user_id = $1")
        .bind(&user.user.id)
        .fetch_all(&app.notes)
        .await?;
    Ok(Json(notes))
}

async fn staff(warden::Admin(admin): warden::Admin) -> String {
    format!("hello, {}", admin.user.email)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The same variables as the warden server: DATABASE_URL, BETTER_AUTH_URL, ...
    let auth = warden::Auth::from_env().await?;
    let app = App { notes: auth.db().clone(), auth };
    let router = Router::new()
        .route("/notes", get(my_notes))
        .route("/staff", get(staff))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8090").await?;
    // ConnectInfo gives warden the client's address for its per-client limits.
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
    Ok(())
}

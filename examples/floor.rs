//! The floor for warden's benchmarks: the same HTTP stack (warden's connection handling and
//! every layer: request ids, trace spans, metrics, shedding, limits) serving the same user
//! JSON `GET /users/me` answers, from memory, with no authentication at all. warden's
//! throughput divided by this one's is the share the security work costs.
//!
//!     BIND_ADDR=127.0.0.1:18092 cargo run --release --example floor

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

/// A user as `/users/me` renders it (the same fields, about the same size).
const USER: &str = r#"{"id":"u1","email":"user1@bench.test","emailVerified":true,"name":"User 1","image":null,"role":"user","roles":["user"],"banned":false,"banReason":null,"banExpires":null,"createdAt":"2026-12-01T12:00:00.000000Z","updatedAt":"2026-12-01T12:00:00.000000Z"}"#;

/// The allocator the `warden` binary uses, so the comparison is of the work, not of malloc.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn me() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], USER)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("BIND_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:18092".into())
        .parse()?;
    // The server's layers and metrics recorder, as warden::server::app installs them.
    warden::server::metrics::handle();
    let settings = Arc::new(warden::server::http::HttpSettings {
        max_concurrent_requests: 10_000,
        ..warden::server::http::HttpSettings::default()
    });
    let router: Router = warden::server::http::layered(Router::new().route("/users/me", get(me)), &settings);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let limits = settings.connections;
    warden::server::http::server::serve(listener, router, limits, warden::server::shutdown_signal()).await?;
    Ok(())
}

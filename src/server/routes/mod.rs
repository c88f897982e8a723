//! The `warden` server's HTTP API: one module per feature, each with its own `router()`,
//! assembled here and nowhere else (feature modules never import this assembly).
//!
//! - [`users`]: `/users/me` and the caller's sessions and accounts.
//! - [`admin`]: `/admin`, user management with Better-Auth's admin rules.
//! - [`organizations`]: `/users/me/organizations`, `/orgs/{orgId}` for members.
//! - [`forward`]: `/auth/verify`, forward auth for nginx, Traefik and Caddy.
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`proxy`]: `/api/auth/*` forwarded to Better-Auth (`AUTH_PROXY=true`).
//! - [`resource`]: `/.well-known/oauth-protected-resource`, the OAuth resource metadata
//!   (`RESOURCE_URL`).
//! - [`console`]: `/console`, the pages for people (`CONSOLE=true`).
//! - [`docs`]: the OpenAPI document's frame and shared error responses; [`views`]: JSON shapes;
//!   [`extract`]: body, query and path extractors with problem+json rejections.
//!
//! Every route is written against the public API an outside app has (`warden::Auth` and the
//! extractors), plus the server's own [`AppState`].

pub mod admin;
pub mod console;
pub(crate) mod cursor;
pub mod docs;
pub mod extract;
pub mod forward;
pub mod health;
pub mod organizations;
pub mod proxy;
pub mod resource;
pub mod users;
pub mod views;

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::server::state::AppState;

/// Every documented route, and the OpenAPI document they make together.
///
/// Every route that takes a credential answers `Cache-Control: no-store` and `Vary:
/// Authorization, Cookie, X-Api-Key` ([`crate::server::http::mark_private`]), refusals included; the public ones
/// (health, docs, console, metrics) keep their own caching.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let private = || tower::util::MapResponseLayer::new(crate::server::http::mark_private);
    OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .merge(users::router().route_layer(private()))
        .merge(admin::router().route_layer(private()))
        .merge(organizations::router().route_layer(private()))
        .merge(forward::router().route_layer(private()))
        .merge(health::router())
        .split_for_parts()
}

/// The whole server: the API, `/docs/` and `/openapi.json`, `/metrics` unless it has its own
/// address, the auth proxy and the console when on, and every layer of [`crate::server::http`].
pub fn app(state: AppState) -> Router {
    // The server's metrics recorder must exist before the first request is counted.
    crate::server::metrics::handle();
    let (api, document) = api();
    let mut router = api
        .merge(SwaggerUi::new("/docs").url("/openapi.json", document))
        .merge(resource::router());
    if state.metrics_on_main {
        router = router.route("/metrics", get(health::metrics));
    }
    if let Some(upstream) = &state.auth_proxy {
        let client = proxy::AuthProxy::new(upstream, state.http.request_timeout, state.http.body_limit_bytes)
            .map_err(|err| tracing::error!(error = %err, "AUTH_PROXY: cannot build the HTTP client; /api/auth/* answers 502"))
            .ok();
        router = router.merge(proxy::router(client));
    }
    if state.console {
        router = router.merge(console::router(&state));
    }
    let router = router.fallback(not_found);
    let settings = std::sync::Arc::clone(&state.http);
    crate::server::http::layered(router, &settings).with_state(state)
}

/// The metrics-only router for `METRICS_ADDR`.
pub fn metrics_app(state: AppState) -> Router {
    crate::server::metrics::handle();
    Router::new()
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

/// The OAuth scope each of warden's own routes names (README, "OAuth clients and MCP
/// servers"), so that an access token whose user granted it stands in for the user there:
/// `warden:admin` for `/admin` (the user must be an admin too), `warden:me` for reading one's
/// own account (GETs and the has-permission questions), `warden:me.write` for changing it
/// (the profile, signing sessions out). The server's `Auth` is built with it
/// (`AuthBuilder::route_scopes`); it is asked only when an access token arrives, so other
/// requests pay nothing for it. Any other path (forward auth) names none.
pub fn own_scope(method: &axum::http::Method, path: &str) -> Option<&'static str> {
    let own = path == "/users/me" || path.starts_with("/users/me/") || path.starts_with("/orgs/");
    if path.starts_with("/admin/") {
        Some("warden:admin")
    } else if !own {
        None
    } else if *method == axum::http::Method::GET || path.ends_with("/has-permission") {
        Some("warden:me")
    } else {
        Some("warden:me.write")
    }
}

/// Unknown routes answer a problem+json 404, like every other error.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

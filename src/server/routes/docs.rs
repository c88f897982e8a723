//! The OpenAPI 3.1 document (`GET /openapi.json`) and an interactive page (`GET /docs`,
//! Swagger UI, vendored into the binary: nothing is downloaded at build or run time).
//!
//! The document is generated from the handlers themselves: every route is registered through
//! `utoipa_axum::routes!`, which adds it to the router and to the document at once, so the two
//! cannot drift apart. This module holds the document's frame ([`ApiDoc`]) and the shared
//! error responses the feature modules name; `routes/mod.rs` assembles the two.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::db::users::{SearchField, SearchOperator, SortBy, SortDirection};
use crate::error::Problem;

/// The document's frame: title, description, licence, the `bearer` scheme, shared schemas
/// and the tags; [`super::api`] adds the routes.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "warden",
        description = "A resource server for apps that sign people in with Better-Auth. Send the \
            Better-Auth JWT (or its session token) as `Authorization: Bearer <token>`. Errors are \
            RFC 9457 `application/problem+json` with a stable `code`.",
        license(name = "MIT"),
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem, SearchField, SearchOperator, SortBy, SortDirection)),
    tags(
        (name = "users", description = "The signed-in user: profile, sessions, linked accounts"),
        (name = "admin", description = "User management (each route asks a Better-Auth admin permission)"),
        (name = "organizations", description = "Organizations (Better-Auth's organization plugin), to their members"),
        (name = "forward-auth", description = "For nginx, Traefik and Caddy in front of any backend"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme: a Better-Auth JWT or session token.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Better-Auth's JWT (GET /api/auth/token), or its session token (set-auth-token)",
                    ))
                    .build(),
            ),
        );
    }
}

/// What any authenticated route can answer besides its own results.
#[derive(Debug, IntoResponses)]
pub enum AuthErrors {
    /// `missing_token`, `invalid_token`, `token_expired`, `session_revoked` or `user_not_found`;
    /// with a `WWW-Authenticate: Bearer` challenge.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// `banned` (the reason is in `detail`), or `forbidden` on admin routes for non-admins.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// `jwks_unavailable`, `database_unavailable` or `overloaded`; with `Retry-After`.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// `not_found`: no such user or session.
#[derive(Debug, IntoResponses)]
#[response(status = 404, content_type = "application/problem+json")]
pub struct NotFound(pub Problem);

/// `validation_failed` (or `self_action`): nothing was changed.
#[derive(Debug, IntoResponses)]
#[response(status = 422, content_type = "application/problem+json")]
pub struct Invalid(pub Problem);

/// `invalid_json` (400) or `unsupported_media_type` (415): nothing was changed.
#[derive(Debug, IntoResponses)]
pub enum BadBody {
    /// `invalid_json`
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(Problem),
    /// `unsupported_media_type`
    #[response(status = 415, content_type = "application/problem+json")]
    NotJson(Problem),
}

/// `last_admin`: the change would leave no admin.
#[derive(Debug, IntoResponses)]
#[response(status = 409, content_type = "application/problem+json")]
pub struct LastAdmin(pub Problem);

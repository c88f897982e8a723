//! `GET /.well-known/oauth-protected-resource` (and the form with the resource's path
//! inserted, RFC 9728 §3.1): the protected-resource metadata an OAuth client reads after a
//! refusal's `resource_metadata` to learn which authorization server (Better-Auth) issues tokens
//! for this resource, how to send them and which scopes exist. 404 unless `RESOURCE_URL` is
//! set; a path that is not this resource's is 404 too.

use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::oauth::metadata::ResourceMetadata;
use crate::auth::oauth::{METADATA_PATH, resource_path};
use crate::error::ApiError;
use crate::server::state::AppState;

/// The metadata routes (outside the OpenAPI document: RFC 9728 defines them).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(METADATA_PATH, get(metadata))
        .route(&format!("{METADATA_PATH}/{{*path}}"), get(metadata))
}

async fn metadata(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let settings = &state.auth.policy().oauth;
    let document = ResourceMetadata::of(settings).ok_or(ApiError::NotFound)?;
    let asked = uri.path().strip_prefix(METADATA_PATH).unwrap_or_default();
    if asked.trim_end_matches('/') != resource_path(&document.resource) {
        return Err(ApiError::NotFound);
    }
    let mut response = Json(document).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(response)
}

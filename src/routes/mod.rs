//! HTTP routes, one module per feature, each with its own `router()`; [`crate::app`]
//! merges them.

pub mod health;
pub mod users;

use crate::error::ApiError;

/// Unknown routes answer a problem+json 404, like every other error.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

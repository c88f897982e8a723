//! HTTP routes, one module per feature, each with its own `router()`; [`crate::app`]
//! merges them.

pub mod admin;
pub mod docs;
pub mod extract;
pub mod health;
pub mod proxy;
pub mod users;
pub mod views;

use crate::error::ApiError;

/// Unknown routes answer a problem+json 404, like every other error.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

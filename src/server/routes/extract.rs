//! Body, query and path extractors whose rejections use the house error shape (problem+json
//! with a stable code) instead of axum's plain-text ones, and the text checks every string
//! from a client passes before it reaches SQL (PostgreSQL refuses NUL in text: a NUL must be
//! the client's 4xx, never the server's 500). Also [`RequestOrigin`]: where a request came
//! from, for the audit trail.

use std::convert::Infallible;

use axum::extract::Path;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::{Auth, AuthUser};
use crate::db::audit::AuditContext;
use crate::error::ApiError;
use crate::server::http::RequestId;

/// Where a request came from: the client's address (the socket's peer, or the address a
/// `TRUSTED_PROXIES` proxy reports) and the request id its response carries (`x-request-id`).
/// Either is `None` when the request has none (no `ConnectInfo` in an app built without
/// warden's server, no request-id layer). Never refuses a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    /// The client's address.
    pub client_ip: Option<String>,
    /// The request id, as the response echoes it.
    pub request_id: Option<String>,
}

impl RequestOrigin {
    /// The origin of the request whose head is `parts`.
    pub fn of(parts: &Parts, auth: &Auth) -> Self {
        Self {
            client_ip: auth.client_ips().client_ip(parts).map(|ip| ip.to_string()),
            request_id: parts.extensions.get::<RequestId>().map(|id| id.0.clone()),
        }
    }

    /// What the audit trail records beside a write `caller` makes in this request: their
    /// session, the admin impersonating them in it (if any), the address and the request id.
    pub fn audit_context(self, caller: &AuthUser) -> AuditContext {
        AuditContext {
            session_id: caller.session_id.clone(),
            impersonated_by: caller.impersonated_by.clone(),
            client_ip: self.client_ip,
            request_id: self.request_id,
        }
    }
}

impl<S> FromRequestParts<S> for RequestOrigin
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, &Auth::from_ref(state)))
    }
}

/// `axum::Json`, with problem+json rejections: 415 without a JSON content type, 400 for
/// malformed JSON, 422 for JSON of the wrong shape (unknown fields included), 413 when too big.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => ApiError::ValidationFailed(e.body_text()),
                JsonRejection::JsonSyntaxError(e) => ApiError::InvalidJson(e.body_text()),
                JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
                JsonRejection::BytesRejection(e)
                    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    ApiError::PayloadTooLarge
                }
                other => ApiError::InvalidJson(other.body_text()),
            }),
        }
    }
}

/// `axum::extract::Query`, with a 422 `validation_failed` for bad parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::ValidationFailed(e.body_text()))
            }
            Err(other) => Err(ApiError::ValidationFailed(other.body_text())),
        }
    }
}

/// Ids are short text that Better-Auth generates; nothing longer is one.
pub const MAX_ID_LEN: usize = 255;

/// A single `{id}` path parameter. An id no row can have (control characters such as NUL,
/// over 255 bytes, not UTF-8) is simply not found: 404, never a database error.
#[derive(Debug, Clone)]
pub struct IdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
            return Err(ApiError::NotFound);
        }
        Ok(Self(id))
    }
}

/// A text parameter from the query string or a body: no control characters (NUL included),
/// at most `max_chars` characters. The message names the parameter.
pub fn checked_text(name: &str, value: &str, max_chars: usize) -> Result<(), ApiError> {
    if value.chars().any(char::is_control) {
        return Err(ApiError::ValidationFailed(format!(
            "`{name}` cannot contain control characters"
        )));
    }
    if value.chars().count() > max_chars {
        return Err(ApiError::ValidationFailed(format!(
            "`{name}` must be at most {max_chars} characters"
        )));
    }
    Ok(())
}

//! Errors: [`ApiError`] is what one request can fail with, rendered as an RFC 9457
//! `application/problem+json` body with a stable `code`; [`StartupError`] is what stops the
//! process before it serves anything.
//!
//! Every variant has exactly one HTTP status and one code. The `detail` a client sees is
//! written for the client; internal causes (SQL errors, network failures) go to the log inside
//! the request's span and never into a response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no bearer token")]
    MissingToken,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("token expired")]
    TokenExpired,
    #[error("the token's user does not exist")]
    UserNotFound,
    #[error("the session behind the credentials is gone or expired")]
    SessionRevoked,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("cross-site request refused: {0}")]
    InvalidOrigin(String),
    #[error("user is banned")]
    Banned {
        reason: Option<String>,
        expires: Option<OffsetDateTime>,
    },
    #[error("no JWKS available to verify the token")]
    JwksUnavailable,
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(#[source] sqlx::Error),
    #[error("not found")]
    NotFound,
    #[error("validation failed: {0}")]
    ValidationFailed(String),
    #[error("an admin cannot do this to their own account: {0}")]
    SelfAction(String),
    #[error("would leave no admin: {0}")]
    LastAdmin(String),
    #[error("malformed JSON body: {0}")]
    InvalidJson(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request timed out")]
    RequestTimeout,
    #[error("too many requests in flight")]
    Overloaded,
    #[error("too many refused credentials from this client")]
    TooManyFailures { retry_after_secs: u64 },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the request came back to this server through the auth proxy")]
    ProxyLoop,
    #[error("Better-Auth cannot be reached through the auth proxy")]
    BadGateway,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// One row per variant: status, stable code, title, and the detail for variants that carry
    /// none of their own.
    fn spec(&self) -> (StatusCode, &'static str, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::MissingToken => (
                S::UNAUTHORIZED,
                "missing_token",
                "Authentication required",
                "send the Better-Auth JWT as `Authorization: Bearer <token>`",
            ),
            Self::InvalidToken(_) => (S::UNAUTHORIZED, "invalid_token", "Invalid token", ""),
            Self::TokenExpired => (
                S::UNAUTHORIZED,
                "token_expired",
                "Token expired",
                "the token has expired; get a fresh one from Better-Auth",
            ),
            Self::UserNotFound => (
                S::UNAUTHORIZED,
                "user_not_found",
                "User not found",
                "the user this token was issued to no longer exists",
            ),
            Self::SessionRevoked => (
                S::UNAUTHORIZED,
                "session_revoked",
                "Session revoked",
                "the session was signed out, revoked or has expired; sign in again",
            ),
            Self::Forbidden(_) => (S::FORBIDDEN, "forbidden", "Forbidden", ""),
            Self::Banned { .. } => (S::FORBIDDEN, "banned", "User banned", ""),
            Self::InvalidOrigin(_) => (S::FORBIDDEN, "invalid_origin", "Untrusted origin", ""),
            Self::JwksUnavailable => (
                S::SERVICE_UNAVAILABLE,
                "jwks_unavailable",
                "Signing keys unavailable",
                "the token's signing key is unknown and Better-Auth's JWKS cannot be reached",
            ),
            Self::DatabaseUnavailable(_) => (
                S::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "Database unavailable",
                "the database is unavailable; try again shortly",
            ),
            Self::NotFound => (S::NOT_FOUND, "not_found", "Not found", "no such resource"),
            Self::ValidationFailed(_) => (
                S::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
                "",
            ),
            Self::SelfAction(_) => (
                S::UNPROCESSABLE_ENTITY,
                "self_action",
                "Not on your own account",
                "",
            ),
            Self::LastAdmin(_) => (S::CONFLICT, "last_admin", "Last admin", ""),
            Self::InvalidJson(_) => (S::BAD_REQUEST, "invalid_json", "Malformed JSON", ""),
            Self::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            Self::PayloadTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
                "the request body is too large",
            ),
            Self::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                "this route does not accept that method",
            ),
            Self::RequestTimeout => (
                S::REQUEST_TIMEOUT,
                "request_timeout",
                "Request timeout",
                "the request took too long and was abandoned",
            ),
            Self::Overloaded => (
                S::SERVICE_UNAVAILABLE,
                "overloaded",
                "Overloaded",
                "the server is at capacity; try again shortly",
            ),
            Self::TooManyFailures { .. } => {
                (S::TOO_MANY_REQUESTS, "too_many_requests", "Too many requests", "")
            }
            Self::BadRequest(_) => (S::BAD_REQUEST, "bad_request", "Bad request", ""),
            Self::ProxyLoop => (
                S::LOOP_DETECTED,
                "proxy_loop",
                "Proxy loop",
                "BETTER_AUTH_URL points back at warden itself: the auth proxy refuses to loop",
            ),
            Self::BadGateway => (
                S::BAD_GATEWAY,
                "auth_server_unavailable",
                "Auth server unavailable",
                "Better-Auth cannot be reached; try again shortly",
            ),
            Self::Internal(_) => (
                S::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "an internal error occurred",
            ),
        }
    }

    /// The stable machine-readable code clients can switch on.
    pub fn code(&self) -> &'static str {
        self.spec().1
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.spec().0
    }

    fn title(&self) -> &'static str {
        self.spec().2
    }

    /// What the client is told. Never includes internal causes.
    pub fn detail(&self) -> String {
        match self {
            Self::InvalidToken(why)
            | Self::Forbidden(why)
            | Self::InvalidOrigin(why)
            | Self::ValidationFailed(why)
            | Self::SelfAction(why)
            | Self::LastAdmin(why)
            | Self::InvalidJson(why)
            | Self::BadRequest(why) => why.clone(),
            Self::Banned { reason, expires } => {
                let reason = reason.as_deref().unwrap_or("No reason");
                match expires.and_then(|e| e.format(&time::format_description::well_known::Rfc3339).ok()) {
                    Some(until) => format!("this account is banned until {until}: {reason}"),
                    None => format!("this account is banned: {reason}"),
                }
            }
            Self::TooManyFailures { retry_after_secs } => {
                format!("too many refused credentials from your address; try again in {retry_after_secs} s")
            }
            _ => self.spec().3.to_owned(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::DatabaseUnavailable(err),
            // Class 08 (connection exception), 57P01-57P03 (server shutting down, crashed,
            // starting up) and 53300 (too many connections): the database, not the request.
            sqlx::Error::Database(ref db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300") =>
            {
                Self::DatabaseUnavailable(err)
            }
            // Class 22 (data exception: NUL in text, a value out of range): the request's data.
            // Every input is checked before it reaches SQL; this is the net under those checks.
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| c.starts_with("22")) => {
                tracing::warn!(error = %err, "the database refused a value from a request");
                Self::ValidationFailed("a value in the request cannot be stored".into())
            }
            sqlx::Error::Database(ref db) if matches!(db.code().as_deref(), Some("42P05" | "26000")) => {
                // "prepared statement already exists / does not exist": a transaction-mode
                // pooler without prepared-statement support sits in front of PostgreSQL.
                tracing::error!(
                    "prepared statements are failing: a transaction-mode pooler without prepared-statement \
                     support is in front of the database; run `warden check` (see README, Neon recipe)"
                );
                Self::Internal(format!("database: {err}"))
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

/// RFC 9457 problem details, plus our stable `code` extension member.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:warden:problem:<code>`
    #[serde(rename = "type")]
    #[schema(example = "urn:warden:problem:invalid_token")]
    pub kind: String,
    #[schema(example = "Invalid token")]
    pub title: &'static str,
    #[schema(example = 401)]
    pub status: u16,
    /// A sentence for people; never internal details.
    #[schema(example = "the token's signature is invalid")]
    pub detail: String,
    /// The stable, machine-readable error code.
    #[schema(example = "invalid_token")]
    pub code: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            metrics::counter!("warden_auth_failures_total", "code" => self.code()).increment(1);
        }
        match &self {
            Self::Internal(_) | Self::DatabaseUnavailable(_) => {
                tracing::error!(error = %self, code = self.code(), "request failed");
            }
            _ => tracing::debug!(error = %self, code = self.code(), "request refused"),
        }
        let problem = Problem {
            kind: format!("urn:warden:problem:{}", self.code()),
            title: self.title(),
            status: status.as_u16(),
            detail: self.detail(),
            code: self.code(),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(challenge) = self.challenge() {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Self::TooManyFailures { retry_after_secs } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

impl ApiError {
    /// RFC 6750 §3: a bare challenge when no credentials were sent, `invalid_token` with a
    /// description for every other 401.
    fn challenge(&self) -> Option<HeaderValue> {
        if self.status() != StatusCode::UNAUTHORIZED {
            return None;
        }
        if matches!(self, Self::MissingToken) {
            return Some(HeaderValue::from_static("Bearer"));
        }
        // The description is quoted: keep only characters RFC 6750 allows there.
        let description: String = self
            .detail()
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || !(' '..='~').contains(&c) {
                    '\''
                } else {
                    c
                }
            })
            .collect();
        HeaderValue::from_str(&format!(
            r#"Bearer error="invalid_token", error_description="{description}""#
        ))
        .ok()
    }
}

/// A configuration value that cannot be used. The message names the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required but not set")]
    Missing(&'static str),
    #[error("{var} is not valid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// What stops warden from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot connect to the database: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
    #[error("health check failed: {0}")]
    Unhealthy(String),
}

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
    /// No credential at all, or `Authorization: Bearer` with nothing after it (401
    /// `missing_token`, with a bare `Bearer` challenge).
    #[error("no bearer token")]
    MissingToken,
    /// A credential that cannot be accepted: malformed, forged, for another issuer or
    /// audience, signed by an unknown key, a session token of no live session (401
    /// `invalid_token`). The text says why, for the client.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The JWT's `exp` is past, or the session of a session token or cookie has expired (401
    /// `token_expired`).
    #[error("token expired")]
    TokenExpired,
    /// A good credential whose user no longer exists (401 `user_not_found`).
    #[error("the token's user does not exist")]
    UserNotFound,
    /// The session a JWT names (`sid`) is gone, expired or another user's (401
    /// `session_revoked`).
    #[error("the session behind the credentials is gone or expired")]
    SessionRevoked,
    /// Signed in, but without the role the route needs (403 `forbidden`); the text says which.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Signed in, but the route (`/auth/verify?verified=true`) needs an email address that
    /// Better-Auth has verified (403 `email_not_verified`).
    #[error("the email address is not verified")]
    EmailNotVerified,
    /// A cookie-borne change whose `Origin` (or `Referer`) is missing or not in
    /// `TRUSTED_ORIGINS` (403 `invalid_origin`).
    #[error("cross-site request refused: {0}")]
    InvalidOrigin(String),
    /// A route for API keys, and no key in any of `API_KEY_HEADERS` (401 `missing_api_key`).
    #[error("no API key")]
    MissingApiKey,
    /// An API key that is not one: unknown, malformed, too long, of another configuration, or
    /// an organization's where a user is needed (401 `invalid_api_key`). The text says which.
    #[error("invalid API key: {0}")]
    InvalidApiKey(String),
    /// The API key's `expiresAt` is past; Better-Auth's plugin deletes it, and so does warden
    /// (401 `api_key_expired`).
    #[error("API key expired")]
    ApiKeyExpired,
    /// The API key is switched off (`enabled: false`; 401 `api_key_disabled`).
    #[error("API key disabled")]
    ApiKeyDisabled,
    /// An API key on a route that needs a user's credential, where keys do not stand in for
    /// their owners (`API_KEYS_AS_USERS` off; 401 `api_key_not_accepted`).
    #[error("API keys are not accepted here: {0}")]
    ApiKeyNotAccepted(String),
    /// The API key has no use left (`remaining` 0, no refill due; 429 `usage_exceeded`).
    #[error("API key usage exceeded")]
    UsageExceeded,
    /// The API key's own rate-limit window is full (429 `rate_limited`, with `Retry-After`).
    #[error("API key rate limited")]
    RateLimited {
        /// Seconds until the window has passed (at least 1).
        retry_after_secs: u64,
    },
    /// The user is under an active ban (403 `banned`); the detail gives the reason and end.
    #[error("user is banned")]
    Banned {
        /// Why, as the ban recorded it (`No reason` is shown when there is none).
        reason: Option<String>,
        /// When the ban lifts; `None` for a permanent ban.
        expires: Option<OffsetDateTime>,
    },
    /// The token's key is unknown and Better-Auth's JWKS cannot be fetched (503
    /// `jwks_unavailable`).
    #[error("no JWKS available to verify the token")]
    JwksUnavailable,
    /// The database is unreachable, starting, shutting down or out of connections, or the pool
    /// timed out (503 `database_unavailable`). The cause is logged, never sent.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(#[source] sqlx::Error),
    /// Sessions live in Redis (`SESSION_STORE=redis`) and Redis cannot be reached or did not
    /// answer in time (503 `session_store_unavailable`): no session is guessed from memory. The
    /// cause is logged, never sent.
    #[error("session store unavailable: {0}")]
    SessionStoreUnavailable(String),
    /// No such route, user or session (404 `not_found`).
    #[error("not found")]
    NotFound,
    /// A parameter or body field of the wrong shape or value (422 `validation_failed`); the
    /// text names it.
    #[error("validation failed: {0}")]
    ValidationFailed(String),
    /// An admin banning or removing their own account (422 `self_action`).
    #[error("an admin cannot do this to their own account: {0}")]
    SelfAction(String),
    /// A change that would leave no usable admin (409 `last_admin`).
    #[error("would leave no admin: {0}")]
    LastAdmin(String),
    /// A body that is not well-formed JSON, or cannot be read (400 `invalid_json`).
    #[error("malformed JSON body: {0}")]
    InvalidJson(String),
    /// A JSON body without `Content-Type: application/json` (415 `unsupported_media_type`).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// A body over `BODY_LIMIT_BYTES` (413 `payload_too_large`).
    #[error("payload too large")]
    PayloadTooLarge,
    /// A method the route does not accept (405 `method_not_allowed`, with `Allow`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Still running after `REQUEST_TIMEOUT_SECS` (408 `request_timeout`).
    #[error("request timed out")]
    RequestTimeout,
    /// `MAX_CONCURRENT_REQUESTS` already in flight: shed at once (503 `overloaded`).
    #[error("too many requests in flight")]
    Overloaded,
    /// The client's address is out of refused credentials for its minute
    /// (`AUTH_FAILURES_PER_MINUTE`; 429 `too_many_requests`, with `Retry-After`).
    #[error("too many refused credentials from this client")]
    TooManyFailures {
        /// Seconds until the client's minute is over (at least 1).
        retry_after_secs: u64,
    },
    /// A request the auth proxy will not forward: dot-segments or encoded slashes in the path,
    /// an unreadable body (400 `bad_request`).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The auth proxy got its own request back: `BETTER_AUTH_URL` points at warden (508
    /// `proxy_loop`).
    #[error("the request came back to this server through the auth proxy")]
    ProxyLoop,
    /// A request that may change something through Better-Auth's admin endpoints
    /// (`/api/auth/admin/*`), with `AUTH_PROXY_ADMIN=refuse` (403
    /// `admin_through_proxy_refused`); nothing was forwarded.
    #[error("Better-Auth's admin endpoints are not served through the auth proxy")]
    AdminThroughProxyRefused,
    /// The auth proxy cannot reach Better-Auth (502 `auth_server_unavailable`).
    #[error("Better-Auth cannot be reached through the auth proxy")]
    BadGateway,
    /// An OAuth access token without every scope the route asks (403 `insufficient_scope`,
    /// RFC 6750): names each one missing.
    #[error("insufficient scope: missing {}", .0.missing.join(" "))]
    InsufficientScope(Box<ScopeRefusal>),
    /// A DPoP proof that is missing where the token is DPoP-bound, malformed, for another
    /// request, too old, replayed, or of another key (401 `invalid_dpop_proof`, RFC 9449).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(String),
    /// An OAuth access token on a route that takes people's own credentials (403
    /// `access_token_not_accepted`): its scopes name what it may do, and this route names none.
    #[error("OAuth access tokens are not accepted here: {0}")]
    AccessTokenNotAccepted(String),
    /// A route for OAuth clients (scopes), and the credential is not an access token (401
    /// `access_token_required`): a session, a session JWT or an API key.
    #[error("an OAuth access token is required: {0}")]
    AccessTokenRequired(String),
    /// A refusal of an OAuth resource: the same error, its challenges naming this resource's
    /// metadata and DPoP algorithms.
    #[error("{0}")]
    Challenged(Box<ApiError>, crate::auth::oauth::challenge::Context),
    /// Anything else, warden's fault (500 `internal`). The text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Its row in [`specs`]: status, stable code, title, and the detail for variants that
    /// carry none of their own.
    fn spec(&self) -> Spec {
        match self {
            Self::MissingToken => specs::MISSING_TOKEN,
            Self::InvalidToken(_) => specs::INVALID_TOKEN,
            Self::TokenExpired => specs::TOKEN_EXPIRED,
            Self::UserNotFound => specs::USER_NOT_FOUND,
            Self::SessionRevoked => specs::SESSION_REVOKED,
            Self::Forbidden(_) => specs::FORBIDDEN,
            Self::Banned { .. } => specs::BANNED,
            Self::MissingApiKey => specs::MISSING_API_KEY,
            Self::InvalidApiKey(_) => specs::INVALID_API_KEY,
            Self::ApiKeyExpired => specs::API_KEY_EXPIRED,
            Self::ApiKeyDisabled => specs::API_KEY_DISABLED,
            Self::ApiKeyNotAccepted(_) => specs::API_KEY_NOT_ACCEPTED,
            Self::UsageExceeded => specs::USAGE_EXCEEDED,
            Self::RateLimited { .. } => specs::RATE_LIMITED,
            Self::EmailNotVerified => specs::EMAIL_NOT_VERIFIED,
            Self::InvalidOrigin(_) => specs::INVALID_ORIGIN,
            Self::JwksUnavailable => specs::JWKS_UNAVAILABLE,
            Self::DatabaseUnavailable(_) => specs::DATABASE_UNAVAILABLE,
            Self::SessionStoreUnavailable(_) => specs::SESSION_STORE_UNAVAILABLE,
            Self::NotFound => specs::NOT_FOUND,
            Self::ValidationFailed(_) => specs::VALIDATION_FAILED,
            Self::SelfAction(_) => specs::SELF_ACTION,
            Self::LastAdmin(_) => specs::LAST_ADMIN,
            Self::InvalidJson(_) => specs::INVALID_JSON,
            Self::UnsupportedMediaType => specs::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => specs::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => specs::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => specs::REQUEST_TIMEOUT,
            Self::Overloaded => specs::OVERLOADED,
            Self::TooManyFailures { .. } => specs::TOO_MANY_FAILURES,
            Self::BadRequest(_) => specs::BAD_REQUEST,
            Self::ProxyLoop => specs::PROXY_LOOP,
            Self::AdminThroughProxyRefused => specs::ADMIN_THROUGH_PROXY_REFUSED,
            Self::BadGateway => specs::BAD_GATEWAY,
            Self::InsufficientScope(_) => specs::INSUFFICIENT_SCOPE,
            Self::InvalidDpopProof(_) => specs::INVALID_DPOP_PROOF,
            Self::AccessTokenNotAccepted(_) => specs::ACCESS_TOKEN_NOT_ACCEPTED,
            Self::AccessTokenRequired(_) => specs::ACCESS_TOKEN_REQUIRED,
            Self::Challenged(inner, _) => inner.spec(),
            Self::Internal(_) => specs::INTERNAL,
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
            | Self::InvalidApiKey(why)
            | Self::ApiKeyNotAccepted(why)
            | Self::ValidationFailed(why)
            | Self::SelfAction(why)
            | Self::LastAdmin(why)
            | Self::InvalidJson(why)
            | Self::InvalidDpopProof(why)
            | Self::AccessTokenNotAccepted(why)
            | Self::AccessTokenRequired(why)
            | Self::BadRequest(why) => why.clone(),
            Self::InsufficientScope(refusal) => format!(
                "this needs the scope{} {}, which the access token was not granted",
                if refusal.missing.len() == 1 { "" } else { "s" },
                refusal.missing.join(" ")
            ),
            Self::Challenged(inner, _) => inner.detail(),
            Self::Banned { reason, expires } => {
                let reason = reason.as_deref().unwrap_or("No reason");
                match expires.and_then(|e| e.format(&time::format_description::well_known::Rfc3339).ok()) {
                    Some(until) => format!("this account is banned until {until}: {reason}"),
                    None => format!("this account is banned: {reason}"),
                }
            }
            Self::RateLimited { retry_after_secs } => {
                format!("this API key's rate limit is reached; try again in {retry_after_secs} s")
            }
            Self::TooManyFailures { retry_after_secs } => {
                format!("too many refused credentials from your address; try again in {retry_after_secs} s")
            }
            _ => self.spec().3.to_owned(),
        }
    }
}

/// A variant's status, stable code, title, and the detail for variants that carry none.
type Spec = (StatusCode, &'static str, &'static str, &'static str);

/// One row per variant of [`ApiError`], in the order they are declared.
mod specs {
    use super::{Spec, StatusCode};

    pub(super) const MISSING_TOKEN: Spec = (
        StatusCode::UNAUTHORIZED,
        "missing_token",
        "Authentication required",
        "send the Better-Auth JWT as `Authorization: Bearer <token>`",
    );
    pub(super) const INVALID_TOKEN: Spec = (StatusCode::UNAUTHORIZED, "invalid_token", "Invalid token", "");
    pub(super) const TOKEN_EXPIRED: Spec = (
        StatusCode::UNAUTHORIZED,
        "token_expired",
        "Token expired",
        "the token has expired; get a fresh one from Better-Auth",
    );
    pub(super) const USER_NOT_FOUND: Spec = (
        StatusCode::UNAUTHORIZED,
        "user_not_found",
        "User not found",
        "the user this token was issued to no longer exists",
    );
    pub(super) const SESSION_REVOKED: Spec = (
        StatusCode::UNAUTHORIZED,
        "session_revoked",
        "Session revoked",
        "the session was signed out, revoked or has expired; sign in again",
    );
    pub(super) const FORBIDDEN: Spec = (StatusCode::FORBIDDEN, "forbidden", "Forbidden", "");
    pub(super) const MISSING_API_KEY: Spec = (
        StatusCode::UNAUTHORIZED,
        "missing_api_key",
        "API key required",
        "send an API key of Better-Auth's api-key plugin in the `x-api-key` header (or the header this server names)",
    );
    pub(super) const INVALID_API_KEY: Spec =
        (StatusCode::UNAUTHORIZED, "invalid_api_key", "Invalid API key", "");
    pub(super) const API_KEY_EXPIRED: Spec = (
        StatusCode::UNAUTHORIZED,
        "api_key_expired",
        "API key expired",
        "this API key has expired; create a new one",
    );
    pub(super) const API_KEY_DISABLED: Spec = (
        StatusCode::UNAUTHORIZED,
        "api_key_disabled",
        "API key disabled",
        "this API key is disabled",
    );
    pub(super) const API_KEY_NOT_ACCEPTED: Spec = (
        StatusCode::UNAUTHORIZED,
        "api_key_not_accepted",
        "API key not accepted",
        "",
    );
    pub(super) const USAGE_EXCEEDED: Spec = (
        StatusCode::TOO_MANY_REQUESTS,
        "usage_exceeded",
        "Usage exceeded",
        "this API key has no use left",
    );
    pub(super) const RATE_LIMITED: Spec = (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Rate limited", "");
    pub(super) const BANNED: Spec = (StatusCode::FORBIDDEN, "banned", "User banned", "");
    pub(super) const EMAIL_NOT_VERIFIED: Spec = (
        StatusCode::FORBIDDEN,
        "email_not_verified",
        "Email not verified",
        "this needs an email address that has been verified; verify it with Better-Auth first",
    );
    pub(super) const INVALID_ORIGIN: Spec = (StatusCode::FORBIDDEN, "invalid_origin", "Untrusted origin", "");
    pub(super) const JWKS_UNAVAILABLE: Spec = (
        StatusCode::SERVICE_UNAVAILABLE,
        "jwks_unavailable",
        "Signing keys unavailable",
        "the token's signing key is unknown and Better-Auth's JWKS cannot be reached",
    );
    pub(super) const DATABASE_UNAVAILABLE: Spec = (
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
        "Database unavailable",
        "the database is unavailable; try again shortly",
    );
    pub(super) const SESSION_STORE_UNAVAILABLE: Spec = (
        StatusCode::SERVICE_UNAVAILABLE,
        "session_store_unavailable",
        "Session store unavailable",
        "sessions are kept in Redis, which cannot be reached; try again shortly",
    );
    pub(super) const NOT_FOUND: Spec = (
        StatusCode::NOT_FOUND,
        "not_found",
        "Not found",
        "no such resource",
    );
    pub(super) const VALIDATION_FAILED: Spec = (
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "Validation failed",
        "",
    );
    pub(super) const SELF_ACTION: Spec = (
        StatusCode::UNPROCESSABLE_ENTITY,
        "self_action",
        "Not on your own account",
        "",
    );
    pub(super) const LAST_ADMIN: Spec = (StatusCode::CONFLICT, "last_admin", "Last admin", "");
    pub(super) const INVALID_JSON: Spec = (StatusCode::BAD_REQUEST, "invalid_json", "Malformed JSON", "");
    pub(super) const UNSUPPORTED_MEDIA_TYPE: Spec = (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Unsupported media type",
        "send the body as JSON with `Content-Type: application/json`",
    );
    pub(super) const PAYLOAD_TOO_LARGE: Spec = (
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Payload too large",
        "the request body is too large",
    );
    pub(super) const METHOD_NOT_ALLOWED: Spec = (
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
        "this route does not accept that method",
    );
    pub(super) const REQUEST_TIMEOUT: Spec = (
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "Request timeout",
        "the request took too long and was abandoned",
    );
    pub(super) const OVERLOADED: Spec = (
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "Overloaded",
        "the server is at capacity; try again shortly",
    );
    pub(super) const TOO_MANY_FAILURES: Spec = (
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Too many requests",
        "",
    );
    pub(super) const BAD_REQUEST: Spec = (StatusCode::BAD_REQUEST, "bad_request", "Bad request", "");
    pub(super) const PROXY_LOOP: Spec = (
        StatusCode::LOOP_DETECTED,
        "proxy_loop",
        "Proxy loop",
        "BETTER_AUTH_URL points back at warden itself: the auth proxy refuses to loop",
    );
    pub(super) const ADMIN_THROUGH_PROXY_REFUSED: Spec = (
        StatusCode::FORBIDDEN,
        "admin_through_proxy_refused",
        "Admin action refused",
        "Better-Auth's admin endpoints are not served through this proxy (AUTH_PROXY_ADMIN=refuse): use warden's /admin API, which applies warden's rules and records the change",
    );
    pub(super) const BAD_GATEWAY: Spec = (
        StatusCode::BAD_GATEWAY,
        "auth_server_unavailable",
        "Auth server unavailable",
        "Better-Auth cannot be reached; try again shortly",
    );
    pub(super) const INSUFFICIENT_SCOPE: Spec = (
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        "Insufficient scope",
        "",
    );
    pub(super) const INVALID_DPOP_PROOF: Spec = (
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
        "Invalid DPoP proof",
        "",
    );
    pub(super) const ACCESS_TOKEN_NOT_ACCEPTED: Spec = (
        StatusCode::FORBIDDEN,
        "access_token_not_accepted",
        "Access token not accepted",
        "",
    );
    pub(super) const ACCESS_TOKEN_REQUIRED: Spec = (
        StatusCode::UNAUTHORIZED,
        "access_token_required",
        "Access token required",
        "",
    );
    pub(super) const INTERNAL: Spec = (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "an internal error occurred",
    );
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
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Problem {
    /// `urn:warden:problem:<code>`
    #[serde(rename = "type")]
    #[cfg_attr(feature = "server", schema(example = "urn:warden:problem:invalid_token"))]
    pub(crate) kind: String,
    #[cfg_attr(feature = "server", schema(example = "Invalid token"))]
    pub(crate) title: &'static str,
    #[cfg_attr(feature = "server", schema(example = 401))]
    pub(crate) status: u16,
    /// A sentence for people; never internal details.
    #[cfg_attr(feature = "server", schema(example = "the token's signature is invalid"))]
    pub(crate) detail: String,
    /// The stable, machine-readable error code.
    #[cfg_attr(feature = "server", schema(example = "invalid_token"))]
    pub(crate) code: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            metrics::counter!("warden_auth_failures_total", "code" => self.code()).increment(1);
        }
        match &self {
            Self::Internal(_) | Self::DatabaseUnavailable(_) | Self::SessionStoreUnavailable(_) => {
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
        for challenge in self.challenges() {
            headers.append(header::WWW_AUTHENTICATE, challenge);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Self::TooManyFailures { retry_after_secs } | Self::RateLimited { retry_after_secs } =
            self.unchallenged()
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}

impl ApiError {
    /// The error itself, without the challenges an OAuth resource adds to it.
    pub fn unchallenged(&self) -> &Self {
        match self {
            Self::Challenged(inner, _) => inner.unchallenged(),
            other => other,
        }
    }

    /// The same error, its challenges naming this OAuth resource (`context`).
    pub(crate) fn challenged(self, context: crate::auth::oauth::challenge::Context) -> Self {
        match self {
            Self::Challenged(inner, _) => Self::Challenged(inner, context),
            other => Self::Challenged(Box::new(other), context),
        }
    }

    /// RFC 6750 §3: a bare challenge when no credentials were sent, `invalid_token` with a
    /// description for every other 401, `insufficient_scope` naming the scopes for a missing
    /// scope; an OAuth resource's refusal adds its metadata and DPoP (see
    /// [`crate::auth::oauth::challenge`]).
    fn challenges(&self) -> Vec<HeaderValue> {
        use crate::auth::oauth::challenge::{Refusal, challenges, quoted};
        let inner = self.unchallenged();
        let status = inner.status();
        let detail = inner.detail();
        let refusal = match inner {
            Self::MissingToken => Refusal {
                error: None,
                description: "",
                scope: None,
            },
            Self::InsufficientScope(refusal) => Refusal {
                error: Some("insufficient_scope"),
                description: &detail,
                scope: Some(&refusal.asked),
            },
            Self::InvalidDpopProof(_) => Refusal {
                error: Some("invalid_dpop_proof"),
                description: &detail,
                scope: None,
            },
            _ if status == StatusCode::UNAUTHORIZED => Refusal {
                error: Some("invalid_token"),
                description: &detail,
                scope: None,
            },
            _ => return Vec::new(),
        };
        if let Self::Challenged(_, context) = self {
            return challenges(&refusal, context);
        }
        let text = match refusal.error {
            None => "Bearer".to_owned(),
            Some(error) => {
                let mut text = format!(
                    r#"Bearer error="{error}", error_description="{}""#,
                    quoted(&detail)
                );
                if let Some(scope) = refusal.scope {
                    text.push_str(&format!(r#", scope="{}""#, quoted(scope)));
                }
                text
            }
        };
        HeaderValue::from_str(&text).ok().into_iter().collect()
    }
}

/// What an OAuth access token lacks for a route (boxed in [`ApiError::InsufficientScope`], so
/// every other error stays small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRefusal {
    /// The scopes the token lacks.
    pub missing: Vec<String>,
    /// Every scope the route asks, space-separated (the challenge's `scope`).
    pub asked: String,
}

impl ApiError {
    /// 403 `insufficient_scope`: the token lacks `missing` of the scopes `asked`.
    pub fn insufficient_scope(missing: Vec<String>, asked: String) -> Self {
        Self::InsufficientScope(Box::new(ScopeRefusal { missing, asked }))
    }
}

/// A configuration value that cannot be used. The message names the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable (named here) is unset or empty.
    #[error("{0} is required but not set")]
    Missing(&'static str),
    /// A variable's value cannot be used.
    #[error("{var} is not valid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong with the value, and what would do.
        reason: String,
    },
}

/// What stops warden from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// A database URL does not parse.
    #[error("cannot connect to the database: {0}")]
    Database(#[source] sqlx::Error),
    /// The database cannot be reached (transient failures are retried for
    /// `DATABASE_CONNECT_RETRY_SECS` first): its host and port, and why.
    #[error(transparent)]
    DatabaseConnect(#[from] crate::db::ConnectError),
    /// The migrations could not be applied.
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// `REDIS_URL` is not a Redis URL.
    #[error("REDIS_URL: {0}")]
    RedisUrl(#[from] crate::redis::BadUrl),
    /// A listening address cannot be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// `BIND_ADDR` or `METRICS_ADDR`.
        addr: std::net::SocketAddr,
        /// Why: in use, not permitted, ...
        source: std::io::Error,
    },
    /// The JWKS client cannot be built. (`warden healthcheck` also reports its failed request
    /// through this variant.)
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    /// Serving stopped on an I/O error.
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
    /// `warden healthcheck`: the server answered, but not 200.
    #[error("health check failed: {0}")]
    Unhealthy(String),
}

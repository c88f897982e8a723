//! `AUTH_PROXY=true`: `/api/auth/*` forwarded to Better-Auth, so a frontend can talk to one
//! origin. Method, path, query, headers (cookies and `Origin` included) and body go up; status,
//! headers (every `set-cookie`, `set-auth-jwt`, `set-auth-token`, redirects) and a streamed body
//! come back.
//!
//! What the proxy does not pass through, because a client could abuse it:
//! - Client-supplied address headers (`X-Forwarded-For`, `X-Real-IP`, `Forwarded`,
//!   `X-Forwarded-Host`/`-Proto`/`-Port`/`-Prefix`, and their underscore spellings, which some
//!   servers read as the same variable): Better-Auth's rate limiter counts per address, so the
//!   proxy sets `X-Forwarded-For` to the client it sees itself (the socket peer, or the address
//!   a `TRUSTED_PROXIES` proxy reports), and a client cannot pick its own bucket.
//! - The client's `Host`, in any form. The proxy sends neither `X-Forwarded-Host` nor
//!   `X-Forwarded-Proto`: Better-Auth builds its links (OAuth callbacks, verification and
//!   reset emails) from its own `baseURL`, and one that trusts proxy headers (`advanced.
//!   trustedProxyHeaders`) would otherwise build them from a host the client chose, or believe
//!   plain http behind a TLS terminator. The upstream's own `Host` is its URL's.
//! - Paths with dot-segments or encoded slashes (`/api/auth/%2e%2e/...`): they would reach
//!   other paths of the upstream; refused with 400.
//! - Itself: each hop adds `Via: 1.1 warden-<id>`; a request that already carries this
//!   process's id has looped (`BETTER_AUTH_URL` points at warden) and is refused with 508.
//! - Bodies over `BODY_LIMIT_BYTES`, chunked or not: 413. (Bodies are read whole before
//!   forwarding: Better-Auth's requests are small JSON.)
//!
//! Better-Auth's admin endpoints (`/api/auth/admin/*`) change users with Better-Auth's rules,
//! not warden's: neither warden's last-admin rule nor its audit trail sees them. So a request
//! there that may change something (any method but GET, HEAD and OPTIONS, except the two
//! read-only POSTs `has-permission` and `list-user-sessions`; the path compared as Better-Auth
//! routes it: case-insensitive, percent-decoded, empty segments dropped) is, as
//! `AUTH_PROXY_ADMIN` says ([`AdminThroughProxy`]):
//! - `audit` (the default): forwarded, and when Better-Auth answers 2xx, recorded in warden's
//!   audit trail: action `better-auth.<path>` (e.g. `better-auth.admin/ban-user`), the actor
//!   found from the credential Better-Auth reads (a bearer session token first, then the
//!   session cookie; looked up before forwarding when its signature proves it, since
//!   `stop-impersonating` deletes that session, else only after Better-Auth accepted the
//!   write, so junk costs no read; `unknown` when none matches), the target the body's
//!   `userId`, details the method, path, status and the body with only `AUDITED_FIELDS`'
//!   values kept, and the request's session, impersonator, client address and request id;
//! - `refuse`: answered 403 `admin_through_proxy_refused`; nothing reaches Better-Auth.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};
use serde_json::{Value, json};
use std::time::Duration;

use super::extract::{MAX_ID_LEN, RequestOrigin};
use crate::auth::jwt::looks_like_jwt;
use crate::auth::request::credential;
use crate::auth::session::token::session_token;
use crate::db::audit::{self, AuditContext, NewAuditEntry};
use crate::db::sessions::SessionRef;
use crate::error::ApiError;
use crate::server::state::{AdminThroughProxy, AppState};

/// The actor of an admin write whose credential matches no session.
const UNKNOWN_ACTOR: &str = "unknown";

/// A request body larger than this (serialised, after redaction) is left out of its audit row,
/// which keeps its size instead.
const MAX_AUDITED_BODY_BYTES: usize = 8 * 1024;

/// A connection to Better-Auth that takes longer than this fails (502).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how `/api/auth/*` is forwarded.
#[derive(Debug)]
pub(crate) struct AuthProxy {
    upstream: String,
    client: reqwest::Client,
    /// This process's `Via` entry.
    via: String,
    body_limit: usize,
}

impl AuthProxy {
    /// `upstream` is Better-Auth's base URL. Redirects are passed to the browser, not followed.
    pub(crate) fn new(
        upstream: &str,
        request_timeout: Duration,
        body_limit: usize,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(request_timeout)
            .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut id = [0u8; 6];
        let _ = aws_lc_rs::rand::fill(&mut id);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
            via: format!("1.1 warden-{id}"),
            body_limit,
        })
    }
}

/// `/api/auth` and everything under it, forwarded through `proxy`; `None` (the client could
/// not be built, which the start-up log says) answers 502 to every request.
pub(crate) fn router(proxy: Option<AuthProxy>) -> Router<AppState> {
    Router::new()
        .route("/api/auth", any(forward))
        .route("/api/auth/{*rest}", any(forward))
        .layer(Extension(proxy.map(Arc::new)))
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers through which a client could claim another address, host, scheme or path prefix.
/// Matched with `_` read as `-` (`X_Forwarded_Host` is the same variable to CGI, WSGI and PHP).
const CLIENT_ADDRESS: [&str; 7] = [
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, skip: &[&str]) {
    for (name, value) in from {
        let skipped = !skip.is_empty() && {
            let dashed = name.as_str().replace('_', "-");
            skip.contains(&dashed.as_str())
        };
        if !HOP_BY_HOP.contains(&name.as_str())
            && !skipped
            && name != header::HOST
            && name != header::CONTENT_LENGTH
        {
            to.append(name.clone(), value.clone());
        }
    }
}

/// The path below `/api/auth` as Better-Auth routes it: percent-decoded segments, empty ones
/// dropped. Call after [`safe_path`] (which decoding cannot then fail).
fn auth_segments(path: &str) -> Vec<String> {
    path.strip_prefix("/api/auth")
        .unwrap_or(path)
        .split('/')
        .filter(|segment| !segment.is_empty())
        .filter_map(percent_decode)
        .collect()
}

/// Whether a request may change something through Better-Auth's admin endpoints: under
/// `admin/` (any case), with a method other than GET, HEAD and OPTIONS, and not one of the
/// admin plugin's two read-only POSTs.
fn is_admin_write(method: &Method, segments: &[String]) -> bool {
    const READ_ONLY_POSTS: [&str; 2] = ["has-permission", "list-user-sessions"];
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    match segments {
        [first, rest @ ..] if first.eq_ignore_ascii_case("admin") => !matches!(
            rest,
            [only] if READ_ONLY_POSTS.iter().any(|read| only.eq_ignore_ascii_case(read))
        ),
        _ => false,
    }
}

/// A path is forwarded only when it means the same thing to every reader: no `.` or `..`
/// segment, no encoded slash or backslash, no backslash, once percent-decoded.
pub(crate) fn safe_path(path: &str) -> bool {
    if path.contains('\\') {
        return false;
    }
    path.split('/').all(|segment| {
        let Some(decoded) = percent_decode(segment) else {
            return false;
        };
        decoded != "." && decoded != ".." && !decoded.contains(['/', '\\']) && !decoded.contains('\0')
    })
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn forward(
    State(state): State<AppState>,
    Extension(proxy): Extension<Option<Arc<AuthProxy>>>,
    request: Request,
) -> Result<Response, ApiError> {
    let proxy = proxy.ok_or(ApiError::BadGateway)?;
    let (parts, body) = request.into_parts();
    if !safe_path(parts.uri.path()) {
        return Err(ApiError::BadRequest(
            "the path has dot-segments or encoded slashes".into(),
        ));
    }
    if proxy.has_seen(&parts.headers) {
        return Err(ApiError::ProxyLoop);
    }
    let segments = auth_segments(parts.uri.path());
    let admin_write = is_admin_write(&parts.method, &segments);
    if admin_write && state.auth_proxy_admin == AdminThroughProxy::Refuse {
        return Err(ApiError::AdminThroughProxyRefused);
    }
    // Before forwarding: `stop-impersonating` deletes the very session that made the request.
    let audit = match admin_write {
        true => Some(ProxiedAdminWrite::begin(&state, &parts, &segments).await),
        false => None,
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/api/auth");
    let url = format!("{}{path_and_query}", proxy.upstream);

    let headers = upstream_headers(&state, &proxy, &parts);
    let body = axum::body::to_bytes(body, proxy.body_limit)
        .await
        .map_err(|err| {
            if is_length_limit(&err) {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("the request body could not be read".into())
            }
        })?;

    let upstream = proxy
        .client
        .request(parts.method.clone(), &url)
        .headers(headers)
        .body(body.clone())
        .send()
        .await
        .map_err(|err| {
            // Without the URL: its path and query can hold a token (verify-email, reset-password).
            tracing::warn!(error = %err.without_url(), "auth proxy: Better-Auth unreachable");
            ApiError::BadGateway
        })?;
    if let Some(audit) = audit
        && upstream.status().is_success()
    {
        audit.record(&state, &body, upstream.status().as_u16()).await;
    }

    let mut response = Response::builder().status(upstream.status().as_u16());
    if let Some(out) = response.headers_mut() {
        copy_headers(upstream.headers(), out, &[]);
    }
    response
        .body(Body::from_stream(upstream.bytes_stream()))
        .map_err(|err| ApiError::Internal(format!("auth proxy response: {err}")))
}

impl AuthProxy {
    /// Whether the request already went through this process (its `Via` names it): a loop.
    fn has_seen(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::VIA)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|hop| hop.trim() == self.via))
    }
}

/// The headers sent up: the client's, but for hop-by-hop ones and any through which it could
/// claim an address or origin; `X-Forwarded-For` naming the client warden sees itself (the
/// socket, or what a trusted proxy reports); and `Via` with this process added.
fn upstream_headers(state: &AppState, proxy: &AuthProxy, parts: &Parts) -> HeaderMap {
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers, &CLIENT_ADDRESS);
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = state.auth.client_ips().resolve(peer, &parts.headers);
        if let Ok(value) = HeaderValue::from_str(&client.to_string()) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), value);
        }
    }
    let via = match parts.headers.get(header::VIA).and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {}", proxy.via),
        None => proxy.via.clone(),
    };
    if let Ok(via) = HeaderValue::from_str(&via) {
        headers.insert(header::VIA, via);
    }
    headers
}

/// An admin write on its way to Better-Auth, recorded once Better-Auth accepts it.
struct ProxiedAdminWrite {
    /// `better-auth.admin/ban-user`.
    action: String,
    method: String,
    path: String,
    /// The user of the session behind the credential, or [`UNKNOWN_ACTOR`].
    actor_id: String,
    context: AuditContext,
    /// The request's headers, for a credential no signature proved (looked up only once
    /// Better-Auth has accepted the write: junk must not cost warden a read).
    headers: HeaderMap,
}

impl ProxiedAdminWrite {
    /// Finds who is asking, while their session still exists (`stop-impersonating` deletes
    /// it): a session token or cookie whose HMAC proves Better-Auth made it. Any other
    /// credential waits for Better-Auth's answer, so an unauthenticated client sending junk
    /// costs warden no read.
    async fn begin(state: &AppState, parts: &Parts, segments: &[String]) -> Self {
        let session = caller_session(state, &parts.headers, true).await;
        let origin = RequestOrigin::of(parts, &state.auth);
        let (actor_id, session_id, impersonated_by) = match session {
            Some(s) => (s.user_id, Some(s.id), s.impersonated_by),
            None => (UNKNOWN_ACTOR.to_owned(), None, None),
        };
        Self {
            action: format!("better-auth.{}", segments.join("/")),
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            actor_id,
            context: AuditContext {
                session_id,
                impersonated_by,
                client_ip: origin.client_ip,
                request_id: origin.request_id,
            },
            headers: parts.headers.clone(),
        }
    }

    /// Records the write Better-Auth answered `status` (2xx) to. Better-Auth has made it
    /// already: a failure here is logged (the client still gets Better-Auth's answer).
    async fn record(mut self, state: &AppState, body: &[u8], status: u16) {
        if self.actor_id == UNKNOWN_ACTOR
            && let Some(session) = caller_session(state, &self.headers, false).await
        {
            self.actor_id = session.user_id;
            self.context.session_id = Some(session.id);
            self.context.impersonated_by = session.impersonated_by;
        }
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let target = parsed
            .as_ref()
            .and_then(|b| b.get("userId"))
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN && !id.chars().any(char::is_control))
            .map(str::to_owned);
        let mut details = json!({"method": self.method, "path": self.path, "status": status});
        let kept = parsed.map(|b| redact(&b));
        match kept.map(|b| (b.to_string().len(), b)) {
            Some((len, b)) if len <= MAX_AUDITED_BODY_BYTES => details["body"] = b,
            Some((len, _)) => {
                details["body"] = Value::Null;
                details["bodyOmittedBytes"] = json!(len);
            }
            None => details["body"] = Value::Null,
        }
        let entry = NewAuditEntry {
            actor_id: &self.actor_id,
            action: &self.action,
            target_user_id: target.as_deref(),
            target_session_id: None,
            details,
            context: &self.context,
        };
        let recorded = match state.db().acquire().await {
            Ok(mut conn) => audit::record(&mut conn, entry).await,
            Err(err) => Err(err),
        };
        if let Err(error) = recorded {
            tracing::error!(%error, action = %self.action, actor = %self.actor_id,
                "auth proxy: Better-Auth accepted an admin write that could not be recorded in the audit trail");
        }
    }
}

/// The session behind the credential Better-Auth reads: a bearer session token (its bearer
/// plugin) first, then the session cookie. The signature is checked when `BETTER_AUTH_SECRET`
/// is set; with `proven_only`, only a credential whose signature was checked is looked up
/// (before Better-Auth answers); without, the token part of any is (after Better-Auth accepted
/// the write, so it has checked the credential itself).
async fn caller_session(state: &AppState, headers: &HeaderMap, proven_only: bool) -> Option<SessionRef> {
    let policy = state.auth.policy();
    let bearer = credential::bearer_token(headers)
        .ok()
        .filter(|token| !looks_like_jwt(token));
    let cookie = credential::session_cookie(headers, &policy.session_cookie, policy.secure_cookies);
    for presented in bearer.into_iter().chain(cookie) {
        let Ok(credential) = session_token(presented, policy.better_auth_secret.as_ref(), false) else {
            continue;
        };
        if proven_only && !credential.signed {
            continue;
        }
        let raw = credential.token;
        // A token known to match no session costs no second query within the minute.
        if state.auth.unknown_sessions().contains(&raw) {
            continue;
        }
        match state.auth.session_store().by_token(state.db(), &raw).await {
            Ok(Some(session)) => return Some(session),
            Ok(None) => state.auth.unknown_sessions().insert(&raw),
            Err(error) => {
                tracing::warn!(%error, "auth proxy: cannot look up the session of an admin write");
                return None;
            }
        }
    }
    None
}

/// The body fields of Better-Auth's admin endpoints the audit trail keeps as they are: who,
/// what role, why, until when, and a user's profile fields. Anything else (a new password, a
/// session token, a one-time code, whatever a later Better-Auth adds) is kept as a name whose
/// value is `[redacted]`: the trail says the field was sent, never what it held.
const AUDITED_FIELDS: [&str; 11] = [
    "userId",
    "role",
    "roles",
    "banReason",
    "banExpiresIn",
    "email",
    "name",
    "image",
    "emailVerified",
    "data",
    "limit",
];

/// A request body as the audit trail keeps it: [`AUDITED_FIELDS`] as sent (`data`, an
/// update's fields, looked at the same way), every other field's value `[redacted]`, at any
/// depth; NUL characters (which `jsonb` refuses) replaced.
fn redact(value: &Value) -> Value {
    fn clean(text: &str) -> String {
        text.replace('\0', "\u{fffd}")
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, value)| {
                    let kept = if AUDITED_FIELDS.contains(&name.as_str()) {
                        redact(value)
                    } else {
                        Value::String("[redacted]".into())
                    };
                    (clean(name), kept)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(text) => Value::String(clean(text)),
        other => other.clone(),
    }
}

fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_writes_are_recognised_as_better_auth_routes_them() {
        let write = |method: Method, path: &str| is_admin_write(&method, &auth_segments(path));
        for path in [
            "/api/auth/admin/ban-user",
            "/api/auth/ADMIN/ban-user",
            "/api/auth//admin//set-role/",
            "/api/auth/%61dmin/remove-user",
            "/api/auth/admin",
        ] {
            assert!(write(Method::POST, path), "{path}");
        }
        assert!(write(Method::DELETE, "/api/auth/admin/x"));
        for (method, path) in [
            (Method::GET, "/api/auth/admin/list-users"),
            (Method::HEAD, "/api/auth/admin/list-users"),
            (Method::OPTIONS, "/api/auth/admin/ban-user"),
            (Method::POST, "/api/auth/admin/has-permission"),
            (Method::POST, "/api/auth/admin/List-User-Sessions"),
            (Method::POST, "/api/auth/sign-in/email"),
            (Method::POST, "/api/auth/administrator/x"),
            (Method::POST, "/api/auth/organization/admin"),
        ] {
            assert!(!write(method.clone(), path), "{method} {path}");
        }
        assert_eq!(auth_segments("/api/auth//Admin/ban-user"), ["Admin", "ban-user"]);
    }

    #[test]
    fn audited_bodies_keep_only_the_known_fields_values_at_any_depth() {
        let body = json!({
            "userId": "u1", "newPassword": "hunter2", "sessionToken": "t", "backupCodes": ["1"],
            "data": {"name": "x\0y", "password": "p", "otp": "123456", "role": "admin"},
        });
        assert_eq!(
            redact(&body),
            json!({
                "userId": "u1", "newPassword": "[redacted]", "sessionToken": "[redacted]",
                "backupCodes": "[redacted]",
                "data": {"name": "x\u{fffd}y", "password": "[redacted]", "otp": "[redacted]", "role": "admin"},
            })
        );
    }

    #[test]
    fn dot_segments_and_encoded_slashes_are_refused() {
        for ok in [
            "/api/auth",
            "/api/auth/sign-in/email",
            "/api/auth/callback/google",
            "/api/auth/a%20b",
        ] {
            assert!(safe_path(ok), "{ok}");
        }
        for bad in [
            "/api/auth/../admin",
            "/api/auth/%2e%2e/x",
            "/api/auth/%2E%2e/x",
            "/api/auth/./jwks",
            "/api/auth/a%2fb",
            "/api/auth/a%5cb",
            "/api/auth/a\\b",
            "/api/auth/%zz",
            "/api/auth/%00",
        ] {
            assert!(!safe_path(bad), "{bad}");
        }
    }
}

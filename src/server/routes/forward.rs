//! `GET /auth/verify`: forward auth, so any backend (Python, Go, Node, ...) can sit behind
//! warden without linking anything. nginx (`auth_request`), Traefik (`forwardAuth`) and Caddy
//! (`forward_auth`) send each incoming request's headers here first:
//!
//! - a good credential → 200, empty body, and the identity headers of [`IDENTITY_HEADERS`]
//!   that apply (user, email and whether it is verified, roles, session, impersonator, active
//!   organization, credential kind), which the proxy copies onto the request it forwards after
//!   clearing every name on the list from the client's request;
//! - otherwise exactly the 401/403 problem+json (with `WWW-Authenticate`) `/users/me` gives.
//!
//! `?role=<role>` (one of `ROLES` or `ADMIN_ROLES`) also requires the role: 403 `forbidden`
//! without it (for an admin role, Better-Auth's admin rule decides, `ADMIN_USER_IDS` included).
//! `?verified=true` also requires a verified email: 403 `email_not_verified` without it.
//! `?scope=notes:read notes:write` makes the location one for OAuth clients (`RESOURCE_URL`):
//! only an access token of Better-Auth's OAuth provider holding every scope passes, answered
//! with `X-Auth-Client-Id` and `X-Auth-Scope`; without `?scope=`, no access token passes (a
//! person's own credential is needed), so no existing location opens to OAuth clients.
//! The original method and URI come from `X-Forwarded-Method`/`X-Forwarded-Uri` (Traefik,
//! Caddy) or `X-Original-Method`/`X-Original-URI` (nginx): the method decides the cookie rule
//! (`COOKIE_AUTH`), and only an unambiguous one counts (see `original_request`); both are
//! logged (the path only; a query string can hold secrets).

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{AuthErrors, Invalid};
use super::extract::{AppQuery, checked_text};
use crate::auth::oauth::scope;
use crate::auth::policy::access::describe;
use crate::auth::policy::{Connector, Statements};
use crate::auth::request::authenticate::{Want, access_token_required};
use crate::auth::request::credential;
use crate::auth::request::identify::Asked;
use crate::auth::{ApiKey, ApiKeyOwner, AuthUser, Caller, Client, Target};
use crate::db::organizations::Membership;
use crate::db::users::User;
use crate::error::ApiError;
use crate::server::state::AppState;

/// One header of warden's answer to `/auth/verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityHeader {
    /// The header's name, as the recipes and the README spell it.
    pub name: &'static str,
    /// What it carries.
    pub meaning: &'static str,
    /// `false` for the names later credentials (API keys, OAuth access tokens) will answer:
    /// reserved now, so every gateway already clears them from the client's request.
    pub answered: bool,
}

impl IdentityHeader {
    /// Every spelling of the name that CGI, WSGI and PHP servers read as this header: each
    /// hyphen may also be an underscore (`X-Auth-User-Id`, `X_Auth_User_Id`, `X-Auth_User-Id`,
    /// ...), since they all become `HTTP_X_AUTH_USER_ID`. The name itself comes first. A gateway
    /// that cannot drop every header with an underscore (as nginx does) must clear each one.
    pub fn spellings(&self) -> Vec<String> {
        let parts: Vec<&str> = self.name.split('-').collect();
        let joints = parts.len() - 1;
        (0..1u32 << joints)
            .map(|underscores| {
                let mut spelling = parts[0].to_owned();
                for (i, part) in parts[1..].iter().enumerate() {
                    spelling.push(if underscores & (1 << i) == 0 { '-' } else { '_' });
                    spelling.push_str(part);
                }
                spelling
            })
            .collect()
    }
}

/// Every identity header `/auth/verify` answers or will answer. A gateway in front of an app
/// must clear each name on this list from the client's request (and its underscore spelling,
/// `X_Auth_User_Id`, which CGI, WSGI and PHP servers read as the same variable) and then set
/// only what warden answered; the recipes in `deploy/forward-auth/` and README's table follow
/// this list, and the tests hold them to it.
pub const IDENTITY_HEADERS: [IdentityHeader; 12] = [
    IdentityHeader {
        name: "X-Auth-User-Id",
        meaning: "the user's id (the only stable key: key accounts on it, not on the email)",
        answered: true,
    },
    IdentityHeader {
        name: "X-Auth-User-Email",
        meaning: "the user's email address, verified or not (see X-Auth-User-Email-Verified)",
        answered: true,
    },
    IdentityHeader {
        name: "X-Auth-User-Email-Verified",
        meaning: "`true` when Better-Auth has verified the address, else `false`",
        answered: true,
    },
    IdentityHeader {
        name: "X-Auth-User-Role",
        meaning: "the user's roles, comma-joined (`user` when none): split on `,` without trimming, as Better-Auth does",
        answered: true,
    },
    IdentityHeader {
        name: "X-Auth-Session-Id",
        meaning: "the Better-Auth session behind the credential, when known",
        answered: true,
    },
    IdentityHeader {
        name: "X-Auth-Impersonated-By",
        meaning: "the admin acting as the user, when the session is an impersonation (known only when warden reads the session: a session token, or a JWT with `sid` unless `SESSION_CHECK=off`)",
        answered: true,
    },
    IdentityHeader {
        name: "X-Auth-Org-Id",
        meaning: "the session's active organization, when the caller is a member; for an organization's API key, the organization that owns it",
        answered: true,
    },
    IdentityHeader {
        name: "X-Auth-Org-Role",
        meaning: "the caller's roles in that organization, comma-joined",
        answered: true,
    },
    IdentityHeader {
        name: "X-Auth-Credential",
        meaning: "how the caller proved who they are: `jwt`, `session-token`, `cookie`, `api-key` or `oauth-access-token`",
        answered: true,
    },
    IdentityHeader {
        name: "X-Auth-Api-Key-Id",
        meaning: "the API key's id, when the caller sent an API key (`X-Auth-Credential: api-key`; its owner is in X-Auth-User-Id or X-Auth-Org-Id)",
        answered: true,
    },
    IdentityHeader {
        name: "X-Auth-Client-Id",
        meaning: "the OAuth client's id, when the caller sent an access token of Better-Auth's OAuth provider (`X-Auth-Credential: oauth-access-token`; X-Auth-User-Id only when a user granted it)",
        answered: true,
    },
    IdentityHeader {
        name: "X-Auth-Scope",
        meaning: "the access token's scopes, space-separated",
        answered: true,
    },
];

const X_AUTH_USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
const X_AUTH_USER_EMAIL: HeaderName = HeaderName::from_static("x-auth-user-email");
const X_AUTH_USER_EMAIL_VERIFIED: HeaderName = HeaderName::from_static("x-auth-user-email-verified");
const X_AUTH_USER_ROLE: HeaderName = HeaderName::from_static("x-auth-user-role");
const X_AUTH_SESSION_ID: HeaderName = HeaderName::from_static("x-auth-session-id");
const X_AUTH_IMPERSONATED_BY: HeaderName = HeaderName::from_static("x-auth-impersonated-by");
const X_AUTH_ORG_ID: HeaderName = HeaderName::from_static("x-auth-org-id");
const X_AUTH_ORG_ROLE: HeaderName = HeaderName::from_static("x-auth-org-role");
const X_AUTH_CREDENTIAL: HeaderName = HeaderName::from_static("x-auth-credential");
const X_AUTH_API_KEY_ID: HeaderName = HeaderName::from_static("x-auth-api-key-id");
const X_AUTH_CLIENT_ID: HeaderName = HeaderName::from_static("x-auth-client-id");
const X_AUTH_SCOPE: HeaderName = HeaderName::from_static("x-auth-scope");

/// The `/auth/verify` route.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VerifyParams {
    /// Also require this role (one of `ROLES` or `ADMIN_ROLES`).
    role: Option<String>,
    /// `true`: also require an email address Better-Auth has verified (403
    /// `email_not_verified` otherwise).
    verified: Option<bool>,
    /// Also require these permissions, `resource:action` separated by commas (`files:read,
    /// files:write`), all of them: of an API key, its own `permissions` (checked before its
    /// use is counted); of a user, their roles (Better-Auth's `userHasPermission`).
    permission: Option<String>,
    /// Also require these OAuth scopes, space- or comma-separated (`notes:read notes:write`),
    /// all of them: only an access token of Better-Auth's OAuth provider holds scopes (401
    /// `access_token_required` for any other credential; 403 `insufficient_scope` naming what
    /// is missing).
    scope: Option<String>,
}

/// Forward auth: 200 with `X-Auth-*` headers for a good credential, else the same 401/403 as
/// `/users/me`.
#[utoipa::path(
    get, path = "/auth/verify", tag = "forward-auth", security(("bearer" = [])), params(VerifyParams),
    responses(
        (status = 200, description = "Signed in; the headers name the caller", headers(
            ("x-auth-user-id" = String, description = "The user's id"),
            ("x-auth-user-email" = String, description = "The user's email, verified or not"),
            ("x-auth-user-email-verified" = String, description = "`true` when the email is verified, else `false`"),
            ("x-auth-user-role" = String, description = "The user's roles, comma-joined"),
            ("x-auth-session-id" = String, description = "The session behind the credential, when known"),
            ("x-auth-impersonated-by" = String, description = "The admin acting as the user, when the session is an impersonation"),
            ("x-auth-org-id" = String, description = "The session's active organization, when the caller is a member"),
            ("x-auth-org-role" = String, description = "The caller's roles in that organization, comma-joined"),
            ("x-auth-credential" = String, description = "`jwt`, `session-token`, `cookie` or `api-key`"),
            ("x-auth-api-key-id" = String, description = "The API key's id, for an API key"),
            ("x-auth-client-id" = String, description = "The OAuth client's id, for an access token"),
            ("x-auth-scope" = String, description = "The access token's scopes, space-separated"),
        )),
        AuthErrors, Invalid
    )
)]
async fn verify(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<VerifyParams>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let (method, path) = original_request(&parts.headers);
    tracing::debug!(
        original_method = method.as_ref().map_or("unknown", Method::as_str),
        original_path = %path.chars().take(256).collect::<String>(),
        "forward auth"
    );
    if let Some(role) = &params.role {
        checked_text("role", role, 64)?;
        let policy = state.auth.policy();
        if !policy.assignable_roles.contains(role) && !policy.admin_roles.contains(role) {
            return Err(ApiError::ValidationFailed(format!("unknown role {role:?}")));
        }
    }
    let permission = params.permission.as_deref().map(parse_permission).transpose()?;
    let scopes = match params.scope.as_deref() {
        Some(text) => {
            checked_text("scope", text, 1024)?;
            let scopes = scope::parse_list(text)
                .map_err(|bad| ApiError::ValidationFailed(format!("scope {bad:?} is not a scope")))?;
            if scopes.is_empty() {
                return Err(ApiError::ValidationFailed("scope names nothing".into()));
            }
            Some(scopes)
        }
        None => None,
    };
    let client = state.auth.client_ips().client_ip(&parts);
    // An API key, when the request has no Authorization header (which ranks first).
    if !parts.headers.contains_key(AUTHORIZATION)
        && credential::api_key(&parts.headers, &state.auth.policy().api_keys)?.is_some()
    {
        if scopes.is_some() {
            // Scopes are an OAuth client's; a key holds none (and its use is not counted).
            return Err(state.auth.challenged(access_token_required(), false));
        }
        // ?role= and ?verified= are asked of the key's owning user before a use is counted.
        let owner_check = |owner: Option<&User>| -> Result<(), ApiError> {
            if let Some(role) = &params.role {
                require_role(&state, owner, role)?;
            }
            if params.verified == Some(true) && !owner.is_some_and(|u| u.email_verified) {
                return Err(ApiError::EmailNotVerified);
            }
            Ok(())
        };
        let asked = Asked {
            permissions: permission.as_ref(),
            owner: Some(&owner_check),
        };
        let (key, owner) = state
            .auth
            .verify_api_key_with_owner(&parts.headers, client, asked)
            .await?;
        return Ok(key_identity_response(&key, owner.as_deref()));
    }
    let used_dpop = parts.headers.get(AUTHORIZATION).is_some_and(|v| {
        v.as_bytes()
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"dpop "))
    });
    let challenged = |err: ApiError| state.auth.challenged(err, used_dpop);
    // What a DPoP proof must name; only a request with the DPoP scheme can need it (a bound
    // token sent as Bearer is refused before any proof is read).
    let target = used_dpop.then(|| Target {
        method: method.as_ref().map_or("", Method::as_str),
        url: format!(
            "{}{path}",
            state.auth.policy().oauth.public_url.trim_end_matches('/')
        ),
    });
    // A location that names scopes is for OAuth clients only; one that names none, for people
    // only: an access token never passes with its user's whole authority.
    let want = if scopes.is_some() {
        Want::Client
    } else {
        Want::Person(None)
    };
    let caller = state
        .auth
        .authenticate_as(want, method.as_ref(), &parts.headers, client, target.as_ref())
        .await
        .and_then(|caller| caller.ok_or(ApiError::MissingToken))
        .map_err(|err| if scopes.is_some() { challenged(err) } else { err })?;
    let caller = match caller {
        Caller::User(user) => user,
        Caller::Client(client) => {
            let asked = scopes.as_deref().unwrap_or_default();
            let missing: Vec<String> = scope::missing(&client.token.scope(), asked.iter().copied())
                .into_iter()
                .map(str::to_owned)
                .collect();
            if !missing.is_empty() {
                return Err(challenged(ApiError::insufficient_scope(missing, asked.join(" "))));
            }
            let user = client.user.as_deref();
            if let Some(role) = &params.role {
                require_role(&state, user, role)?;
            }
            if let Some(permission) = &permission
                && !user.is_some_and(|u| state.auth.has_permission(u, permission, Connector::And))
            {
                return Err(ApiError::Forbidden(format!(
                    "this needs the permission {}",
                    describe(permission)
                )));
            }
            if params.verified == Some(true) && !user.is_some_and(|u| u.email_verified) {
                return Err(ApiError::EmailNotVerified);
            }
            return Ok(client_identity_response(&client));
        }
    };
    if scopes.is_some() {
        return Err(challenged(access_token_required()));
    }
    if let Some(role) = &params.role {
        require_role(&state, Some(&caller.user), role)?;
    }
    if let Some(permission) = &permission
        && !state
            .auth
            .has_permission(&caller.user, permission, Connector::And)
    {
        return Err(ApiError::Forbidden(format!(
            "this needs the permission {}",
            describe(permission)
        )));
    }
    if params.verified == Some(true) && !caller.user.email_verified {
        return Err(ApiError::EmailNotVerified);
    }
    let membership = state.auth.active_membership(&caller).await?;
    Ok(identity_response(&caller, membership.as_ref()))
}

/// 403 `forbidden` unless `user` holds `role` (an admin role: Better-Auth's admin rule,
/// `ADMIN_USER_IDS` included). No user (an organization's API key) holds no role.
fn require_role(state: &AppState, user: Option<&User>, role: &str) -> Result<(), ApiError> {
    let has = user.is_some_and(|user| {
        if state.auth.policy().admin_roles.iter().any(|r| r == role) {
            state.auth.is_admin(user)
        } else {
            user.holds_role(role)
        }
    });
    if !has {
        return Err(ApiError::Forbidden(format!("this requires the role {role:?}")));
    }
    Ok(())
}

/// `?permission=files:read,files:write` as statements (`{"files": ["read", "write"]}`).
fn parse_permission(text: &str) -> Result<Statements, ApiError> {
    checked_text("permission", text, 1024)?;
    let mut statements = Statements::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((resource, action)) = item.split_once(':') else {
            return Err(ApiError::ValidationFailed(format!(
                "permission {item:?} is not resource:action"
            )));
        };
        if resource.is_empty() || action.is_empty() || action.contains(':') {
            return Err(ApiError::ValidationFailed(format!(
                "permission {item:?} is not resource:action"
            )));
        }
        let actions = statements.entry(resource.to_owned()).or_default();
        if !actions.iter().any(|a| a == action) {
            actions.push(action.to_owned());
        }
    }
    if statements.is_empty() {
        return Err(ApiError::ValidationFailed("permission names nothing".into()));
    }
    Ok(statements)
}

/// The original request's method and path, as the proxy reports them: nginx's recipe names
/// them in `X-Original-Method`/`X-Original-URI`, Traefik and Caddy in
/// `X-Forwarded-Method`/`X-Forwarded-Uri`. The method decides the cookie rule, so it is taken
/// only when it is unambiguous: one value, and both spellings agreeing when both are present.
/// Anything else (none, two that differ, an unreadable one) is `None`, which the cookie rule
/// treats as an unsafe method: a proxy that passes the client's own headers through cannot
/// be talked into judging a `POST` as a `GET`.
fn original_request(headers: &HeaderMap) -> (Option<Method>, String) {
    let method = one_of(headers, ["x-forwarded-method", "x-original-method"])
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
    let path: String = one_of(headers, ["x-forwarded-uri", "x-original-uri"])
        .map(|u| u.split('?').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    (method, path)
}

/// The one value the headers `names` agree on: `None` when none is present, when one of them
/// is repeated or not text, or when two of them differ.
fn one_of<'a>(headers: &'a HeaderMap, names: [&str; 2]) -> Option<&'a str> {
    let mut agreed: Option<&str> = None;
    for name in names {
        let mut values = headers.get_all(name).iter();
        let Some(value) = values.next() else { continue };
        if values.next().is_some() {
            return None;
        }
        let value = value.to_str().ok()?.trim();
        match agreed {
            Some(earlier) if earlier != value => return None,
            _ => agreed = Some(value),
        }
    }
    agreed
}

/// The answer for an API key: its id, and its owner (the user's identity headers, or the
/// organization's id).
fn key_identity_response(key: &ApiKey, owner: Option<&User>) -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(user) = owner {
        set_user(headers, user);
    }
    let mut set = setter(headers);
    if let ApiKeyOwner::Organization(id) = &key.owner {
        set(X_AUTH_ORG_ID, id);
    }
    set(X_AUTH_API_KEY_ID, &key.id);
    set(X_AUTH_CREDENTIAL, "api-key");
    drop(set);
    response
}

/// The answer for an OAuth access token: its client and scopes, and the user who granted it
/// when there is one.
fn client_identity_response(client: &Client) -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The user's identity, not their roles: the client holds its scopes, not the user's role.
    if let Some(user) = &client.user {
        let mut set = setter(headers);
        set(X_AUTH_USER_ID, &user.id);
        set(X_AUTH_USER_EMAIL, &user.email);
        set(
            X_AUTH_USER_EMAIL_VERIFIED,
            if user.email_verified { "true" } else { "false" },
        );
    }
    let mut set = setter(headers);
    if let Some(session) = client.token.session_id() {
        set(X_AUTH_SESSION_ID, session);
    }
    set(X_AUTH_CLIENT_ID, client.client_id());
    set(X_AUTH_SCOPE, &client.token.scope());
    set(X_AUTH_CREDENTIAL, "oauth-access-token");
    drop(set);
    response
}

/// Sets a header, skipping a value that is not a valid header value.
fn setter(headers: &mut HeaderMap) -> impl FnMut(HeaderName, &str) + '_ {
    |name, value| {
        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
            headers.insert(name, value);
        }
    }
}

/// The user's identity headers.
fn set_user(headers: &mut HeaderMap, user: &User) {
    let mut set = setter(headers);
    set(X_AUTH_USER_ID, &user.id);
    set(X_AUTH_USER_EMAIL, &user.email);
    set(
        X_AUTH_USER_EMAIL_VERIFIED,
        if user.email_verified { "true" } else { "false" },
    );
    set(X_AUTH_USER_ROLE, &user.roles().join(","));
}

fn identity_response(caller: &AuthUser, membership: Option<&Membership>) -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    set_user(headers, &caller.user);
    let mut set = setter(headers);
    if let Some(session) = &caller.session_id {
        set(X_AUTH_SESSION_ID, session);
    }
    if let Some(admin) = &caller.impersonated_by {
        set(X_AUTH_IMPERSONATED_BY, admin);
    }
    if let Some(membership) = membership {
        set(X_AUTH_ORG_ID, &membership.organization_id);
        set(X_AUTH_ORG_ROLE, &membership.role);
    }
    set(X_AUTH_CREDENTIAL, caller.credential.kind());
    drop(set);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_method_is_taken_only_when_unambiguous() {
        let method = |pairs: &[(&str, &str)]| original_request(&headers(pairs)).0;
        assert_eq!(method(&[("x-original-method", "POST")]), Some(Method::POST));
        assert_eq!(method(&[("x-forwarded-method", "DELETE")]), Some(Method::DELETE));
        assert_eq!(
            method(&[("x-forwarded-method", "POST"), ("x-original-method", "POST")]),
            Some(Method::POST)
        );
        // The client's own header beside the proxy's: two answers, so none.
        assert_eq!(
            method(&[("x-forwarded-method", "GET"), ("x-original-method", "POST")]),
            None
        );
        assert_eq!(
            method(&[("x-forwarded-method", "GET"), ("x-forwarded-method", "POST")]),
            None
        );
        assert_eq!(method(&[]), None, "no method header: unknown, never GET");
        assert_eq!(method(&[("x-original-method", "NOT A METHOD")]), None);
    }

    #[test]
    fn every_spelling_a_cgi_server_folds_into_the_name() {
        let spellings = IDENTITY_HEADERS[0].spellings();
        assert_eq!(spellings.len(), 8, "{spellings:?}");
        assert_eq!(spellings[0], "X-Auth-User-Id");
        for spelling in [
            "X_Auth_User_Id",
            "X-Auth_User-Id",
            "X_Auth-User-Id",
            "X-Auth-User_Id",
        ] {
            assert!(spellings.iter().any(|s| s == spelling), "{spelling}");
        }
        let cgi = |name: &str| name.to_ascii_uppercase().replace('-', "_");
        let mut all = 0;
        for header in IDENTITY_HEADERS {
            let spellings = header.spellings();
            let mut unique = spellings.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), spellings.len());
            assert!(spellings.iter().all(|s| cgi(s) == cgi(header.name)));
            all += spellings.len();
        }
        assert_eq!(all, 104);
    }

    #[test]
    fn the_list_names_every_header_the_answer_sets_and_each_once() {
        let names: Vec<String> = IDENTITY_HEADERS
            .iter()
            .map(|h| h.name.to_ascii_lowercase())
            .collect();
        for set in [
            &X_AUTH_USER_ID,
            &X_AUTH_USER_EMAIL,
            &X_AUTH_USER_EMAIL_VERIFIED,
            &X_AUTH_USER_ROLE,
            &X_AUTH_SESSION_ID,
            &X_AUTH_IMPERSONATED_BY,
            &X_AUTH_ORG_ID,
            &X_AUTH_ORG_ROLE,
            &X_AUTH_CREDENTIAL,
            &X_AUTH_API_KEY_ID,
        ] {
            assert!(
                names.contains(&set.as_str().to_owned()),
                "{set} is not on the list"
            );
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().all(|n| n.starts_with("x-auth-")));
    }
}

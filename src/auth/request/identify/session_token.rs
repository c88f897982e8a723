//! Step 1 for a Better-Auth session token, from the bearer header (the bearer plugin's, raw or
//! signed) or the session cookie (always signed): its form and HMAC, the refusal memory, then
//! the session it names. A session token whose HMAC was checked is proof that Better-Auth made
//! it, so reading its session is never junk's cost; an unsigned one is, and is read only when
//! the client's ticket allows dear work. A token seen before (with sessions in the table) finds
//! its session by id, in the row cache (`session::known`).

use time::OffsetDateTime;

use super::{Checked, DearWork, Proof};
use crate::auth::Auth;
use crate::auth::request::throttle::Ticket;
use crate::auth::session::known::token_key;
use crate::auth::session::refused::Refused;
use crate::auth::session::token::session_token;
use crate::error::ApiError;

impl Auth {
    /// `credential` is the bearer token, or with `from_cookie` the session cookie's value.
    pub(super) async fn identify_session_token(
        &self,
        credential: &str,
        from_cookie: bool,
        ticket: &mut Ticket<'_>,
    ) -> Checked {
        let policy = self.policy();
        let refusal = |why: &str| {
            if from_cookie {
                ApiError::InvalidToken(format!("the session cookie: {why}"))
            } else {
                not_a_session_token(credential, why)
            }
        };
        // The cookie is always the signed form.
        let require_signature = from_cookie || policy.require_signed_session_tokens;
        let token = match session_token(credential, policy.better_auth_secret.as_ref(), require_signature) {
            Ok(token) => token,
            Err(e) => return Ok(Err(refusal(&e.to_string()))),
        };
        // Unknown and signed-out tokens look the same here: neither is a live session.
        let unknown = || {
            refusal(
                "no live session has this session token: it was signed out, it expired, or it never existed",
            )
        };
        let key = token_key(&token.token);
        match self.unknown_sessions().refused_key(&key) {
            Some(Refused::Unknown) => return Ok(Err(unknown())),
            Some(Refused::Expired) => return Ok(Err(ApiError::TokenExpired)),
            None => {}
        }
        let in_table = self.session_store().in_table();
        // A token seen before: its session by id, from the row cache while it is trusted (a
        // read by id otherwise). Bounded work, like any session a credential names.
        let known = if in_table {
            self.known_sessions().session_of(&key)
        } else {
            None
        };
        let found = match known {
            Some(id) => match self.session(None, &id).await {
                Ok(Some(session)) => Ok(Some((*session).clone())),
                Ok(None) => {
                    self.known_sessions().forget(&key);
                    Ok(None)
                }
                Err(e) => Err(e),
            },
            None => {
                if !token.signed && !ticket.allow_dear() {
                    return Err(DearWork);
                }
                let found = self.session_store().by_token(self.db(), &token.token).await;
                if in_table && let Ok(Some(session)) = &found {
                    self.known_sessions().remember(key, &session.id);
                }
                found
            }
        };
        Ok(match found {
            Ok(Some(session)) => {
                // Step 4 refuses it; Better-Auth never extends an expired session.
                if session.expires_at <= OffsetDateTime::now_utc() {
                    self.unknown_sessions().remember(&token.token, Refused::Expired);
                }
                Ok(Proof::Session { session, from_cookie })
            }
            Ok(None) => {
                self.unknown_sessions().insert(&token.token);
                Err(unknown())
            }
            Err(e) => Err(e),
        })
    }
}

/// A bearer credential that is not a usable session token. One that starts like a JWT's
/// header (`eyJ`, base64url of `{"`) but is not three dot-separated parts was most likely a JWT
/// cut short (a truncated copy, a header that clipped it): say so rather than talk of
/// sessions. (A real session token that happens to start so was found before this is asked.)
fn not_a_session_token(credential: &str, why: &str) -> ApiError {
    if credential.starts_with("eyJ") {
        let parts = credential.bytes().filter(|b| *b == b'.').count() + 1;
        return ApiError::InvalidToken(format!(
            "this looks like a JWT cut short or altered: it has {parts} dot-separated part{}, a JWT has 3",
            if parts == 1 { "" } else { "s" }
        ));
    }
    ApiError::InvalidToken(format!(
        "{why} (the credential is not a JWT, which has 3 dot-separated parts, so it was read as a Better-Auth session token)"
    ))
}

//! Step 1 for an OAuth access token of Better-Auth's provider. A JWT access token went
//! through the JWT step (the verifier tells it by its `typ`); here is the opaque form: its
//! row, found by its stored form (base64url of its SHA-256, as the plugin stores it) in the
//! notification-invalidated cache or the database, then the plugin's introspection checks
//! in its order: not expired, not revoked, for this resource. Its client and its session are
//! checked with the JWT form's, in `authenticate`.
//!
//! An opaque token looks like a session token (both are short random strings). The session is
//! asked first, since first-party clients send those; a string that is no session is looked up
//! here, only while the client's ticket allows dear work (an unknown string costs a read).

use std::sync::Arc;

use time::OffsetDateTime;

use super::{Checked, DearWork, Proof};
use crate::auth::Auth;
use crate::auth::api_key::{cache_slot, stored_form};
use crate::auth::oauth::token::AccessToken;
use crate::auth::request::throttle::Ticket;
use crate::db::oauth_tokens::{self, StoredAccessToken};
use crate::error::ApiError;

impl Auth {
    /// The cached opaque access token `token`, without any read (the hot path).
    pub(super) fn cached_opaque(&self, token: &str) -> Option<Arc<StoredAccessToken>> {
        self.rows().access_token(&cache_slot(&stored_form(token, true)))
    }

    /// `token` as an opaque access token: its row and the plugin's verdict on it.
    pub(super) async fn identify_opaque(&self, token: &str, ticket: &mut Ticket<'_>) -> Checked {
        let stored = stored_form(token, true);
        let slot = cache_slot(&stored);
        let row = match self.rows().access_token(&slot) {
            Some(row) => row,
            None => {
                if !ticket.allow_dear() {
                    return Err(DearWork);
                }
                let read_ticket = self.rows().ticket(&slot);
                match oauth_tokens::find_by_token(self.db(), &stored).await {
                    Ok(Some(row)) => {
                        let row = Arc::new(row);
                        self.rows().put_access_token(&slot, Arc::clone(&row), read_ticket);
                        row
                    }
                    Ok(None) => {
                        return Ok(Err(ApiError::InvalidToken(
                            "no live session or OAuth access token is this token: it was signed out or revoked, it expired, or it never existed"
                                .into(),
                        )));
                    }
                    Err(e) => return Ok(Err(e.into())),
                }
            }
        };
        Ok(self
            .opaque_verdict(row)
            .map(|row| Proof::Access(AccessToken::Opaque(row))))
    }

    /// The plugin's checks of an opaque token's row, in its order; then the resource it is for
    /// (a token issued for other resources only is not this server's).
    fn opaque_verdict(&self, row: Arc<StoredAccessToken>) -> Result<Arc<StoredAccessToken>, ApiError> {
        if row.expires_at < OffsetDateTime::now_utc() {
            return Err(ApiError::TokenExpired);
        }
        if row.revoked {
            return Err(ApiError::InvalidToken("the access token was revoked".into()));
        }
        let resource = self.policy().oauth.resource.as_deref();
        if !row.resources.is_empty() && !row.resources.iter().any(|r| Some(r.as_str()) == resource) {
            return Err(ApiError::InvalidToken(
                "the access token is for another resource".into(),
            ));
        }
        Ok(row)
    }

    /// A cached opaque token's verdict (the hot path's).
    pub(super) fn cached_opaque_proof(&self, row: Arc<StoredAccessToken>) -> Result<Proof, ApiError> {
        self.opaque_verdict(row)
            .map(|row| Proof::Access(AccessToken::Opaque(row)))
    }
}

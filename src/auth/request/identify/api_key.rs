//! Step 1 for an API key (`x-api-key`, or the headers `API_KEY_HEADERS` names): the plugin's
//! `verifyApiKey`, in its order (`crate::auth::api_key`), with warden's owner check before a
//! use is claimed. Nothing vouches for a key before its row is read (it carries no signature),
//! so the read is dear work: an address out of attempts is answered 429 before it. A key's row
//! stays in the row cache, dropped by the `warden_api_key` notification when anything the
//! checks before the claim read changes (its counters change on every use and send nothing:
//! the claim reads them fresh, under its lock). A key that counts something then costs one
//! statement a use, the claim; one that counts nothing (no quota, no rate limit) none, its use
//! only stamped, at most once a second (`api_key::stamps`).

use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;

use super::{Checked, DearWork, Proof};
use crate::auth::Auth;
use crate::auth::api_key::verdict::{self, Refusal};
use crate::auth::api_key::{ApiKey, ApiKeyOwner, stored_form};
use crate::auth::policy::Statements;
use crate::auth::policy::access::describe;
use crate::auth::request::authenticate::refuse_ban;
use crate::auth::request::throttle::Ticket;
use crate::db::api_keys::{self, ApiKeyRow, Claimed};
use crate::db::users::User;
use crate::error::ApiError;

impl Auth {
    /// `key` as the request sent it; `permissions`, when asked, must be granted by the key's
    /// own (before any use is claimed, as in the plugin). A key whose row is cached needs no
    /// read before its claim (and one that counts nothing no claim either); reading the row of
    /// a key found before is bounded work (`api_key::known`); reading any other is dear work.
    pub(super) async fn identify_api_key(
        &self,
        key: &str,
        permissions: Option<&Statements>,
        ticket: &mut Ticket<'_>,
    ) -> Checked {
        let settings = &self.policy().api_keys;
        let stored = stored_form(key, settings.hashing);
        if let Some(row) = self.rows().api_key(&stored) {
            return Ok(self.use_key(&row, permissions).await);
        }
        if !self.known_api_keys().contains(&stored) && !ticket.allow_dear() {
            return Err(DearWork);
        }
        let read = self.rows().ticket(&stored);
        let found = match api_keys::find_by_key(self.db(), &stored).await {
            Ok(found) => found,
            Err(e) => return Ok(Err(e.into())),
        };
        self.known_api_keys().found(&stored, found.is_some());
        let Some(row) = found.map(Arc::new) else {
            return Ok(Err(ApiError::InvalidApiKey("no API key is this one".into())));
        };
        self.rows().put_api_key(&stored, Arc::clone(&row), read);
        Ok(self.use_key(&row, permissions).await)
    }

    /// The plugin's verdict on `row` at this moment, and one use of it: claimed in the
    /// database when it counts something, else only stamped (at most once a second).
    async fn use_key(&self, row: &ApiKeyRow, permissions: Option<&Statements>) -> Result<Proof, ApiError> {
        let settings = &self.policy().api_keys;
        // The plugin's clock has milliseconds; so do the timestamps it compares and writes.
        let now = now_millis();
        if let Err(refusal) = verdict::precheck(row, settings, permissions, now) {
            if refusal.deletes() {
                api_keys::delete(self.db(), &row.id).await?;
            }
            return Err(refused(refusal, permissions));
        }
        let owner = match settings.owner_of(&row.config_id, &row.reference_id) {
            ApiKeyOwner::User(id) => Some(self.key_owner(&id, now).await?),
            ApiKeyOwner::Organization(id) => {
                if !api_keys::organization_exists(self.db(), &id).await? {
                    return Err(ApiError::InvalidApiKey(
                        "the organization this API key belongs to no longer exists".into(),
                    ));
                }
                None
            }
        };
        let remaining = match verdict::counts_nothing(row, settings) {
            Some(last_request) => {
                if self.api_key_stamps().due(&row.id, Instant::now()) {
                    api_keys::stamp(self.db(), &row.id, now, last_request).await?;
                }
                None
            }
            None => match api_keys::claim(self.db(), &row.id, now, settings.rate_limits).await? {
                Claimed::Granted { remaining } => remaining,
                Claimed::UsageExceeded {
                    remaining,
                    refill_amount,
                } => {
                    if verdict::used_up(remaining, refill_amount) {
                        api_keys::delete(self.db(), &row.id).await?;
                    }
                    return Err(ApiError::UsageExceeded);
                }
                Claimed::RateLimited { retry_after_ms } => {
                    return Err(ApiError::RateLimited {
                        retry_after_secs: u64::try_from(retry_after_ms).unwrap_or(0).div_ceil(1000).max(1),
                    });
                }
                // Deleted since it was read: a key with a quota was used up and deleted by
                // another request (the plugin's failing decrement says "usage exceeded" then);
                // any other is simply gone.
                Claimed::Gone if row.remaining.is_some() => return Err(ApiError::UsageExceeded),
                Claimed::Gone => return Err(ApiError::InvalidApiKey("no API key is this one".into())),
            },
        };
        Ok(Proof::ApiKey {
            key: Arc::new(ApiKey::of(row, settings, remaining)),
            owner,
        })
    }

    /// A user-owned key's owner, fresh: gone or banned stops the key.
    async fn key_owner(&self, id: &str, now: OffsetDateTime) -> Result<Arc<User>, ApiError> {
        let user = match self.load_user(id).await {
            Err(ApiError::UserNotFound) => {
                return Err(ApiError::InvalidApiKey(
                    "the user this API key belongs to no longer exists".into(),
                ));
            }
            found => found?,
        };
        refuse_ban(&user, now)?;
        Ok(user)
    }
}

/// The refusal a client hears.
fn refused(refusal: Refusal, permissions: Option<&Statements>) -> ApiError {
    match refusal {
        Refusal::OtherConfiguration => {
            ApiError::InvalidApiKey("this API key belongs to another configuration".into())
        }
        Refusal::Disabled => ApiError::ApiKeyDisabled,
        Refusal::Expired => ApiError::ApiKeyExpired,
        Refusal::NotPermitted => ApiError::Forbidden(format!(
            "this API key lacks the permission {}",
            describe(permissions.unwrap_or(&Statements::new()))
        )),
    }
}

/// Now, to the millisecond.
fn now_millis() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now)
}

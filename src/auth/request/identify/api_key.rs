//! Step 1 for an API key (`x-api-key`, or the headers `API_KEY_HEADERS` names): the plugin's
//! `verifyApiKey`, in its order (`crate::auth::api_key`), with warden's owner check before a
//! use is claimed. Nothing vouches for a key before its row is read (it carries no signature),
//! so the read is dear work: an address out of attempts is answered 429 before it. A key's row
//! stays in the row cache, dropped by the `warden_api_key` notification when anything the
//! checks before the claim read changes (its counters change on every use and send nothing:
//! the claim reads them fresh, under its lock). A key that counts something then costs one
//! statement a use, the claim; one that counts nothing (no quota, no rate limit) none, its use
//! only stamped, at most once a second, later stamps written together (`api_key::stamps`).

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;

use time::OffsetDateTime;

use super::{Checked, DearWork, Proof};
use crate::auth::Auth;
use crate::auth::api_key::stamps::Due;
use crate::auth::api_key::verdict::{self, Refusal};
use crate::auth::api_key::{ApiKey, ApiKeyOwner, cache_slot, stored_form};
use crate::auth::policy::Statements;
use crate::auth::policy::access::describe;
use crate::auth::request::authenticate::refuse_ban;
use crate::auth::request::throttle::Ticket;
use crate::db::api_keys::{self, ApiKeyRow, Claimed};
use crate::db::users::User;
use crate::error::ApiError;

/// What a request asks of a key besides being valid, all checked before a use is counted: the
/// key's own permissions, and a check of its owner (`None` for an organization's key).
#[derive(Clone, Copy, Default)]
pub(crate) struct Asked<'a> {
    pub(crate) permissions: Option<&'a Statements>,
    pub(crate) owner: Option<&'a OwnerCheck<'a>>,
}

/// A check of a key's owning user (`None`: an organization owns the key).
pub(crate) type OwnerCheck<'a> = dyn Fn(Option<&User>) -> Result<(), ApiError> + Send + Sync + 'a;

impl Auth {
    /// `key` as the request sent it; `permissions`, when asked, must be granted by the key's
    /// own (before any use is claimed, as in the plugin). A key whose row is cached needs no
    /// read before its claim (and one that counts nothing no claim either); reading the row of
    /// a key found before is bounded work (`api_key::known`); reading any other is dear work.
    pub(super) async fn identify_api_key(
        &self,
        key: &str,
        asked: Asked<'_>,
        ticket: &mut Ticket<'_>,
    ) -> Checked {
        let settings = &self.policy().api_keys;
        let stored = stored_form(key, settings.hashing);
        let slot = cache_slot(&stored);
        let verdict = if let Some(row) = self.rows().api_key(&slot) {
            self.use_key(&row, asked).await
        } else {
            if !self.known_api_keys().contains(&slot) && !ticket.allow_dear() {
                return Err(DearWork);
            }
            let read = self.rows().ticket(&slot);
            let found = match api_keys::find_by_key(self.db(), &stored).await {
                Ok(found) => found,
                Err(e) => return Ok(Err(e.into())),
            };
            let Some(row) = found.map(Arc::new) else {
                self.known_api_keys().found(&slot, false);
                return Ok(Err(ApiError::InvalidApiKey("no API key is this one".into())));
            };
            self.rows().put_api_key(&slot, Arc::clone(&row), read);
            self.known_api_keys().found(&slot, true);
            self.use_key(&row, asked).await
        };
        // A key refused as no credential (gone, disabled, expired, of another configuration,
        // its owner gone) is junk again: its next read is dear work.
        if verdict
            .as_ref()
            .is_err_and(|e| e.status() == StatusCode::UNAUTHORIZED)
        {
            self.known_api_keys().found(&slot, false);
        }
        Ok(verdict)
    }

    /// The plugin's verdict on `row` at this moment, and one use of it: claimed in the
    /// database when it counts something, else only stamped (at most once a second).
    async fn use_key(&self, row: &ApiKeyRow, asked: Asked<'_>) -> Result<Proof, ApiError> {
        let settings = &self.policy().api_keys;
        // The plugin's clock has milliseconds; so do the timestamps it compares and writes.
        let now = now_millis();
        if let Err(refusal) = verdict::precheck(row, settings, asked.permissions, now) {
            if refusal.deletes() {
                // Guarded: a key given a later expiry since the row was read stays.
                api_keys::delete_expired(self.db(), &row.id, now).await?;
            }
            return Err(refused(refusal, asked.permissions));
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
        // What the caller asks of the owner (forward auth's ?role= and ?verified=), before a
        // use is counted, as the key's own permissions are.
        if let Some(check) = asked.owner {
            check(owner.as_deref())?;
        }
        let remaining = match verdict::counts_nothing(row, settings) {
            Some(last_request) => {
                let due = self
                    .api_key_stamps()
                    .due(&row.id, Instant::now(), settings.stamp_every);
                match due {
                    Due::No => {}
                    Due::First => api_keys::stamp(self.db(), &row.id, now, last_request).await?,
                    Due::Again => self.api_key_stamps().queue(&row.id, now, last_request),
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
                        // Guarded: a key given more uses since the claim stays.
                        api_keys::delete_used_up(self.db(), &row.id).await?;
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

//! Step 1 for an API key (`x-api-key`, or the headers `API_KEY_HEADERS` names): the plugin's
//! `verifyApiKey`, in its order (`crate::auth::api_key`), with warden's owner check before a
//! use is claimed. Nothing vouches for a key before its row is read (it carries no signature),
//! so the read is dear work: an address out of attempts is answered 429 before it. A key's row
//! stays in the row cache, dropped by the `warden_api_key` notification when anything the
//! checks before the claim read changes (its counters change on every use and send nothing:
//! the claim reads them fresh, under its lock). A key that counts something then costs one
//! statement a use, the claim; one that counts nothing (no quota, no rate limit) none, its use
//! only stamped, at most once a second, later stamps written together (`api_key::stamps`).
//!
//! Keys the plugin keeps in secondary storage alone are read from Redis (kept in memory under
//! client tracking, as sessions are) and counted there with a compare-and-set
//! (`crate::redis::api_keys`); with `fallbackToDatabase` the table decides, as above, and the
//! Redis copies of a key warden changed are dropped.

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;

use time::OffsetDateTime;

use super::{Checked, DearWork, Proof};
use crate::auth::Auth;
use crate::auth::api_key::secondary::{self, Use};
use crate::auth::api_key::stamps::Due;
use crate::auth::api_key::verdict::{self, Refusal};
use crate::auth::api_key::{ApiKey, ApiKeyOwner, ApiKeyStorage, cache_slot, stored_form};
use crate::auth::policy::Statements;
use crate::auth::policy::access::describe;
use crate::auth::request::authenticate::refuse_ban;
use crate::auth::request::throttle::Ticket;
use crate::db::api_keys::{self, ApiKeyRow, Claimed};
use crate::db::users::User;
use crate::error::ApiError;
use crate::redis::api_keys::{RedisApiKeys, Replaced, StoredApiKey};

/// What a request asks of a key besides being valid, all checked before a use is counted: the
/// key's own permissions, and a check of its owner (`None` for an organization's key).
#[derive(Clone, Copy, Default)]
pub(crate) struct Asked<'a> {
    pub(crate) permissions: Option<&'a Statements>,
    pub(crate) owner: Option<&'a OwnerCheck<'a>>,
}

/// A check of a key's owning user (`None`: an organization owns the key).
pub(crate) type OwnerCheck<'a> = dyn Fn(Option<&User>) -> Result<(), ApiError> + Send + Sync + 'a;

/// Where the key in use was read.
enum Source {
    /// The `apikey` table: the plugin's `database` storage, or secondary storage with
    /// `fallbackToDatabase`, whose Redis copies are dropped after warden changes the row.
    Table,
    /// Redis alone (`storage: "secondary-storage"`): the value read, for its compare-and-set.
    Redis(Arc<StoredApiKey>),
}

/// How often a claim in Redis is decided again on a key that changed under it (another
/// process, or Better-Auth, counting the same key at the same moment).
const CLAIM_ATTEMPTS: usize = 16;

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
        let in_redis = match settings.storage {
            ApiKeyStorage::SecondaryStorage => self.session_store().api_keys(),
            _ => None,
        };
        let verdict = if let Some(redis) = in_redis {
            let found = match redis.cached(&stored) {
                Some(found) => Some(found),
                None => {
                    if !self.known_api_keys().contains(&slot) && !ticket.allow_dear() {
                        return Err(DearWork);
                    }
                    match redis.find(&stored).await {
                        Ok(found) => found,
                        Err(e) => return Ok(Err(e.into())),
                    }
                }
            };
            let Some(found) = found else {
                self.known_api_keys().found(&slot, false);
                return Ok(Err(ApiError::InvalidApiKey("no API key is this one".into())));
            };
            self.known_api_keys().found(&slot, true);
            let row = found.row.clone();
            self.use_key(&row, &stored, Source::Redis(found), asked).await
        } else if let Some(row) = self.rows().api_key(&slot) {
            self.use_key(&row, &stored, Source::Table, asked).await
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
            self.use_key(&row, &stored, Source::Table, asked).await
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

    /// The plugin's verdict on `row` (read from `source`) at this moment, and one use of it:
    /// claimed where the key is kept when it counts something, else only stamped (at most
    /// once a second).
    async fn use_key(
        &self,
        row: &ApiKeyRow,
        stored: &str,
        source: Source,
        asked: Asked<'_>,
    ) -> Result<Proof, ApiError> {
        let settings = &self.policy().api_keys;
        // The plugin's clock has milliseconds; so do the timestamps it compares and writes.
        let now = now_millis();
        if let Err(refusal) = verdict::precheck(row, settings, asked.permissions, now) {
            if refusal.deletes() {
                // Guarded: a key given a later expiry since it was read stays.
                match &source {
                    Source::Redis(found) => self.redis_keys()?.delete(found).await?,
                    Source::Table => {
                        api_keys::delete_expired(self.db(), &row.id, now).await?;
                        self.forget_copies(stored, row, true).await;
                    }
                }
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
        let counts_nothing = verdict::counts_nothing(row, settings);
        let due = counts_nothing.map(|_| {
            self.api_key_stamps()
                .due(&row.id, Instant::now(), settings.stamp_every)
        });
        let (remaining, row) = match (source, counts_nothing, due) {
            (Source::Redis(_), Some(_), Some(Due::No)) => (None, row),
            (Source::Redis(found), _, _) => {
                // Built from the value the use was written on (it may have changed since read).
                let (remaining, written) = self.claim_in_redis(&found, asked, now).await?;
                return Ok(Proof::ApiKey {
                    key: Arc::new(ApiKey::of(&written.row, settings, remaining)),
                    owner,
                });
            }
            (Source::Table, Some(last_request), due) => {
                match due {
                    Some(Due::First) => api_keys::stamp(self.db(), &row.id, now, last_request).await?,
                    Some(Due::Again) => self.api_key_stamps().queue(&row.id, now, last_request),
                    _ => {}
                }
                (None, row)
            }
            (Source::Table, None, _) => {
                let claimed = api_keys::claim(self.db(), &row.id, now, settings.rate_limits).await?;
                self.forget_copies(stored, row, false).await;
                match claimed {
                    Claimed::Granted { remaining } => (remaining.map(i64::from), row),
                    Claimed::UsageExceeded {
                        remaining,
                        refill_amount,
                    } => {
                        if verdict::used_up(remaining, refill_amount) {
                            // Guarded: a key given more uses since the claim stays.
                            api_keys::delete_used_up(self.db(), &row.id).await?;
                            self.forget_copies(stored, row, true).await;
                        }
                        return Err(ApiError::UsageExceeded);
                    }
                    Claimed::RateLimited { retry_after_ms } => return Err(rate_limited(retry_after_ms)),
                    Claimed::Gone => return Err(gone(row)),
                }
            }
        };
        Ok(Proof::ApiKey {
            key: Arc::new(ApiKey::of(row, settings, remaining)),
            owner,
        })
    }

    /// Redis's API keys (configured whenever keys are kept there: checked at start).
    fn redis_keys(&self) -> Result<&RedisApiKeys, ApiError> {
        self.session_store()
            .api_keys()
            .ok_or_else(|| ApiError::SessionStoreUnavailable("no Redis is configured".into()))
    }

    /// One use of a key kept in Redis alone, decided as the plugin's secondary-storage claim
    /// (`api_key::secondary`) on the value read, and written only while the key still holds
    /// it; decided again on the newer value otherwise. The uses left, and the value written on.
    async fn claim_in_redis(
        &self,
        found: &Arc<StoredApiKey>,
        asked: Asked<'_>,
        now: OffsetDateTime,
    ) -> Result<(Option<i64>, Arc<StoredApiKey>), ApiError> {
        let settings = &self.policy().api_keys;
        let redis = self.redis_keys()?;
        let _in_line = redis.lock(&found.row.id).await;
        let mut current = Arc::clone(found);
        for _ in 0..CLAIM_ATTEMPTS {
            let row = &current.row;
            if verdict::used_up(row.remaining, row.refill_amount) {
                // The plugin deletes a used-up key without refill, and refuses it.
                redis.delete(&current).await?;
                return Err(ApiError::UsageExceeded);
            }
            let (remaining, changes) = match secondary::claim(row, &current.counters, settings, now) {
                Use::Granted { remaining, changes } => (remaining, changes),
                Use::UsageExceeded => return Err(ApiError::UsageExceeded),
                Use::RateLimited { retry_after_ms } => return Err(rate_limited(retry_after_ms)),
            };
            let ttl = secondary::ttl_secs(row.expires_at, now);
            match redis.replace(&current, &changes, ttl).await? {
                Replaced::Done => return Ok((remaining, current)),
                Replaced::Gone => return Err(gone(&found.row)),
                Replaced::Changed(fresh) => {
                    // Changed meanwhile: switched off, expired or narrowed keys stop here.
                    verdict::precheck(&fresh.row, settings, asked.permissions, now)
                        .map_err(|refusal| refused(refusal, asked.permissions))?;
                    current = fresh;
                }
            }
        }
        Err(ApiError::SessionStoreUnavailable(
            "the key changed under every attempt to count its use".into(),
        ))
    }

    /// With `fallbackToDatabase`, drops Redis's copies of a key warden changed in the table
    /// (and its owner's cached list when the key was deleted), as the plugin refreshes them,
    /// so that the plugin reads the table again. The table decided; a failure here is logged.
    async fn forget_copies(&self, stored: &str, row: &ApiKeyRow, deleted: bool) {
        let settings = &self.policy().api_keys;
        if settings.storage != ApiKeyStorage::SecondaryStorageWithFallback {
            return;
        }
        let Some(redis) = self.session_store().api_keys() else {
            return;
        };
        let reference = deleted.then_some(row.reference_id.as_str());
        if let Err(err) = redis.forget(stored, &row.id, reference).await {
            tracing::warn!(error = %err, key_id = %row.id, "Redis's copy of an API key was not dropped");
        }
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

/// 429 `rate_limited`, with the plugin's `tryAgainIn` in whole seconds (at least one).
fn rate_limited(retry_after_ms: i64) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: u64::try_from(retry_after_ms).unwrap_or(0).div_ceil(1000).max(1),
    }
}

/// A key deleted since it was read: one with a quota was used up and deleted by another
/// request (the plugin's failing decrement says "usage exceeded" then); any other is gone.
fn gone(row: &ApiKeyRow) -> ApiError {
    if row.remaining.is_some() {
        ApiError::UsageExceeded
    } else {
        ApiError::InvalidApiKey("no API key is this one".into())
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

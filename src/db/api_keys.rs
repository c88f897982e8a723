//! The api-key plugin's `apikey` table (`@better-auth/api-key`, database storage).
//!
//! Better-Auth writes it (create, update, delete, and its own verifications); warden reads a
//! key by its stored form and claims a use of it exactly as the plugin's `verifyApiKey` does
//! in its database mode: the quota (`remaining`, with its refill) first, then the rate-limit
//! window, then `updated_at`. The plugin makes each step a guarded update (compare-and-swap on
//! the values it read); [`claim`] makes the whole claim one statement on the row locked
//! `FOR UPDATE`, so every guard holds by construction, and a verification through Better-Auth
//! that runs at the same time waits for the lock and then re-checks its own guards against
//! the row warden wrote. Either way a use is counted once and a quota is never overdrawn.

use sqlx::PgPool;
use time::OffsetDateTime;

/// One row of `apikey`, as the plugin stores it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApiKeyRow {
    /// The key's id.
    pub id: String,
    /// The plugin configuration the key belongs to (`configId`; `default` unless several).
    pub config_id: String,
    /// The key's name.
    pub name: Option<String>,
    /// The key's first characters, kept in clear to recognise it (`start`).
    pub start: Option<String>,
    /// The owner: a user's id, or an organization's (`referenceId`).
    pub reference_id: String,
    /// The prefix the key was made with.
    pub prefix: Option<String>,
    /// Milliseconds between refills of `remaining`.
    pub refill_interval: Option<i32>,
    /// What a refill sets `remaining` to.
    pub refill_amount: Option<i32>,
    /// The last refill (else the creation counts).
    pub last_refill_at: Option<OffsetDateTime>,
    /// `false`: switched off. `NULL` counts as on, as in the plugin.
    pub enabled: Option<bool>,
    /// The key's own rate-limit switch (`false`: off).
    pub rate_limit_enabled: Option<bool>,
    /// The rate-limit window, milliseconds.
    pub rate_limit_time_window: Option<i32>,
    /// The requests allowed in a window.
    pub rate_limit_max: Option<i32>,
    /// The requests counted in the current window.
    pub request_count: Option<i32>,
    /// Uses left; `NULL`: unlimited.
    pub remaining: Option<i32>,
    /// The last request counted (the rate-limit window runs from it).
    pub last_request: Option<OffsetDateTime>,
    /// When the key stops working.
    pub expires_at: Option<OffsetDateTime>,
    /// When the key was made.
    pub created_at: OffsetDateTime,
    /// When the row last changed.
    pub updated_at: OffsetDateTime,
    /// The key's own permissions, JSON (`{"files": ["read"]}`).
    pub permissions: Option<String>,
    /// Whatever the app stored with the key, JSON.
    pub metadata: Option<String>,
}

/// The key whose stored form is `stored` (its hash, or the key itself without hashing); the
/// plugin's `findOne({key})`.
pub async fn find_by_key(pool: &PgPool, stored: &str) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as!(
        ApiKeyRow,
        r#"SELECT id, config_id, name, start, reference_id, prefix, refill_interval, refill_amount,
                  last_refill_at, enabled, rate_limit_enabled, rate_limit_time_window, rate_limit_max,
                  request_count, remaining, last_request, expires_at, created_at, updated_at,
                  permissions, metadata
           FROM apikey WHERE key = $1 LIMIT 1"#,
        stored
    )
    .fetch_optional(pool)
    .await
}

/// Deletes an expired key, as the plugin does, unless it no longer is (its expiry moved since
/// it was read).
pub async fn delete_expired(pool: &PgPool, id: &str, now: OffsetDateTime) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM apikey WHERE id = $1 AND expires_at < $2", id, now)
        .execute(pool)
        .await
        .map(drop)
}

/// Deletes a used-up key without refill, as the plugin does, unless it no longer is (given
/// uses or a refill since the claim found it so).
pub async fn delete_used_up(pool: &PgPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM apikey WHERE id = $1 AND remaining = 0 AND refill_amount IS NULL",
        id
    )
    .execute(pool)
    .await
    .map(drop)
}

/// How a claim went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// Counted; `remaining` is what is left after this use (`None`: unlimited).
    Granted {
        /// Uses left after this one.
        remaining: Option<i32>,
    },
    /// No use left and no refill due (the plugin's `USAGE_EXCEEDED`); nothing was written.
    /// With the fresh `remaining` and `refill_amount`, which decide whether the plugin would
    /// delete the key.
    UsageExceeded {
        /// `remaining` as the locked row has it.
        remaining: Option<i32>,
        /// `refill_amount` as the locked row has it.
        refill_amount: Option<i32>,
    },
    /// The rate-limit window is full (`RATE_LIMITED`); retry in this many milliseconds. As in
    /// the plugin, a quota is consumed before the window is asked, so this use still counted
    /// against `remaining`.
    RateLimited {
        /// Milliseconds until the window has passed.
        retry_after_ms: i64,
    },
    /// The row is gone (deleted since it was read).
    Gone,
}

/// Claims one use of key `id` at `now` (milliseconds, as the plugin's clock), with the
/// plugin's per-request rules: `rate_limits` is the configuration's `rateLimit.enabled`.
///
/// Quota: unlimited (`remaining` NULL) takes nothing; a refill that is due (`refill_interval`
/// and `refill_amount` both set and non-zero, more than `refill_interval` ms since
/// `last_refill_at` or else `created_at`) sets `remaining` to `refill_amount - 1`; otherwise a
/// positive `remaining` drops by one, and none left is [`Claimed::UsageExceeded`].
/// Rate limit: off in the configuration or on the key → only `last_request` is stamped; no
/// window or no max → nothing; first request or window passed (more than the window since
/// `last_request`) → count 1; count at the max → [`Claimed::RateLimited`]; else count + 1.
/// Every counted request stamps `last_request`, and a granted one `updated_at`.
pub async fn claim(
    pool: &PgPool,
    id: &str,
    now: OffsetDateTime,
    rate_limits: bool,
) -> Result<Claimed, sqlx::Error> {
    let row = sqlx::query!(
        r#"WITH cur AS (
               SELECT id, remaining, refill_interval, refill_amount, last_refill_at, created_at,
                      rate_limit_enabled, rate_limit_time_window, rate_limit_max, request_count,
                      last_request
               FROM apikey WHERE id = $1 FOR UPDATE
           ), decided AS (
               SELECT cur.*,
                   CASE
                       WHEN remaining IS NULL THEN 'none'
                       WHEN COALESCE(refill_interval, 0) <> 0 AND COALESCE(refill_amount, 0) <> 0
                            AND $2::timestamptz - COALESCE(last_refill_at, created_at)
                                > refill_interval * interval '1 millisecond' THEN 'refill'
                       WHEN remaining > 0 THEN 'take'
                       ELSE 'exhausted'
                   END AS quota,
                   CASE
                       WHEN NOT $3::bool OR rate_limit_enabled = false THEN 'stamp'
                       WHEN rate_limit_time_window IS NULL OR rate_limit_max IS NULL THEN 'skip'
                       WHEN last_request IS NULL THEN 'start'
                       WHEN $2::timestamptz - last_request
                            > rate_limit_time_window * interval '1 millisecond' THEN 'reset'
                       WHEN COALESCE(request_count, 0) >= rate_limit_max THEN 'deny'
                       ELSE 'increment'
                   END AS rate
               FROM cur
           ), written AS (
               UPDATE apikey AS a SET
                   remaining = CASE d.quota
                       WHEN 'refill' THEN d.refill_amount - 1
                       WHEN 'take' THEN d.remaining - 1
                       ELSE a.remaining END,
                   last_refill_at = CASE d.quota WHEN 'refill' THEN $2 ELSE a.last_refill_at END,
                   request_count = CASE d.rate
                       WHEN 'start' THEN 1
                       WHEN 'reset' THEN 1
                       WHEN 'increment' THEN COALESCE(a.request_count, 0) + 1
                       ELSE a.request_count END,
                   last_request = CASE WHEN d.rate IN ('skip', 'deny') THEN a.last_request ELSE $2 END,
                   updated_at = CASE d.rate WHEN 'deny' THEN a.updated_at ELSE $2 END
               FROM decided AS d
               WHERE a.id = d.id AND d.quota <> 'exhausted' AND NOT (d.quota = 'none' AND d.rate = 'deny')
               RETURNING a.remaining
           )
           SELECT d.quota AS "quota!", d.rate AS "rate!",
                  (SELECT remaining FROM written) AS remaining,
                  d.remaining AS remaining_before, d.refill_amount,
                  CEIL(d.rate_limit_time_window
                       - EXTRACT(EPOCH FROM ($2::timestamptz - d.last_request)) * 1000)::bigint AS retry_after_ms
           FROM decided AS d"#,
        id,
        now,
        rate_limits
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(Claimed::Gone);
    };
    Ok(match (row.quota.as_str(), row.rate.as_str()) {
        ("exhausted", _) => Claimed::UsageExceeded {
            remaining: row.remaining_before,
            refill_amount: row.refill_amount,
        },
        (_, "deny") => Claimed::RateLimited {
            retry_after_ms: row.retry_after_ms.unwrap_or(0).max(0),
        },
        _ => Claimed::Granted {
            remaining: row.remaining,
        },
    })
}

/// Stamps a use of a key that counts nothing, as the plugin's claim would: `updated_at`, and
/// with `last_request` also that (the plugin writes it when rate limiting is off).
pub async fn stamp(
    pool: &PgPool,
    id: &str,
    now: OffsetDateTime,
    last_request: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE apikey SET updated_at = $2, last_request = CASE WHEN $3 THEN $2 ELSE last_request END WHERE id = $1",
        id,
        now,
        last_request
    )
    .execute(pool)
    .await
    .map(drop)
}

/// Stamps many keys' uses in one statement: key id → (the use's moment, whether `last_request`
/// is written too).
pub async fn stamp_many(
    pool: &PgPool,
    stamps: std::collections::HashMap<String, (OffsetDateTime, bool)>,
) -> Result<(), sqlx::Error> {
    let mut ids = Vec::with_capacity(stamps.len());
    let mut ats = Vec::with_capacity(stamps.len());
    let mut last_requests = Vec::with_capacity(stamps.len());
    for (id, (at, last_request)) in stamps {
        ids.push(id);
        ats.push(at);
        last_requests.push(last_request);
    }
    sqlx::query!(
        r#"UPDATE apikey AS a
           SET updated_at = v.at, last_request = CASE WHEN v.last_request THEN v.at ELSE a.last_request END
           FROM unnest($1::text[], $2::timestamptz[], $3::bool[]) AS v(id, at, last_request)
           WHERE a.id = v.id"#,
        &ids,
        &ats,
        &last_requests
    )
    .execute(pool)
    .await
    .map(drop)
}

/// Whether the organization `id` exists (an organization-owned key's owner).
pub async fn organization_exists(pool: &PgPool, id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM organization WHERE id = $1) AS "exists!""#,
        id
    )
    .fetch_one(pool)
    .await
}

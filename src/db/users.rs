//! The shared `"user"` table (Better-Auth's, with the admin plugin's columns).

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

/// One row of `"user"`. Better-Auth writes it; warden reads it fresh on each request.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct User {
    /// The user's id (a JWT's `sub`).
    pub id: String,
    /// The display name.
    pub name: String,
    /// The email address.
    pub email: String,
    /// Whether the email address was verified.
    pub email_verified: bool,
    /// The picture's URL, if any.
    pub image: Option<String>,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// When the row last changed.
    pub updated_at: OffsetDateTime,
    /// Comma-joined roles, as Better-Auth's admin plugin stores them.
    pub role: Option<String>,
    /// Set by a ban; whether it still applies is [`ban_is_active`](Self::ban_is_active).
    pub banned: Option<bool>,
    /// Why the user was banned.
    pub ban_reason: Option<String>,
    /// When the ban lifts; `None` with `banned` set is a ban for ever.
    pub ban_expires: Option<OffsetDateTime>,
}

impl User {
    /// A plain user row for unit tests: not banned, no role, created now.
    #[cfg(test)]
    pub(crate) fn sample(id: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            id: id.into(),
            name: "n".into(),
            email: format!("{id}@x.test"),
            email_verified: false,
            image: None,
            created_at: now,
            updated_at: now,
            role: None,
            banned: None,
            ban_reason: None,
            ban_expires: None,
        }
    }

    /// A ban applies while `banned` is set and it has no expiry or the expiry is ahead
    /// (Better-Auth's admin plugin ignores an expired ban the same way).
    pub fn ban_is_active(&self, now: OffsetDateTime) -> bool {
        self.banned == Some(true) && self.ban_expires.is_none_or(|until| until > now)
    }

    /// The roles the `role` column names, by Better-Auth's rule (`role_names`).
    pub fn roles(&self) -> Vec<String> {
        self.role_names().map(str::to_owned).collect()
    }

    /// The same, without copying them.
    pub fn role_names(&self) -> std::str::Split<'_, char> {
        role_names(self.role.as_deref())
    }

    /// Whether the `role` column names `role`, by the same rule.
    pub fn holds_role(&self, role: &str) -> bool {
        self.role_names().any(|name| name == role)
    }
}

/// Better-Auth's admin plugin's `defaultRole`: the role of a user whose `role` is empty.
pub const DEFAULT_ROLE: &str = "user";

/// The roles a `role` column names, by Better-Auth's admin plugin's one rule:
/// `(user.role || defaultRole || "user").split(",")`. Split on commas and nothing else: no
/// trimming, no case folding, so `"user, admin"` holds `user` and `" admin"`, and `" admin"`
/// is not `admin`; an empty or missing role is the default role, `user`.
///
/// Every check that asks whether a user holds a role goes through this: the admin rule
/// (`ADMIN_ROLES`), `RequireRole`, permissions, `/auth/verify?role=`, the `X-Auth-User-Role`
/// header, the JSON `roles`. SQL asks through `warden_role_names(role)` (migration
/// `..._role_names_function`), the same rule, for the last-admin count and the admin listing's
/// `?role=` filter, so a role string written by hand (`"ad min"`, `" admin"`) cannot count as
/// an admin in one place and not in another. (The organization plugin splits member roles its
/// own way, trimmed: `auth::access::parse_role_list`.)
pub fn role_names(role: Option<&str>) -> std::str::Split<'_, char> {
    role.filter(|r| !r.is_empty()).unwrap_or(DEFAULT_ROLE).split(',')
}

/// The user with this id, through the pool or inside a transaction.
pub async fn find_by_id<'e>(db: impl PgExecutor<'e>, id: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"SELECT id, name, email, email_verified, image, created_at, updated_at,
                  role, banned, ban_reason, ban_expires
           FROM "user" WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// The users with these ids (unknown ones left out): several requests' reads at once (see
/// `auth::batch`).
pub async fn find_many_by_id(pool: &PgPool, ids: &[String]) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"SELECT id, name, email, email_verified, image, created_at, updated_at,
                  role, banned, ban_reason, ban_expires
           FROM "user" WHERE id = ANY($1::text[])"#,
        ids
    )
    .fetch_all(pool)
    .await
}

// What `GET /admin/users` can search and sort by. Column names come only from these enums,
// never from the request, so the dynamic query stays injection-free.

/// The field a search looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum SearchField {
    /// The email address.
    Email,
    /// The display name.
    Name,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
/// How the search text must match (case-insensitive; `%` and `_` match themselves).
pub enum SearchOperator {
    /// Anywhere in the field.
    Contains,
    /// At the start of the field.
    StartsWith,
    /// At the end of the field.
    EndsWith,
}

/// What a user listing is ordered by (ties are broken by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum SortBy {
    /// When the account was created.
    CreatedAt,
    /// When the row last changed.
    UpdatedAt,
    /// The email address.
    Email,
    /// The display name.
    Name,
}

/// Which way a user listing is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SortDirection {
    /// Ascending: oldest or A first.
    Asc,
    /// Descending: newest or Z first.
    Desc,
}

/// A validated user listing request.
#[derive(Debug, Clone)]
pub struct UserQuery {
    /// Text to look for, where, and how it must match; `None` matches every user.
    pub search: Option<(SearchField, SearchOperator, String)>,
    /// Only users holding this role.
    pub role: Option<String>,
    /// Only banned (`true`) or not banned (`false`) users, by the `banned` column alone (a ban
    /// past its expiry still counts).
    pub banned: Option<bool>,
    /// The sort key.
    pub sort_by: SortBy,
    /// The sort direction (for the tie-breaking id too).
    pub direction: SortDirection,
    /// The page size.
    pub limit: i64,
    /// Users skipped before the page.
    pub offset: i64,
    /// Keyset paging: the page starts after this user, in the listing's order (then `offset`
    /// is 0). A page costs the same however deep it is, where an offset walks every row it skips.
    pub after: Option<After>,
    /// Count a text search's matches only up to this many (then `total` is this number and
    /// not exact): an exact count of a broad search reads every matching row. Listings
    /// without a text search are always exact (their total is summed, not counted).
    pub count_limit: Option<i64>,
}

/// A position in a listing: the sort key and id of the last user of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    /// The user's sort key.
    pub key: SortKey,
    /// The user's id (ties in the key are ordered by id).
    pub id: String,
}

/// A sort key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    /// `createdAt` or `updatedAt`.
    Time(OffsetDateTime),
    /// `email` or `name`.
    Text(String),
}

impl After {
    /// Where the page after `user` starts, in a listing sorted by `sort_by`.
    pub fn user(user: &User, sort_by: SortBy) -> Self {
        let key = match sort_by {
            SortBy::CreatedAt => SortKey::Time(user.created_at),
            SortBy::UpdatedAt => SortKey::Time(user.updated_at),
            SortBy::Email => SortKey::Text(user.email.clone()),
            SortBy::Name => SortKey::Text(user.name.clone()),
        };
        Self {
            key,
            id: user.id.clone(),
        }
    }
}

/// `%`, `_` and `\` in user input match themselves, not anything.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The least string above every string that starts with `prefix`, in the byte order of
/// `text_pattern_ops` (UTF-8 bytes, which is code point order): `prefix` with its last code
/// point replaced by the next one. `None` when there is none (an empty prefix, or one of only
/// U+10FFFF): every string at or above `prefix` then starts with it.
///
/// A string `s` with `prefix <= s < successor` starts with `prefix`: it must share all but
/// the last code point `c`, and its next code point lies in `[c, c + 1)`.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value: the surrogates U+D800..U+DFFF are not characters.
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            _ => char::from_u32(u32::from(last) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// How a `starts_with`/`ends_with` condition is written.
#[derive(Clone, Copy)]
enum Prefix {
    /// `expression ^@ text`: PostgreSQL estimates how many rows start with the text from the
    /// index's statistics (the page's plan depends on it: sort the matches, or walk the sort
    /// index until the page is full), scans the same range, and rechecks `^@` on each entry.
    Operator,
    /// `expression ~>=~ text AND expression ~<~ successor(text)`: the same rows and the same
    /// range with no recheck, which halves the cost of counting a broad prefix; but the
    /// planner estimates such a range poorly, so only the count (whose one plan is that index
    /// range) is written this way.
    Range,
}

/// `expression` starts with `prefix`, as `form` writes it.
fn push_prefix(
    builder: &mut sqlx::QueryBuilder<sqlx::Postgres>,
    form: Prefix,
    expression: &str,
    prefix: String,
) {
    match form {
        Prefix::Operator => {
            builder
                .push(format_args!(" AND {expression} ^@ "))
                .push_bind(prefix);
        }
        Prefix::Range => {
            let upper = prefix_successor(&prefix);
            builder
                .push(format_args!(" AND {expression} ~>=~ "))
                .push_bind(prefix);
            if let Some(upper) = upper {
                builder
                    .push(format_args!(" AND {expression} ~<~ "))
                    .push_bind(upper);
            }
        }
    }
}

fn push_filters(builder: &mut sqlx::QueryBuilder<sqlx::Postgres>, query: &UserQuery, form: Prefix) {
    builder.push(" WHERE true");
    if let Some((field, operator, text)) = &query.search {
        let column = match field {
            SearchField::Email => "email",
            SearchField::Name => "name",
        };
        let lowered = text.to_lowercase();
        match operator {
            SearchOperator::Contains => {
                builder
                    .push(format_args!(" AND lower({column}) LIKE "))
                    .push_bind(format!("%{}%", escape_like(&lowered)));
            }
            // `^@` is `LIKE 'text%'` with the text taken literally, served by the
            // warden_user_*_prefix_idx btree range (a trigram index cannot take it, and is slow
            // for a short or common prefix).
            SearchOperator::StartsWith => {
                push_prefix(builder, form, &format!("lower({column})"), lowered);
            }
            // `lower(x)` ends with `t` exactly when `reverse(lower(x))` starts with
            // `reverse(t)` (both reverse code points): a range on warden_user_*_suffix_idx.
            SearchOperator::EndsWith => {
                let reversed: String = lowered.chars().rev().collect();
                push_prefix(builder, form, &format!("reverse(lower({column}))"), reversed);
            }
        }
    }
    if let Some(role) = &query.role {
        // Better-Auth's rule (role_names), the expression of the warden_user_role_names_idx
        // GIN index.
        builder
            .push(" AND warden_role_names(role) @> ARRAY[")
            .push_bind(role.clone())
            .push("]::text[]");
    }
    match query.banned {
        Some(true) => {
            builder.push(" AND banned IS TRUE");
        }
        Some(false) => {
            builder.push(" AND banned IS NOT TRUE");
        }
        None => {}
    }
}

/// Whether the total comes from the `warden_user_count` deltas (migration `..._user_count`)
/// rather than from counting users: they are kept per (role, banned), so every listing without
/// a text search is summed, not counted.
fn counted_by_deltas(query: &UserQuery) -> bool {
    query.search.is_none()
}

/// `prefix` is empty, or `EXPLAIN ...` for [`list_plans`]. Two columns: the total, and how
/// many delta rows were summed for it (0 when users were counted).
fn count_query(prefix: &str, query: &UserQuery) -> sqlx::QueryBuilder<sqlx::Postgres> {
    if let Some(limit) = capped_count(query) {
        // Stops at the first `limit + 1` matches: one more than the cap tells "more than".
        let mut count = sqlx::QueryBuilder::new(format!(
            r#"{prefix}SELECT count(*), 0::bigint FROM (SELECT 1 FROM "user""#
        ));
        push_filters(&mut count, query, Prefix::Range);
        count
            .push(" LIMIT ")
            .push_bind(limit.saturating_add(1))
            .push(") AS matches");
        return count;
    }
    let mut count = if counted_by_deltas(query) {
        // The role and banned filters are the same expressions on the same two columns.
        sqlx::QueryBuilder::new(format!(
            "{prefix}SELECT coalesce(sum(delta), 0)::bigint, count(*) FROM warden_user_count"
        ))
    } else {
        sqlx::QueryBuilder::new(format!(r#"{prefix}SELECT count(*), 0::bigint FROM "user""#))
    };
    push_filters(&mut count, query, Prefix::Range);
    count
}

/// The cap on counting, when the listing's total is counted (a text search) and capped.
fn capped_count(query: &UserQuery) -> Option<i64> {
    query.count_limit.filter(|_| !counted_by_deltas(query))
}

/// From this offset on, a page first finds its ids (an index-only scan over the sort index
/// when nothing filters) and then reads just those rows, instead of reading and dropping every
/// skipped row.
const DEEP_OFFSET: i64 = 1000;

const COLUMNS: &str = "id, name, email, email_verified, image, created_at, updated_at, \
                       role, banned, ban_reason, ban_expires";

/// The page's SQL. With `lookahead`, a forward page reads one row more than `limit`, which
/// tells whether more follow; returns whether it did (a page walked backwards from the far end
/// of an exact total does not: that total tells).
fn page_query(
    prefix: &str,
    query: &UserQuery,
    total: i64,
    lookahead: bool,
) -> (sqlx::QueryBuilder<sqlx::Postgres>, bool) {
    let ahead = i64::from(lookahead);
    let column = match query.sort_by {
        SortBy::CreatedAt => "created_at",
        SortBy::UpdatedAt => "updated_at",
        SortBy::Email => "email",
        SortBy::Name => "name",
    };
    let (forward, backward) = match query.direction {
        SortDirection::Asc => ("ASC", "DESC"),
        SortDirection::Desc => ("DESC", "ASC"),
    };
    if let Some(after) = &query.after {
        // The (column, id) sort index walked from the position on: the same rows as an offset
        // to there would give, without passing the rows before.
        let mut page = sqlx::QueryBuilder::new(format!(r#"{prefix}SELECT {COLUMNS} FROM "user""#));
        push_filters(&mut page, query, Prefix::Operator);
        let beyond = if forward == "ASC" { ">" } else { "<" };
        page.push(format_args!(" AND ({column}, id) {beyond} ("));
        match &after.key {
            SortKey::Time(at) => page.push_bind(*at),
            SortKey::Text(text) => page.push_bind(text.clone()),
        };
        page.push(", ")
            .push_bind(after.id.clone())
            .push(format_args!(") ORDER BY {column} {forward}, id {forward} LIMIT "))
            .push_bind(query.limit + ahead);
        return (page, lookahead);
    }
    if query.offset < DEEP_OFFSET {
        let mut page = sqlx::QueryBuilder::new(format!(r#"{prefix}SELECT {COLUMNS} FROM "user""#));
        push_filters(&mut page, query, Prefix::Operator);
        // `id` breaks ties so pages never overlap or skip.
        page.push(format_args!(" ORDER BY {column} {forward}, id {forward} LIMIT "))
            .push_bind(query.limit + ahead)
            .push(" OFFSET ")
            .push_bind(query.offset);
        return (page, lookahead);
    }
    // Past the middle, the same rows are nearer the other end: walk the order backwards
    // (`(column, id)` is a total order, so backwards is exactly the reverse).
    let (direction, limit, offset, looked) = if query.offset > total / 2 && query.offset < total {
        let end = total - query.offset;
        let start = (end - query.limit).max(0);
        (backward, end - start, start, false)
    } else {
        (forward, query.limit + ahead, query.offset, lookahead)
    };
    let mut page = sqlx::QueryBuilder::new(format!(
        r#"{prefix}SELECT {COLUMNS} FROM "user" WHERE id IN (SELECT id FROM "user""#
    ));
    push_filters(&mut page, query, Prefix::Operator);
    page.push(format_args!(
        " ORDER BY {column} {direction}, id {direction} LIMIT "
    ))
    .push_bind(limit)
    .push(" OFFSET ")
    .push_bind(offset)
    .push(format_args!(") ORDER BY {column} {forward}, id {forward}"));
    (page, looked)
}

/// One page of users, the total matching, and the bookkeeping behind the total.
#[derive(Debug, Clone)]
pub struct UserPage {
    /// The page.
    pub users: Vec<User>,
    /// How many users match: exactly, or with a capped count (`total_exact` false) at least
    /// this many.
    pub total: i64,
    /// How many `warden_user_count` rows were summed for `total` (0 when users were counted):
    /// past a few hundred, [`compact_user_count`] is due.
    pub count_rows: i64,
    /// Where the next page starts (keyset paging), when this one is full and more follow.
    pub next: Option<After>,
    /// Whether `total` is exact: `false` when the count stopped at `count_limit` (more match).
    pub total_exact: bool,
}

/// Whether a listing's statements may keep a prepared plan. A text search may not: its
/// range's selectivity depends on the text (11 users or a quarter of them), and a generic plan
/// would estimate it blind and could walk a sort index for a rare prefix. Unprepared, it is
/// planned with its values every time (a fraction of a millisecond).
fn cached_plan(query: &UserQuery) -> bool {
    query.search.is_none()
}

/// Whether the listing's total counts one btree range (a `starts_with` or `ends_with` search),
/// which PostgreSQL is then told to walk alone, without parallel workers. Its planner prices a
/// worker's start and each tuple it passes, but not that a parallel btree scan hands the
/// range's leaf pages out one at a time, so the workers mostly wait for each other: counting a
/// 250,000-entry suffix range took 20–21 ms alone and 22–26 ms with one worker, 24–28 ms with
/// two, on 2 cores (and a worker is a process started for this one query). Substring matches
/// (`contains`) read the heap, where workers do help (97 ms with two, 137 ms alone), and keep
/// the planner's choice.
fn serial_scan(query: &UserQuery) -> bool {
    matches!(
        &query.search,
        Some((_, SearchOperator::StartsWith | SearchOperator::EndsWith, _))
    )
}

/// A read-only transaction for one listing (its total and its page in one snapshot), set up as
/// [`serial_scan`] says.
async fn listing_transaction(
    pool: &PgPool,
    query: &UserQuery,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    if serial_scan(query) {
        sqlx::query("SET LOCAL max_parallel_workers_per_gather = 0")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// The listing's total, how many `warden_user_count` rows were summed for it, and whether it
/// is exact (not capped by `count_limit`), read in `tx`.
async fn fetch_total(
    tx: &mut sqlx::PgConnection,
    query: &UserQuery,
) -> Result<(i64, i64, bool), sqlx::Error> {
    let (counted, rows): (i64, i64) = count_query("", query)
        .build_query_as()
        .persistent(cached_plan(query))
        .fetch_one(tx)
        .await?;
    Ok(match capped_count(query) {
        Some(limit) if counted > limit => (limit, rows, false),
        _ => (counted, rows, true),
    })
}

/// The listing's page (`total` places a deep page; 0 for a shallow one), read in `tx`, and
/// whether more rows follow it: `Some` when the page looked one row ahead (`lookahead`), `None`
/// when the exact total has to tell.
async fn fetch_page(
    tx: &mut sqlx::PgConnection,
    query: &UserQuery,
    total: i64,
    lookahead: bool,
) -> Result<(Vec<User>, Option<bool>), sqlx::Error> {
    let (mut page, looked) = page_query("", query, total, lookahead);
    let mut users = page
        .build_query_as::<User>()
        .persistent(cached_plan(query))
        .fetch_all(tx)
        .await?;
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let more = looked.then_some(users.len() > limit);
    users.truncate(limit);
    Ok((users, more))
}

/// One page of users and the total matching, read in one snapshot.
pub async fn list_page(pool: &PgPool, query: &UserQuery) -> Result<UserPage, sqlx::Error> {
    // One snapshot for the total and the page: the page's position may be found from the
    // total's far end.
    let mut tx = listing_transaction(pool, query).await?;
    // Where no exact total tells whether more follow (a keyset page, a capped count), the page
    // reads one row ahead.
    let lookahead = query.after.is_some() || capped_count(query).is_some();
    let (users, more, total, count_rows, exact) = if query.after.is_some() {
        // A keyset page cannot tell its own position: the total is always counted.
        let (users, more) = fetch_page(&mut tx, query, 0, lookahead).await?;
        let (total, count_rows, exact) = fetch_total(&mut tx, query).await?;
        (users, more, total, count_rows, exact)
    } else if query.offset < DEEP_OFFSET {
        // The page first: when it is the last one (short, and not past the end) the total is
        // known without counting, and a search with few matches is looked up once.
        let (users, more) = fetch_page(&mut tx, query, 0, lookahead).await?;
        let len = i64::try_from(users.len()).unwrap_or(i64::MAX);
        if len < query.limit && (len > 0 || query.offset == 0) {
            (users, Some(false), query.offset + len, 0, true)
        } else {
            let (total, count_rows, exact) = fetch_total(&mut tx, query).await?;
            (users, more, total, count_rows, exact)
        }
    } else {
        let (total, count_rows, exact) = fetch_total(&mut tx, query).await?;
        let (users, more) = if exact && query.offset >= total {
            (Vec::new(), Some(false))
        } else {
            // A capped total cannot place the page from the far end: walk from the front.
            fetch_page(&mut tx, query, if exact { total } else { i64::MAX }, lookahead).await?
        };
        (users, more, total, count_rows, exact)
    };
    tx.commit().await?;
    let len = i64::try_from(users.len()).unwrap_or(i64::MAX);
    let more = more.unwrap_or_else(|| query.offset.saturating_add(len) < total);
    // A capped total is a lower bound: never fewer than the users up to this page's last.
    let total = if exact || len == 0 {
        total
    } else {
        total.max(query.offset.saturating_add(len))
    };
    let next = users
        .last()
        .filter(|_| more && len == query.limit)
        .map(|last| After::user(last, query.sort_by));
    Ok(UserPage {
        users,
        total,
        count_rows,
        next,
        total_exact: exact,
    })
}

/// One page of users and the total matching (the crate's tests ask it directly).
#[cfg(any(test, feature = "testing"))]
pub async fn list(pool: &PgPool, query: &UserQuery) -> Result<(Vec<User>, i64), sqlx::Error> {
    let page = list_page(pool, query).await?;
    Ok((page.users, page.total))
}

/// Folds the `warden_user_count` delta rows into one, in one statement (concurrent writers'
/// rows that it does not see stay as they are), so the total stays exact and cheap to sum.
/// Needs the primary. Returns how many rows were folded.
pub async fn compact_user_count(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "WITH gone AS (DELETE FROM warden_user_count RETURNING role, banned, delta)
         INSERT INTO warden_user_count (role, banned, delta)
         SELECT role, banned, sum(delta) FROM gone GROUP BY role, banned HAVING sum(delta) <> 0",
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The plans PostgreSQL picks for [`list`]'s two queries (count, page) as EXPLAIN JSON, so
/// tests and benchmarks look at the very SQL warden runs, in the same kind of transaction.
#[cfg(any(test, feature = "testing"))]
pub async fn list_plans(
    pool: &PgPool,
    query: &UserQuery,
) -> Result<(serde_json::Value, serde_json::Value), sqlx::Error> {
    const EXPLAIN: &str = "EXPLAIN (FORMAT JSON) ";
    let mut tx = listing_transaction(pool, query).await?;
    let (total, _, exact) = fetch_total(&mut tx, query).await?;
    let total = if exact { total } else { i64::MAX };
    let count = count_query(EXPLAIN, query)
        .build_query_scalar()
        .fetch_one(&mut *tx)
        .await?;
    let page = page_query(EXPLAIN, query, total, false)
        .0
        .build_query_scalar()
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((count, page))
}

/// Profile fields a user may change about themselves. `image: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    /// A new display name; `None` keeps the current one.
    pub name: Option<String>,
    /// `Some(Some(url))` sets the picture, `Some(None)` removes it, `None` keeps it.
    pub image: Option<Option<String>>,
}

/// Applies `change` and returns the updated row; `None` when there is no such user.
pub async fn update_profile(
    conn: &mut sqlx::PgConnection,
    id: &str,
    change: &ProfileChange,
) -> Result<Option<User>, sqlx::Error> {
    let image = change.image.clone().flatten();
    sqlx::query_as!(
        User,
        r#"UPDATE "user" SET
               name = COALESCE($2, name),
               image = CASE WHEN $3 THEN $4 ELSE image END,
               updated_at = now()
           WHERE id = $1
           RETURNING id, name, email, email_verified, image, created_at, updated_at,
                     role, banned, ban_reason, ban_expires"#,
        id,
        change.name.as_deref(),
        change.image.is_some(),
        image.as_deref(),
    )
    .fetch_optional(conn)
    .await
}

/// Reads a user inside a transaction, locking the row against concurrent admin writes.
pub async fn find_for_update(conn: &mut sqlx::PgConnection, id: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"SELECT id, name, email, email_verified, image, created_at, updated_at,
                  role, banned, ban_reason, ban_expires
           FROM "user" WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// Sets the user's comma-joined roles and returns the updated row. The user must exist (the
/// caller holds its row lock, from [`find_for_update`]).
pub async fn set_role(conn: &mut sqlx::PgConnection, id: &str, role: &str) -> Result<User, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"UPDATE "user" SET role = $2, updated_at = now() WHERE id = $1
           RETURNING id, name, email, email_verified, image, created_at, updated_at,
                     role, banned, ban_reason, ban_expires"#,
        id,
        role
    )
    .fetch_one(conn)
    .await
}

/// Bans like Better-Auth's admin plugin: sets the three ban columns (the caller deletes the
/// sessions in the same transaction).
pub async fn ban(
    conn: &mut sqlx::PgConnection,
    id: &str,
    reason: &str,
    expires_in_secs: Option<i64>,
) -> Result<User, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"UPDATE "user" SET banned = true, ban_reason = $2,
               ban_expires = CASE WHEN $3::bigint IS NULL THEN NULL
                                  ELSE now() + make_interval(secs => $3::bigint::double precision) END,
               updated_at = now()
           WHERE id = $1
           RETURNING id, name, email, email_verified, image, created_at, updated_at,
                     role, banned, ban_reason, ban_expires"#,
        id,
        reason,
        expires_in_secs
    )
    .fetch_one(conn)
    .await
}

/// Lifts a ban (clears the three ban columns) and returns the updated row. The user must
/// exist (the caller holds its row lock, from [`find_for_update`]).
pub async fn unban(conn: &mut sqlx::PgConnection, id: &str) -> Result<User, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"UPDATE "user" SET banned = false, ban_reason = NULL, ban_expires = NULL, updated_at = now()
           WHERE id = $1
           RETURNING id, name, email, email_verified, image, created_at, updated_at,
                     role, banned, ban_reason, ban_expires"#,
        id
    )
    .fetch_one(conn)
    .await
}

/// Deletes the user; sessions and accounts go with it by cascade.
pub async fn delete(conn: &mut sqlx::PgConnection, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(r#"DELETE FROM "user" WHERE id = $1"#, id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// How many users other than `except` are usable admins: an admin role (by Better-Auth's rule,
/// `warden_role_names`, the one `AuthPolicy::is_admin` follows) or id, and no active ban (a
/// banned admin cannot sign in, so cannot administer). Only called under the admin-write lock,
/// so two admins cannot demote or ban each other into an admin-less system.
pub async fn count_other_admins(
    conn: &mut sqlx::PgConnection,
    except: &str,
    admin_roles: &[String],
    admin_ids: &[String],
) -> Result<i64, sqlx::Error> {
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM "user"
           WHERE id <> $1
             AND (id = ANY($3) OR warden_role_names(role) && $2)
             AND NOT (banned IS TRUE AND (ban_expires IS NULL OR ban_expires > now()))"#,
        except,
        admin_roles,
        admin_ids
    )
    .fetch_one(conn)
    .await?;
    Ok(count)
}

/// Serialises admin writes (role changes, bans, deletes, ...) for the rest of the transaction,
/// so rules that read other rows (the last usable admin, the actor's own standing) cannot be
/// raced by a concurrent write.
pub async fn lock_admin_changes(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    // An arbitrary constant naming "admin membership changes" in pg_advisory locks.
    sqlx::query!("SELECT pg_advisory_xact_lock(7261127001)")
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{User, prefix_successor, role_names};

    #[test]
    fn roles_split_on_commas_only_and_empty_is_the_default_role() {
        let names = |role: Option<&'static str>| role_names(role).collect::<Vec<_>>();
        assert_eq!(names(Some("admin")), ["admin"]);
        assert_eq!(names(Some("user,admin")), ["user", "admin"]);
        assert_eq!(names(Some("user, admin")), ["user", " admin"]);
        assert_eq!(names(Some("ad min")), ["ad min"]);
        assert_eq!(names(Some("admin,")), ["admin", ""]);
        assert_eq!(names(Some("")), ["user"]);
        assert_eq!(names(None), ["user"]);
        let with = |role: Option<&str>| User {
            role: role.map(str::to_owned),
            ..User::sample("u")
        };
        assert!(with(Some("user,admin")).holds_role("admin"));
        assert!(!with(Some("user, admin")).holds_role("admin"));
        assert!(!with(Some(" admin")).holds_role("admin"));
        assert!(!with(Some("Admin")).holds_role("admin"));
        assert!(with(None).holds_role("user"));
    }

    #[test]
    fn the_successor_bounds_exactly_the_strings_with_the_prefix() {
        assert_eq!(prefix_successor("tset.proc@").as_deref(), Some("tset.procA"));
        assert_eq!(prefix_successor("zoë").as_deref(), Some("zoì"));
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_successor(""), None);
        // In byte order (what text_pattern_ops compares), everything with the prefix is
        // below the successor, and the successor itself does not start with the prefix.
        for prefix in ["ab", "zoë", "a\u{D7FF}", "é\u{10FFFF}"] {
            let upper = prefix_successor(prefix).unwrap_or_default();
            for tail in ["", "\u{0}", "z", "\u{10FFFF}\u{10FFFF}", "\u{FFFF}"] {
                let s = format!("{prefix}{tail}");
                assert!(
                    s.as_bytes() >= prefix.as_bytes() && s.as_bytes() < upper.as_bytes(),
                    "{s:?}"
                );
            }
            assert!(!upper.starts_with(prefix));
        }
    }
}

//! Cold reads, coalesced: the rows behind credentials seen for the first time, read for
//! several requests in one query.
//!
//! A JWT seen for the first time usually names rows that are not cached either: its session
//! and user when it carries `sid` (warden's own auth server adds it), its user alone when it
//! does not (Better-Auth's jwt plugin adds no `sid` unless the app asks). Under load many such
//! requests are in flight at once (each user's new token every 15 minutes), and a round trip
//! per request costs PostgreSQL and warden more than the rows themselves. So requests hand
//! their id to one task per kind of read ([`Read`]: [`SessionsWithUsers`], [`Users`]), which
//! reads every id waiting at that moment with one `WHERE id = ANY(...)` query and answers each
//! request. Nothing waits for a batch to fill: a lone request is read at once, alone; requests
//! that arrive while queries are running make the next batch larger. At most
//! [`MAX_IN_FLIGHT`] batch queries of a kind run at a time, so the pool keeps connections for
//! everything else.
//!
//! A failed read is not an answer: the request then reads what it needs itself, through the
//! usual path, which reports the database's state (503) as every other query does.

use std::future::Future;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::db::sessions::{self, SessionRef};
use crate::db::users::{self, User};

/// Ids read by one query at most.
const MAX_BATCH: usize = 64;
/// Batch queries of one kind running at once at most. Fewer in flight make each batch larger:
/// with 2 instead of 4, 200,000 cold EdDSA tokens at 64 connections cost PostgreSQL 15–19 µs a
/// request instead of 34–49 and warden 76–95 µs instead of 82–104, at a median of 15.4k
/// requests/s instead of 12.5k (BENCHMARKS.md). A batch holds up to [`MAX_BATCH`] ids, so with
/// a remote database two in flight still read up to 128 rows per round-trip time.
const MAX_IN_FLIGHT: usize = 2;
/// Requests that may wait for a batch; beyond this they read alone (their caller does).
const QUEUE: usize = 1024;

/// One kind of coalesced read: rows by id, several ids a query.
pub(crate) trait Read: Send + Sync + 'static {
    /// What a request gets back: shared, not copied (requests naming the same id in one batch
    /// get the same allocation, and the cache keeps it as it is).
    type Row: Clone + Send + Sync + 'static;
    /// The counters of queries run and ids read (`/metrics`): their ratio is how many
    /// requests share a query.
    const BATCHES: &'static str;
    const READS: &'static str;
    /// The id a row answers.
    fn key(row: &Self::Row) -> &str;
    /// The rows of `ids` that exist (unknown ids are left out; a repeated one is harmless).
    fn read(db: &PgPool, ids: &[String]) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;
}

/// A JWT's session and its user, by session id (tokens with `sid`).
#[derive(Debug)]
pub(crate) struct SessionsWithUsers;

impl Read for SessionsWithUsers {
    type Row = (Arc<SessionRef>, Arc<User>);
    const BATCHES: &'static str = "warden_session_batches_total";
    const READS: &'static str = "warden_session_batch_reads_total";

    fn key(row: &Self::Row) -> &str {
        &row.0.id
    }

    async fn read(db: &PgPool, ids: &[String]) -> Result<Vec<Self::Row>, sqlx::Error> {
        let rows = sessions::find_refs_with_users(db, ids).await?;
        Ok(rows
            .into_iter()
            .map(|(session, user)| (Arc::new(session), Arc::new(user)))
            .collect())
    }
}

/// A user by id (tokens without `sid`, and every credential whose user is not cached).
#[derive(Debug)]
pub(crate) struct Users;

impl Read for Users {
    type Row = Arc<User>;
    const BATCHES: &'static str = "warden_user_batches_total";
    const READS: &'static str = "warden_user_batch_reads_total";

    fn key(row: &Self::Row) -> &str {
        &row.id
    }

    async fn read(db: &PgPool, ids: &[String]) -> Result<Vec<Self::Row>, sqlx::Error> {
        Ok(users::find_many_by_id(db, ids)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect())
    }
}

/// What one request gets back: its row, `None` when there is none, `Err(())` when it was not
/// read (see [`Batcher::load`]).
pub(crate) type Answer<R> = Result<Option<<R as Read>::Row>, ()>;

type Waiting<R> = (String, oneshot::Sender<Answer<R>>);

/// A batch's rows, sorted by id (looked up by binary search, so no id is copied into a map
/// key).
type Found<R> = Result<Vec<<R as Read>::Row>, ()>;

/// The handle requests use; the task behind it lives as long as the [`crate::auth::Auth`].
pub(crate) struct Batcher<R: Read> {
    queue: mpsc::Sender<Waiting<R>>,
}

impl<R: Read> std::fmt::Debug for Batcher<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("reads", &R::BATCHES)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Batcher<R> {
    /// Starts the task reading batches from `db`.
    pub(crate) fn spawn(db: PgPool) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, waiting) = mpsc::channel(QUEUE);
        (Self { queue }, tokio::spawn(run::<R>(db, waiting)))
    }

    /// The row of `id`, read with whatever other requests are waiting; `Err(())` when it was
    /// not read: the batch's query failed, or the queue is full (or its task gone). The caller
    /// then reads alone, once, through its usual path, which reports the database's state.
    pub(crate) async fn load(&self, id: &str) -> Answer<R> {
        let (reply, answer) = oneshot::channel();
        if self.queue.try_send((id.to_owned(), reply)).is_err() {
            return Err(());
        }
        answer.await.unwrap_or(Err(()))
    }
}

async fn run<R: Read>(db: PgPool, mut waiting: mpsc::Receiver<Waiting<R>>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut batch: Vec<Waiting<R>> = Vec::with_capacity(MAX_BATCH);
    loop {
        // A slot first: while every slot is busy, requests queue up and make the next batch.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        if waiting.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return; // every handle is gone
        }
        let requests = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let db = db.clone();
        tokio::spawn(async move {
            // The ids move into the query (a repeated one is harmless to `= ANY`).
            let (ids, replies): (Vec<String>, Vec<_>) = requests.into_iter().unzip();
            metrics::counter!(R::BATCHES).increment(1);
            metrics::counter!(R::READS).increment(u64::try_from(ids.len()).unwrap_or(u64::MAX));
            let found = read::<R>(&db, &ids).await;
            drop(slot);
            for (id, reply) in ids.iter().zip(replies) {
                let _ = reply.send(answer_for::<R>(&found, id));
            }
        });
    }
}

/// The answer for `id` among a batch's rows.
fn answer_for<R: Read>(found: &Found<R>, id: &str) -> Answer<R> {
    let rows = found.as_ref().map_err(|&()| ())?;
    Ok(rows
        .binary_search_by(|row| R::key(row).cmp(id))
        .ok()
        .and_then(|at| rows.get(at))
        .cloned())
}

async fn read<R: Read>(db: &PgPool, ids: &[String]) -> Found<R> {
    match R::read(db, ids).await {
        Ok(mut rows) => {
            rows.sort_unstable_by(|a, b| R::key(a).cmp(R::key(b)));
            Ok(rows)
        }
        Err(err) => {
            tracing::debug!(error = %err, reads = R::BATCHES, "batched read failed; the requests read alone");
            Err(())
        }
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn row(session: &str, user: &str) -> (Arc<SessionRef>, Arc<User>) {
        let now = OffsetDateTime::now_utc();
        let session = SessionRef {
            id: session.into(),
            user_id: user.into(),
            expires_at: now,
            active_organization_id: None,
            impersonated_by: None,
        };
        let user = User::sample(user);
        (Arc::new(session), Arc::new(user))
    }

    #[test]
    fn each_request_gets_its_own_sessions_rows_shared_not_copied() {
        let found: Found<SessionsWithUsers> = Ok(vec![row("s1", "u1"), row("s2", "u2"), row("s3", "u3")]);
        let Ok(Some((session, user))) = answer_for::<SessionsWithUsers>(&found, "s2") else {
            panic!("s2 is among the rows");
        };
        assert_eq!((session.id.as_str(), user.id.as_str()), ("s2", "u2"));
        // A second request for the same session gets the same allocation.
        let Ok(Some((again, _))) = answer_for::<SessionsWithUsers>(&found, "s2") else {
            panic!("s2 is among the rows");
        };
        assert!(Arc::ptr_eq(&session, &again));
        for id in ["s1", "s3"] {
            assert!(matches!(answer_for::<SessionsWithUsers>(&found, id), Ok(Some((s, _))) if s.id == id));
        }
    }

    #[test]
    fn a_missing_row_is_none_and_a_failed_read_is_an_error() {
        let found: Found<SessionsWithUsers> = Ok(vec![row("s1", "u1"), row("s3", "u3")]);
        assert!(matches!(answer_for::<SessionsWithUsers>(&found, "s2"), Ok(None)));
        assert!(matches!(answer_for::<SessionsWithUsers>(&found, ""), Ok(None)));
        assert!(matches!(answer_for::<SessionsWithUsers>(&Err(()), "s1"), Err(())));
        let users: Found<Users> = Ok(vec![Arc::new(User::sample("u1")), Arc::new(User::sample("u3"))]);
        assert!(matches!(answer_for::<Users>(&users, "u3"), Ok(Some(u)) if u.id == "u3"));
        assert!(matches!(answer_for::<Users>(&users, "u2"), Ok(None)));
    }
}

//! Cold lookups, coalesced: the session and user of JWTs seen for the first time, read for
//! several requests in one query.
//!
//! A request whose JWT names a user or a session that is not cached reads both from the
//! database (the one it has comes back fresh; a new sign-in of a cached user is the common case
//! of a session alone). Under load many such requests are in flight at once (each user's new token every
//! 15 minutes), and a round trip per request costs PostgreSQL and warden more than the rows
//! themselves. So requests hand their session id to one task, which reads every id waiting
//! at that moment with one `WHERE id = ANY(...)` query and answers each request. Nothing waits
//! for a batch to fill: a lone request is read at once, alone; requests that arrive while
//! queries are running make the next batch larger. At most [`MAX_IN_FLIGHT`] batch queries run
//! at a time, so the pool keeps connections for everything else.
//!
//! A failed read is not an answer: the request then reads what it needs itself, through the
//! usual path, which reports the database's state (503) as every other query does.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::db::sessions::{self, SessionRef};
use crate::db::users::User;

/// Session ids read by one query at most.
const MAX_BATCH: usize = 64;
/// Batch queries running at once at most. Fewer in flight make each batch larger: with 2
/// instead of 4, 200,000 cold EdDSA tokens at 64 connections cost PostgreSQL 15–19 µs a
/// request instead of 34–49 and warden 76–95 µs instead of 82–104, at a median of 15.4k
/// requests/s instead of 12.5k (BENCHMARKS.md). A batch holds up to [`MAX_BATCH`] ids, so with
/// a remote database two in flight still read up to 128 sessions per round-trip time.
const MAX_IN_FLIGHT: usize = 2;
/// Requests that may wait for a batch; beyond this they read alone.
const QUEUE: usize = 1024;

/// What one request gets back: its session and user, `None` when the session does not exist,
/// `Err(())` when the batch's query failed. Shared, not copied: requests naming the same
/// session in one batch get the same rows, and the cache keeps them as they are.
pub(crate) type Answer = Result<Option<(Arc<SessionRef>, Arc<User>)>, ()>;

type Waiting = (String, oneshot::Sender<Answer>);

/// A batch's rows, sorted by session id (looked up by binary search, so no id is copied
/// into a map key).
type Found = Result<Vec<(Arc<SessionRef>, Arc<User>)>, ()>;

/// The handle requests use; the task behind it lives as long as the [`crate::auth::Auth`].
#[derive(Debug, Clone)]
pub(crate) struct SessionBatcher {
    queue: mpsc::Sender<Waiting>,
}

impl SessionBatcher {
    /// Starts the task reading batches from `db`.
    pub(crate) fn spawn(db: PgPool) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, waiting) = mpsc::channel(QUEUE);
        (Self { queue }, tokio::spawn(run(db, waiting)))
    }

    /// The session `id` and its user, read with whatever other requests are waiting.
    pub(crate) async fn load(&self, db: &PgPool, id: &str) -> Answer {
        let (reply, answer) = oneshot::channel();
        if let Err(err) = self.queue.try_send((id.to_owned(), reply)) {
            // The queue is full (or the task is gone): read alone.
            let (id, _) = err.into_inner();
            let ids = [id];
            return answer_for(&read(db, &ids).await, &ids[0]);
        }
        answer.await.unwrap_or(Err(()))
    }
}

async fn run(db: PgPool, mut waiting: mpsc::Receiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut batch: Vec<Waiting> = Vec::with_capacity(MAX_BATCH);
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
            metrics::counter!("warden_session_batches_total").increment(1);
            metrics::counter!("warden_session_batch_reads_total")
                .increment(u64::try_from(ids.len()).unwrap_or(u64::MAX));
            let found = read(&db, &ids).await;
            drop(slot);
            for (id, reply) in ids.iter().zip(replies) {
                let _ = reply.send(answer_for(&found, id));
            }
        });
    }
}

/// The answer for session `id` among a batch's rows.
fn answer_for(found: &Found, id: &str) -> Answer {
    let rows = found.as_ref().map_err(|&()| ())?;
    Ok(rows
        .binary_search_by(|(session, _)| session.id.as_str().cmp(id))
        .ok()
        .and_then(|at| rows.get(at))
        .map(|(session, user)| (Arc::clone(session), Arc::clone(user))))
}

async fn read(db: &PgPool, ids: &[String]) -> Found {
    match sessions::find_refs_with_users(db, ids).await {
        Ok(rows) => {
            let mut rows: Vec<_> = rows
                .into_iter()
                .map(|(session, user)| (Arc::new(session), Arc::new(user)))
                .collect();
            rows.sort_unstable_by(|a, b| a.0.id.cmp(&b.0.id));
            Ok(rows)
        }
        Err(err) => {
            tracing::debug!(error = %err, "batched session read failed; the requests read alone");
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
        let found: Found = Ok(vec![row("s1", "u1"), row("s2", "u2"), row("s3", "u3")]);
        let Ok(Some((session, user))) = answer_for(&found, "s2") else {
            panic!("s2 is among the rows");
        };
        assert_eq!((session.id.as_str(), user.id.as_str()), ("s2", "u2"));
        // A second request for the same session gets the same allocation.
        let Ok(Some((again, _))) = answer_for(&found, "s2") else {
            panic!("s2 is among the rows");
        };
        assert!(Arc::ptr_eq(&session, &again));
        for id in ["s1", "s3"] {
            assert!(matches!(answer_for(&found, id), Ok(Some((s, _))) if s.id == id));
        }
    }

    #[test]
    fn a_missing_session_is_none_and_a_failed_read_is_an_error() {
        let found: Found = Ok(vec![row("s1", "u1"), row("s3", "u3")]);
        assert!(matches!(answer_for(&found, "s2"), Ok(None)));
        assert!(matches!(answer_for(&found, ""), Ok(None)));
        assert!(matches!(answer_for(&Err(()), "s1"), Err(())));
    }
}

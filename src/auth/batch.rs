//! Cold lookups, coalesced: the session and user of JWTs seen for the first time, read for
//! several requests in one query.
//!
//! A request whose JWT names a user and a session that are not cached needs both from the
//! database. Under load many such requests are in flight at once (each user's new token every
//! 15 minutes), and a round trip per request costs PostgreSQL and warden more than the rows
//! themselves. So requests hand their session id to one task, which reads every id waiting
//! at that moment with one `WHERE id = ANY(...)` query and answers each request. Nothing waits
//! for a batch to fill: a lone request is read at once, alone; requests that arrive while
//! queries are running make the next batch larger. At most [`MAX_IN_FLIGHT`] batch queries run
//! at a time, so the pool keeps connections for everything else.
//!
//! A failed read is not an answer: the request then reads what it needs itself, through the
//! usual path, which reports the database's state (503) as every other query does.

use std::collections::HashMap;
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
/// `Err(())` when the batch's query failed.
pub(crate) type Answer = Result<Option<(SessionRef, User)>, ()>;

type Waiting = (String, oneshot::Sender<Answer>);

/// The handle requests use; the task behind it lives as long as the [`super::Auth`].
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
        if self.queue.try_send((id.to_owned(), reply)).is_err() {
            // The queue is full (or the task is gone): read alone.
            return read(db, std::slice::from_ref(&id.to_owned()))
                .await
                .map(|mut found| found.remove(id));
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
            let mut ids: Vec<String> = requests.iter().map(|(id, _)| id.clone()).collect();
            ids.sort_unstable();
            ids.dedup();
            let found = read(&db, &ids).await;
            drop(slot);
            for (id, reply) in requests {
                let answer = match &found {
                    Ok(found) => Ok(found.get(&id).cloned()),
                    Err(()) => Err(()),
                };
                let _ = reply.send(answer);
            }
        });
    }
}

async fn read(db: &PgPool, ids: &[String]) -> Result<HashMap<String, (SessionRef, User)>, ()> {
    match sessions::find_refs_with_users(db, ids).await {
        Ok(rows) => Ok(rows.into_iter().map(|row| (row.0.id.clone(), row)).collect()),
        Err(err) => {
            tracing::debug!(error = %err, "batched session read failed; the requests read alone");
            Err(())
        }
    }
}

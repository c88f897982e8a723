//! Connections: accepting them, timing them out, and capping how many are open.
//!
//! `axum::serve` keeps a connection for as long as the client wants: one that sends half a
//! request head, or nothing, or sits idle after a response, holds its file descriptor for ever,
//! and a slowloris can exhaust them. This loop serves the same router with hyper directly and
//! watches every connection:
//!
//! - **Header read timeout** (`HEADER_READ_TIMEOUT_SECS`): a request head must arrive whole
//!   within this, counted from the connection's start or from its first byte after a response.
//! - **Keep-alive timeout** (`KEEP_ALIVE_TIMEOUT_SECS`): an idle connection is closed after this.
//! - **Stall timeout**: a connection with a request in flight that moves no byte either way for
//!   longer than the request timeout (a client that never reads its response) is closed.
//! - **Cap** (`MAX_CONNECTIONS`): at the cap, the connection idle the longest is closed to make
//!   room for the new one (as nginx reuses keep-alive connections when it runs out); when every
//!   connection is busy the new one is refused. The server keeps serving either way.
//!
//! Each connection is one task: hyper's connection future (HTTP/1.1 or h2c, as [`super::protocol`]
//! tells from its first bytes) raced against a watchdog that sleeps until the connection's next
//! deadline. The deadline depends on the connection's state (busy,
//! idle, head started), which the request wrapper and the socket wrapper keep in atomics.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::protocol::{Peek, Protocols, Served};
use crate::config::http;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// Open connections beyond which idle ones are closed to make room (`MAX_CONNECTIONS`).
pub use crate::config::http::DEFAULT_MAX_CONNECTIONS;

/// How long connections may take and how many may be open.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request head must arrive whole within this (`HEADER_READ_TIMEOUT_SECS`, default 60 s).
    pub header_read_timeout: Duration,
    /// An idle keep-alive connection is closed after this (`KEEP_ALIVE_TIMEOUT_SECS`, default
    /// 75 s).
    pub keep_alive_timeout: Duration,
    /// A busy connection moving no byte for this long is closed.
    pub stall_timeout: Duration,
    /// Open connections at most (`MAX_CONNECTIONS`, default 10 000); at the cap the one idle
    /// the longest is closed to make room.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: http::DEFAULT_HEADER_READ_TIMEOUT,
            keep_alive_timeout: http::DEFAULT_KEEP_ALIVE_TIMEOUT,
            // REQUEST_TIMEOUT_SECS' default + 5 s, as the server sets it.
            stall_timeout: http::DEFAULT_REQUEST_TIMEOUT + Duration::from_secs(5),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so the connection cap, not the
/// process limit, decides. Returns the soft limit now in force, when it can be read.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(err) => {
            tracing::warn!(error = %err, "cannot raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The connection cap that fits in `open_files` (leaving room for database connections,
/// the JWKS client and the listener itself).
pub fn cap_for(max_connections: usize, open_files: Option<u64>) -> usize {
    const RESERVED: u64 = 256;
    match open_files {
        Some(limit) => {
            let fits = limit.saturating_sub(RESERVED).max(16) as usize;
            if fits < max_connections {
                tracing::warn!(
                    max_connections,
                    open_files_limit = limit,
                    cap = fits,
                    "MAX_CONNECTIONS is above what the open-files limit allows; capping lower"
                );
            }
            fits.min(max_connections)
        }
        None => max_connections,
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets
/// requests in flight finish, and returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let protocols = Arc::new(Protocols::new());
    metrics::gauge!("warden_connections_open").set(0.0);

    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                accept_error(err).await;
                continue;
            }
        };
        if registry.open() >= limits.max_connections && !registry.drain_one() {
            closed("refused");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let connection = registry.add();
        tokio::spawn(serve_connection(
            Arc::clone(&protocols),
            stream,
            peer,
            router.clone(),
            limits,
            connection,
            Arc::clone(&registry),
            stop_rx.clone(),
        ));
    }

    drop(listener);
    let _ = stop_tx.send(true);
    registry.wait_empty().await;
    Ok(())
}

fn closed(reason: &'static str) {
    metrics::counter!("warden_connections_closed_total", "reason" => reason).increment(1);
}

/// What accept errors mean: a client gave up (ignore), or the process is out of file
/// descriptors or memory (wait a moment: connections will close).
async fn accept_error(err: io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accept failed; pausing accepts for 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename them"
)]
async fn serve_connection(
    protocols: Arc<Protocols>,
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    state: Arc<ConnState>,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) {
    let service = {
        let state = Arc::clone(&state);
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let guard = InFlight::start(Arc::clone(&state));
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = router.clone().oneshot(request);
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(response.map(|body| Tracked { body, _guard: guard }))
            }
        })
    };
    let io = TokioIo::new(Watched {
        inner: stream,
        state: Arc::clone(&state),
    });
    let connection = Served::new(io, service, protocols);
    let mut connection = std::pin::pin!(connection);
    let mut stopping = false;
    loop {
        let deadline = state.deadline(&limits);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::trace!(error = %err, "connection ended with an error");
                }
                break;
            }
            () = state.wake.notified() => {}
            () = tokio::time::sleep_until(deadline.into()) => {
                if let Some(reason) = state.expired(&limits) {
                    closed(reason);
                    break;
                }
            }
            () = state.drain.notified(), if !stopping => {
                if state.in_flight.load(Ordering::Acquire) == 0 {
                    closed("drained");
                    break;
                }
                state.draining.store(false, Ordering::Release);
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
                if state.in_flight.load(Ordering::Acquire) == 0 {
                    break;
                }
            }
        }
    }
    registry.remove(state.id);
}

/// Milliseconds on one process-wide clock, so connections can be compared.
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

fn instant_at(ms: u64) -> Instant {
    let now = now_ms();
    if ms <= now {
        Instant::now()
    } else {
        Instant::now() + Duration::from_millis(ms - now)
    }
}

/// One open connection, as its watchdog and the acceptor see it.
#[derive(Debug)]
struct ConnState {
    id: u64,
    in_flight: AtomicUsize,
    /// Whether a request has completed on this connection (idle then means keep-alive).
    served: AtomicBool,
    /// When the connection last became idle (its start, or the end of a response).
    idle_since: AtomicU64,
    /// When the first byte of the next request head arrived while idle (0: none yet).
    head_started: AtomicU64,
    /// When a byte last moved either way.
    last_io: AtomicU64,
    /// Wakes the watchdog to recompute the deadline.
    wake: Notify,
    /// Asks the connection to close if idle (the acceptor needs room).
    drain: Notify,
    /// Set once the acceptor has asked, so it asks another one next time.
    draining: AtomicBool,
}

impl ConnState {
    fn deadline(&self, limits: &ConnectionLimits) -> Instant {
        let (at, _) = self.next_deadline(limits);
        instant_at(at)
    }

    fn next_deadline(&self, limits: &ConnectionLimits) -> (u64, &'static str) {
        let ms = |d: Duration| d.as_millis() as u64;
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return (
                self.last_io.load(Ordering::Acquire) + ms(limits.stall_timeout),
                "stalled",
            );
        }
        let head = self.head_started.load(Ordering::Acquire);
        if head != 0 {
            return (head + ms(limits.header_read_timeout), "header_timeout");
        }
        let idle = self.idle_since.load(Ordering::Acquire);
        if self.served.load(Ordering::Acquire) {
            (idle + ms(limits.keep_alive_timeout), "idle_timeout")
        } else {
            (idle + ms(limits.header_read_timeout), "header_timeout")
        }
    }

    /// The reason to close now, if a deadline has passed.
    fn expired(&self, limits: &ConnectionLimits) -> Option<&'static str> {
        let (at, reason) = self.next_deadline(limits);
        (now_ms() >= at).then_some(reason)
    }

    /// Bytes of a request came in: they move the stall clock, and when idle they start a head.
    fn bytes_arrived(&self) {
        let now = now_ms();
        self.last_io.store(now, Ordering::Release);
        if self.in_flight.load(Ordering::Acquire) == 0
            && self
                .head_started
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.wake.notify_one();
        }
    }

    fn idle_since(&self) -> Option<u64> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| {
            let head = self.head_started.load(Ordering::Acquire);
            if head != 0 {
                head
            } else {
                self.idle_since.load(Ordering::Acquire)
            }
        })
    }
}

/// The open connections.
#[derive(Debug, Default)]
struct Registry {
    connections: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
    empty: Notify,
}

impl Registry {
    fn open(&self) -> usize {
        self.connections.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn add(&self) -> Arc<ConnState> {
        let now = now_ms();
        let state = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(now),
            head_started: AtomicU64::new(0),
            last_io: AtomicU64::new(now),
            wake: Notify::new(),
            drain: Notify::new(),
            draining: AtomicBool::new(false),
        });
        if let Ok(mut connections) = self.connections.lock() {
            connections.insert(state.id, Arc::clone(&state));
            metrics::gauge!("warden_connections_open").set(connections.len() as f64);
        }
        state
    }

    fn remove(&self, id: u64) {
        if let Ok(mut connections) = self.connections.lock() {
            connections.remove(&id);
            metrics::gauge!("warden_connections_open").set(connections.len() as f64);
            if connections.is_empty() {
                self.empty.notify_waiters();
            }
        }
    }

    /// Asks the connection idle the longest to close; `false` when none is idle.
    fn drain_one(&self) -> bool {
        let Ok(connections) = self.connections.lock() else {
            return false;
        };
        let oldest = connections
            .values()
            .filter(|c| !c.draining.load(Ordering::Acquire))
            .filter_map(|c| c.idle_since().map(|since| (since, c)))
            .min_by_key(|(since, _)| *since);
        match oldest {
            Some((_, connection)) => {
                connection.draining.store(true, Ordering::Release);
                connection.drain.notify_one();
                true
            }
            None => false,
        }
    }

    async fn wait_empty(&self) {
        loop {
            let notified = self.empty.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts a request as in flight from its head until its response body is dropped.
#[derive(Debug)]
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(state: Arc<ConnState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        state.head_started.store(0, Ordering::Release);
        state.last_io.store(now_ms(), Ordering::Release);
        state.wake.notify_one();
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let state = &self.0;
        let now = now_ms();
        state.served.store(true, Ordering::Release);
        state.idle_since.store(now, Ordering::Release);
        state.last_io.store(now, Ordering::Release);
        state.in_flight.fetch_sub(1, Ordering::AcqRel);
        state.wake.notify_one();
    }
}

/// A response body that keeps its request counted until it is written (or abandoned).
struct Tracked {
    body: Body,
    _guard: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, noting when bytes move and when the next request head begins.
struct Watched {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.state.bytes_arrived();
        }
        result
    }
}

impl Peek for TokioIo<Watched> {
    fn poll_peek(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<usize>> {
        let watched = self.inner();
        let result = watched.inner.poll_peek(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            // The head has begun, though hyper has not read it yet: its timeout runs from here.
            watched.state.bytes_arrived();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.state.last_io.store(now_ms(), Ordering::Release);
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.state.last_io.store(now_ms(), Ordering::Release);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(75),
            stall_timeout: Duration::from_secs(30),
            max_connections: 10,
        }
    }

    #[test]
    fn each_state_has_its_deadline() {
        let registry = Registry::default();
        let c = registry.add();
        let start = c.idle_since.load(Ordering::Acquire);
        assert_eq!(c.next_deadline(&limits()), (start + 10_000, "header_timeout"));
        c.head_started.store(start + 500, Ordering::Release);
        assert_eq!(c.next_deadline(&limits()), (start + 10_500, "header_timeout"));
        let guard = InFlight::start(Arc::clone(&c));
        let io = c.last_io.load(Ordering::Acquire);
        assert_eq!(c.next_deadline(&limits()), (io + 30_000, "stalled"));
        assert!(c.idle_since().is_none(), "a busy connection is never drained");
        drop(guard);
        let idle = c.idle_since.load(Ordering::Acquire);
        assert_eq!(c.next_deadline(&limits()), (idle + 75_000, "idle_timeout"));
        assert_eq!(c.idle_since(), Some(idle));
    }

    #[test]
    fn the_longest_idle_connection_is_drained_and_busy_ones_never() {
        let registry = Registry::default();
        let a = registry.add();
        let b = registry.add();
        a.idle_since.store(5, Ordering::Release);
        b.idle_since.store(1, Ordering::Release);
        let _busy = InFlight::start(Arc::clone(&b));
        assert!(registry.drain_one());
        // `a` was asked (a permit is stored for it), `b` was not.
        let asked = a.drain.notified();
        let mut asked = std::pin::pin!(asked);
        let waker = futures_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(asked.as_mut().poll(&mut cx).is_ready());
        let _busy_a = InFlight::start(Arc::clone(&a));
        assert!(!registry.drain_one(), "no idle connection left to close");
    }

    fn futures_waker() -> std::task::Waker {
        std::task::Waker::noop().clone()
    }
}

//! Which protocol a connection speaks (HTTP/1.1, or h2c with prior knowledge), told from its
//! first bytes without consuming them.
//!
//! hyper-util's auto builder reads the first 24 bytes itself and hands them to hyper's HTTP/1
//! parser through a rewind buffer. The parser then holds 24 bytes it cannot parse, and its
//! first reserve of 8 KiB on top of them doubles the read buffer: every HTTP/1 connection kept
//! 16 KiB for reading instead of 8 KiB (seen with DHAT: one 16,384-byte buffer a connection,
//! grown in `BytesMut::reserve` under hyper's first `parse`). Peeking leaves the bytes in the
//! socket, so hyper reads the whole head into its first 8 KiB buffer.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::HttpService;
use hyper_util::rt::TokioExecutor;
use tokio::io::ReadBuf;
use tokio::time::Sleep;

/// What an h2c client sends first (RFC 9113, 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long to wait before looking again when the bytes so far begin the preface but do not
/// complete it (the socket stays readable, so waiting for readiness would return at once):
/// 10 ms, doubling up to a second, so a client that stops there (or closes, which a peek
/// cannot see behind the bytes waiting) costs a few dozen looks before the header read
/// timeout closes it.
const FIRST_RETRY: Duration = Duration::from_millis(10);
const LAST_RETRY: Duration = Duration::from_secs(1);

/// The protocols a connection may speak, as configured once for all of them.
#[derive(Debug, Clone)]
pub(super) struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
}

impl Protocols {
    pub(super) fn new() -> Self {
        let mut http1 = http1::Builder::new();
        // Half-close on. Off, hyper reads the socket while every request is in flight, to
        // notice a client gone, and reserves a fresh 8 KiB buffer for that read because the
        // request still holds the old one: an allocation a request, two read buffers a busy
        // connection, and peaks at 1,000 connections about 5 MB higher (BENCHMARKS). The price:
        // a request whose client has gone runs to its end (the request timeout bounds it), and
        // the gone client is noticed when its answer is written (ADR 8, addendum).
        http1.max_buf_size(64 * 1024).half_close(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2.max_concurrent_streams(128).max_header_list_size(64 * 1024);
        Self { http1, http2 }
    }
}

/// A socket whose waiting bytes can be looked at without taking them.
pub(super) trait Peek {
    fn poll_peek(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<usize>>;
}

/// The protocol the first bytes show: `None` while they are a strict beginning of the h2c
/// preface. Anything else (including no bytes at all, the client having closed) is HTTP/1,
/// whose parser answers or closes as it should.
fn protocol(first: &[u8]) -> Option<Protocol> {
    let n = first.len().min(PREFACE.len());
    if first.is_empty() || first[..n] != PREFACE[..n] {
        Some(Protocol::Http1)
    } else if n == PREFACE.len() {
        Some(Protocol::Http2)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// Why a connection ended early; logged, never answered.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectionError {
    #[error("reading the first bytes: {0}")]
    Peek(#[from] io::Error),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// One connection: first deciding its protocol, then served by hyper in it. The h2 state is
/// boxed, so the far more common HTTP/1 connection does not carry its size.
#[allow(
    clippy::large_enum_variant,
    reason = "HTTP/1 is the common case; boxing it would cost every connection an allocation"
)]
pub(super) enum Served<I, S>
where
    S: HttpService<Incoming>,
{
    Sniffing {
        io: Option<I>,
        service: Option<S>,
        protocols: Arc<Protocols>,
        retry: Option<Pin<Box<Sleep>>>,
        delay: Duration,
        closing: bool,
    },
    Http1(http1::UpgradeableConnection<I, S>),
    Http2(Pin<Box<http2::Connection<I, S, TokioExecutor>>>),
}

impl<I, S, B> Served<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Peek + Unpin + Send + 'static,
    S: HttpService<Incoming, ResBody = B> + Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    pub(super) fn new(io: I, service: S, protocols: Arc<Protocols>) -> Self {
        Self::Sniffing {
            io: Some(io),
            service: Some(service),
            protocols,
            retry: None,
            delay: FIRST_RETRY,
            closing: false,
        }
    }

    /// Finishes the requests in flight and closes; before the protocol is known, closes.
    pub(super) fn graceful_shutdown(self: Pin<&mut Self>) {
        match self.get_mut() {
            Self::Sniffing { closing, .. } => *closing = true,
            Self::Http1(connection) => Pin::new(connection).graceful_shutdown(),
            Self::Http2(connection) => connection.as_mut().graceful_shutdown(),
        }
    }
}

impl<I, S, B> Future for Served<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Peek + Unpin + Send + 'static,
    S: HttpService<Incoming, ResBody = B> + Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = Result<(), ConnectionError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this {
                Self::Sniffing {
                    io,
                    service,
                    protocols,
                    retry,
                    delay,
                    closing,
                } => {
                    if *closing {
                        return Poll::Ready(Ok(()));
                    }
                    if let Some(wait) = retry
                        && !wait.is_elapsed()
                    {
                        ready!(wait.as_mut().poll(cx));
                    }
                    let (Some(socket), Some(_)) = (io.as_ref(), service.as_ref()) else {
                        return Poll::Ready(Ok(()));
                    };
                    let mut first = [0u8; PREFACE.len()];
                    let mut buf = ReadBuf::new(&mut first);
                    ready!(socket.poll_peek(cx, &mut buf))?;
                    let Some(protocol) = protocol(buf.filled()) else {
                        let at = tokio::time::Instant::now() + *delay;
                        match retry {
                            Some(wait) => wait.as_mut().reset(at),
                            None => *retry = Some(Box::pin(tokio::time::sleep_until(at))),
                        }
                        *delay = (*delay * 2).min(LAST_RETRY);
                        continue;
                    };
                    let (Some(io), Some(service)) = (io.take(), service.take()) else {
                        return Poll::Ready(Ok(()));
                    };
                    *this = match protocol {
                        Protocol::Http1 => {
                            Self::Http1(protocols.http1.serve_connection(io, service).with_upgrades())
                        }
                        Protocol::Http2 => {
                            Self::Http2(Box::pin(protocols.http2.serve_connection(io, service)))
                        }
                    };
                }
                Self::Http1(connection) => return Pin::new(connection).poll(cx).map_err(Into::into),
                Self::Http2(connection) => return connection.as_mut().poll(cx).map_err(Into::into),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_tell_the_protocol() {
        assert_eq!(protocol(b"GET / HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(protocol(b"P"), None, "could still be the preface");
        assert_eq!(protocol(b"PRI * HTTP/2.0\r\n"), None);
        assert_eq!(protocol(b"POST / HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(protocol(PREFACE), Some(Protocol::Http2));
        assert_eq!(
            protocol(b""),
            Some(Protocol::Http1),
            "a closed socket is hyper's to end"
        );
        assert_eq!(
            protocol(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"),
            Some(Protocol::Http2)
        );
    }
}

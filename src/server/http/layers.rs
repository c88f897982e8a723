//! The three layers of [`super::layered`] that do work on both sides of a request: the request
//! id, the metrics and load shedding, as hand-written services.
//!
//! Why not `axum::middleware::from_fn`: an `async fn` middleware's future holds the request,
//! `Next` (the rest of the stack, boxed and cloned for every request) and the inner future
//! together, about 1 KB each, and `from_fn` boxes it on top of the box a `Route` puts around
//! its future. Each request paid that three times, and a request waiting on the database keeps
//! it for the whole wait (`python3 bench/load.py inflight`). Each future here is the inner
//! future and a few words of state, held inline in the stack's one future, which the one
//! `Route` around the whole stack boxes (ADR 0025).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use super::{RequestId, X_REQUEST_ID, new_request_id};
use crate::error::ApiError;
use crate::server::metrics;

/// Accepts a sane `x-request-id` from a trusted proxy (or from a peer not known, as in an app
/// that serves without `ConnectInfo`) or makes one; echoes it back. A client's own is
/// replaced: an id it chose would sit in the logs and in admin audit rows, pointing whoever
/// reads them at another request's lines.
#[derive(Debug, Clone)]
pub(super) struct RequestIdLayer {
    trusted: Arc<Vec<ipnet::IpNet>>,
}

impl RequestIdLayer {
    pub(super) fn new(trusted: Vec<ipnet::IpNet>) -> Self {
        Self {
            trusted: Arc::new(trusted),
        }
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService {
            inner,
            trusted: Arc::clone(&self.trusted),
        }
    }
}

/// See [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub(super) struct RequestIdService<S> {
    inner: S,
    trusted: Arc<Vec<ipnet::IpNet>>,
}

impl<S: Service<Request, Response = Response>> Service<Request> for RequestIdService<S> {
    type Response = Response;
    type Error = S::Error;
    type Future = WithRequestId<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let from_trusted = request
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .is_none_or(|peer| {
                let ip = peer.0.ip().to_canonical();
                self.trusted.iter().any(|net| net.contains(&ip))
            });
        let incoming = request
            .headers()
            .get(&X_REQUEST_ID)
            .filter(|_| from_trusted)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        let id = incoming.unwrap_or_else(new_request_id);
        let header = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        request.headers_mut().insert(X_REQUEST_ID, header.clone());
        request.extensions_mut().insert(RequestId(id));
        WithRequestId {
            inner: self.inner.call(request),
            header: Some(header),
        }
    }
}

pin_project! {
    /// The answer, with the request's id.
    #[derive(Debug)]
    pub(super) struct WithRequestId<F> {
        #[pin]
        inner: F,
        header: Option<HeaderValue>,
    }
}

impl<F: Future<Output = Result<Response, E>>, E> Future for WithRequestId<F> {
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(header) = this.header.take() {
            response.headers_mut().insert(X_REQUEST_ID, header);
        }
        Poll::Ready(Ok(response))
    }
}

/// Counts and times every request by method, route template and status
/// ([`metrics::record_request`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct TrackLayer;

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Track { inner }
    }
}

/// See [`TrackLayer`].
#[derive(Debug, Clone)]
pub(super) struct Track<S> {
    inner: S,
}

impl<S: Service<Request, Response = Response>> Service<Request> for Track<S> {
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let method = metrics::method_label(request.method());
        let route = metrics::route_label(&request);
        Tracked {
            inner: self.inner.call(request),
            started,
            method,
            route: Some(route),
        }
    }
}

pin_project! {
    /// The answer, counted when it comes.
    #[derive(Debug)]
    pub(super) struct Tracked<F> {
        #[pin]
        inner: F,
        started: Instant,
        method: &'static str,
        route: Option<String>,
    }
}

impl<F: Future<Output = Result<Response, E>>, E> Future for Tracked<F> {
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        if let Some(route) = this.route.take() {
            metrics::record_request(this.method, route, response.status(), this.started.elapsed());
        }
        Poll::Ready(Ok(response))
    }
}

/// Sheds load: beyond `MAX_CONCURRENT_REQUESTS` in flight, answer 503 at once. A request holds
/// its slot until its answer's head is ready, or until it is dropped.
#[derive(Debug, Clone)]
pub(super) struct ShedLayer {
    slots: Arc<Semaphore>,
}

impl ShedLayer {
    pub(super) fn new(slots: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots)),
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            slots: Arc::clone(&self.slots),
        }
    }
}

/// See [`ShedLayer`].
#[derive(Debug, Clone)]
pub(super) struct Shed<S> {
    inner: S,
    slots: Arc<Semaphore>,
}

impl<S: Service<Request, Response = Response>> Service<Request> for Shed<S> {
    type Response = Response;
    type Error = S::Error;
    type Future = Admitted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => Admitted::Running {
                inner: self.inner.call(request),
                permit: Some(permit),
            },
            Err(_) => Admitted::Shed,
        }
    }
}

pin_project! {
    /// A request let in (holding its slot), or the 503 of one shed.
    #[project = AdmittedProjection]
    #[derive(Debug)]
    pub(super) enum Admitted<F> {
        Running {
            #[pin]
            inner: F,
            permit: Option<OwnedSemaphorePermit>,
        },
        Shed,
    }
}

impl<F: Future<Output = Result<Response, E>>, E> Future for Admitted<F> {
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AdmittedProjection::Running { inner, permit } => {
                let response = ready!(inner.poll(cx));
                // The slot is free as soon as the answer is, not when this future is dropped.
                drop(permit.take());
                Poll::Ready(response)
            }
            AdmittedProjection::Shed => {
                ::metrics::counter!("warden_requests_shed_total").increment(1);
                Poll::Ready(Ok(ApiError::Overloaded.into_response()))
            }
        }
    }
}

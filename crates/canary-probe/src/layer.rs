//! The tower layer that measures every request it sees: latency to the
//! response head, status, route (axum's matched route template when the layer
//! is added with `Router::route_layer`, else the path), errors.

use crate::probe::Probe;
use axum::extract::MatchedPath;
use http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

/// Wraps a service so that the probe measures it.
#[derive(Debug, Clone)]
pub struct ProbeLayer {
    pub(crate) probe: Probe,
}

impl Probe {
    /// The layer to add to the service's router (`route_layer` for route templates).
    pub fn layer(&self) -> ProbeLayer {
        ProbeLayer { probe: self.clone() }
    }
}

impl<S> Layer<S> for ProbeLayer {
    type Service = Measured<S>;
    fn layer(&self, inner: S) -> Measured<S> {
        Measured { inner, probe: self.probe.clone() }
    }
}

/// The measured service.
#[derive(Debug, Clone)]
pub struct Measured<S> {
    inner: S,
    probe: Probe,
}

impl<S, B, R> Service<Request<B>> for Measured<S>
where
    S: Service<Request<B>, Response = Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| req.uri().path().to_string(), |m| m.as_str().to_string());
        let (method, path) = (req.method().to_string(), req.uri().path().to_string());
        let probe = self.probe.clone();
        probe.begin();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            // A service error (rather than a response) counts as a 500.
            let status = result.as_ref().map_or(500, |r| r.status().as_u16());
            probe.end(&route, &method, &path, status, start.elapsed().as_micros() as u64);
            result
        })
    }
}

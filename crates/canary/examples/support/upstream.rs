//! An upstream for the examples: answers 200 "ok", or 500 for one request in
//! `fail_every` when that is non-zero.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// An upstream that fails one request in `fail_every` when that is non-zero.
pub async fn upstream(fail_every: Arc<AtomicU64>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let count = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (fail_every, count) = (Arc::clone(&fail_every), Arc::clone(&count));
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let n = fail_every.load(Ordering::Relaxed);
                    let i = count.fetch_add(1, Ordering::Relaxed);
                    let status = if n != 0 && i % n == 0 { 500 } else { 200 };
                    let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
                    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
                    async move { Ok::<_, Infallible>(r) }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(addr)
}

//! A gRPC service for the tests, served by tonic over HTTP/2 on loopback
//! (h2c, or TLS with ALPN h2), and a tonic client for it. Messages and
//! routing are written by hand: two methods need no code generation.
//!
//! `canary.test.Echo`:
//! - `Say(Ask) -> Answer`: answers with the service's name (and, for the
//!   name `te`, with the `te` header it got); a service made with
//!   `fail_every = n` answers every n-th call UNAVAILABLE instead.
//! - `Count(Ask) -> stream Answer`: `count` answers, then trailers with
//!   `x-total: count`; when `name` is `fail`, UNAVAILABLE in the trailers;
//!   when `name` is `hang`, one answer and then nothing, forever.

use futures_util::stream::{self, BoxStream, StreamExt};
use http::uri::PathAndQuery;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

/// The request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ask {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint32, tag = "2")]
    pub count: u32,
}

/// An answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Answer {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(string, tag = "2")]
    pub served_by: String,
}

pub const SAY: &str = "/canary.test.Echo/Say";
pub const COUNT: &str = "/canary.test.Echo/Count";

/// The service's behaviour, shared by its connections.
#[derive(Clone)]
struct Echo {
    name: &'static str,
    fail_every: u64,
    calls: Arc<AtomicU64>,
}

/// A running gRPC upstream; stopped (its connections cut) when dropped.
pub struct GrpcUpstream {
    pub addr: SocketAddr,
    /// TCP connections accepted.
    pub connections: Arc<AtomicU64>,
    tls: bool,
    rt: Option<tokio::runtime::Runtime>,
}

impl GrpcUpstream {
    /// Over h2c; every `fail_every`-th `Say` fails (0: none).
    pub fn start(name: &'static str, fail_every: u64) -> GrpcUpstream {
        GrpcUpstream::start_with(name, fail_every, None)
    }

    /// Over TLS with `cfg` (whose ALPN should offer h2).
    pub fn start_tls(name: &'static str, cfg: Arc<rustls::ServerConfig>) -> GrpcUpstream {
        GrpcUpstream::start_with(name, 0, Some(tokio_rustls::TlsAcceptor::from(cfg)))
    }

    fn start_with(
        name: &'static str,
        fail_every: u64,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> GrpcUpstream {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let echo = Echo { name, fail_every, calls: Arc::new(AtomicU64::new(0)) };
        let (n, is_tls) = (Arc::clone(&connections), tls.is_some());
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                n.fetch_add(1, Ordering::Relaxed);
                let (echo, tls) = (echo.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(TokioIo::new(stream), echo).await,
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                serve(TokioIo::new(s), echo).await;
                            }
                        }
                    }
                });
            }
        });
        GrpcUpstream { addr, connections, tls: is_tls, rt: Some(rt) }
    }

    /// `h2c://127.0.0.1:PORT`, or `https://localhost:PORT` over TLS.
    pub fn url(&self) -> String {
        match self.tls {
            false => format!("h2c://{}", self.addr),
            true => format!("https://localhost:{}", self.addr.port()),
        }
    }

    /// Stops the service at once: every connection is cut mid-stream.
    pub fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for GrpcUpstream {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn serve<I>(io: I, echo: Echo)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let echo = echo.clone();
        async move { Ok::<_, Infallible>(route(echo, req).await) }
    });
    let _ = http2::Builder::new(TokioExecutor::new()).serve_connection(io, svc).await;
}

async fn route(echo: Echo, req: http::Request<hyper::body::Incoming>) -> http::Response<tonic::body::Body> {
    let mut grpc = tonic::server::Grpc::new(ProstCodec::<Answer, Ask>::default());
    match req.uri().path() {
        SAY => grpc.unary(Say(echo), req).await,
        COUNT => grpc.server_streaming(Count(echo), req).await,
        _ => Status::unimplemented("no such method").into_http(),
    }
}

struct Say(Echo);

impl tonic::server::UnaryService<Ask> for Say {
    type Response = Answer;
    type Future = futures_util::future::Ready<Result<tonic::Response<Answer>, Status>>;

    fn call(&mut self, req: tonic::Request<Ask>) -> Self::Future {
        let e = &self.0;
        let n = e.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if e.fail_every > 0 && n.is_multiple_of(e.fail_every) {
            return futures_util::future::ready(Err(Status::unavailable("overloaded")));
        }
        let te = req.metadata().get("te").map(|v| v.to_str().unwrap_or("?").to_string());
        let text = match req.into_inner().name.as_str() {
            // What arrived of the client's `TE: trailers` (hop-by-hop, yet
            // meant for the gRPC server).
            "te" => te.unwrap_or_else(|| "none".into()),
            name => format!("hello {name}"),
        };
        futures_util::future::ready(Ok(tonic::Response::new(Answer { text, served_by: e.name.into() })))
    }
}

struct Count(Echo);

impl tonic::server::ServerStreamingService<Ask> for Count {
    type Response = Answer;
    type ResponseStream = BoxStream<'static, Result<Answer, Status>>;
    type Future = futures_util::future::Ready<Result<tonic::Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, req: tonic::Request<Ask>) -> Self::Future {
        let Ask { name, count } = req.into_inner();
        let by = self.0.name;
        let answers =
            stream::iter(0..count).map(move |i| Ok(Answer { text: i.to_string(), served_by: by.into() }));
        let end = match name.as_str() {
            "fail" => Status::unavailable("gone away"),
            // A stream's last status goes out as its trailers, metadata and
            // all; with OK it is the way to send custom trailers.
            _ => {
                let mut md = MetadataMap::new();
                md.insert("x-total", count.to_string().parse().unwrap());
                Status::with_metadata(Code::Ok, "", md)
            }
        };
        let s = if name == "hang" {
            stream::once(async move { Ok(Answer { text: "first".into(), served_by: by.into() }) })
                .chain(stream::pending())
                .boxed()
        } else {
            answers.chain(stream::once(async move { Err(end) })).boxed()
        };
        futures_util::future::ready(Ok(tonic::Response::new(s)))
    }
}

/// A gRPC client over one HTTP/2 (prior knowledge) connection pool to `addr`.
pub type GrpcClient = tonic::client::Grpc<HttpClient<HttpConnector, tonic::body::Body>>;

pub fn grpc_client(addr: SocketAddr) -> GrpcClient {
    let http = HttpClient::builder(TokioExecutor::new()).http2_only(true).build_http();
    tonic::client::Grpc::with_origin(http, format!("http://{addr}").parse().unwrap())
}

/// A request for `name` with extra metadata (`x-canary`, `x-user-id`...).
pub fn ask(name: &str, count: u32, metadata: &[(&'static str, &str)]) -> tonic::Request<Ask> {
    let mut req = tonic::Request::new(Ask { name: name.into(), count });
    for (k, v) in metadata {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    req
}

/// A unary `Say`: the answer and the version header, or the status.
pub async fn say(c: &mut GrpcClient, req: tonic::Request<Ask>) -> Result<(Answer, String), Status> {
    c.ready().await.map_err(|e| Status::unknown(e.to_string()))?;
    let resp = c.unary(req, PathAndQuery::from_static(SAY), ProstCodec::<Ask, Answer>::default()).await?;
    let version = resp.metadata().get("x-canary-version").map(|v| v.to_str().unwrap().to_string());
    Ok((resp.into_inner(), version.unwrap_or_default()))
}

/// A server-streaming `Count`: the answers and the trailers, or the status.
pub async fn count(
    c: &mut GrpcClient,
    req: tonic::Request<Ask>,
) -> Result<(Vec<Answer>, MetadataMap), Status> {
    c.ready().await.map_err(|e| Status::unknown(e.to_string()))?;
    let resp = c
        .server_streaming(req, PathAndQuery::from_static(COUNT), ProstCodec::<Ask, Answer>::default())
        .await?;
    let mut s = resp.into_inner();
    let mut answers = Vec::new();
    while let Some(a) = s.message().await? {
        answers.push(a);
    }
    Ok((answers, s.trailers().await?.unwrap_or_default()))
}

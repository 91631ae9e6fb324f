//! What a request's handling shares: the worker's state, the client at the
//! other end, and the request's identity for measurement and error records.

use crate::headers::ip_value;
use crate::metrics::Shard;
use crate::requests::entry::RequestId;
use crate::requests::user::hex16;
use crate::routes::Routes;
use crate::settings::Settings;
use crate::traces::context::TraceContext;
use crate::upstream::pool::Pool;
use canary_core::routing::Decision;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Uri};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// Everything one worker's requests share.
#[derive(Debug)]
pub struct Worker {
    /// Routing state.
    pub routes: Arc<Routes>,
    /// Configuration.
    pub cfg: Arc<Settings>,
    /// This worker's metrics.
    pub shard: Arc<Shard>,
    /// This worker's upstream connections.
    pub pool: Arc<Pool>,
    /// The ids this worker gives requests that came without one.
    pub ids: RequestIds,
    /// This worker's shelf in the access log, when one is written.
    pub shelf: Option<Arc<crate::requests::shelf::Shelf>>,
    /// This worker's shelf for traced requests, while tracing is on.
    pub spans: Option<Arc<crate::requests::shelf::Shelf>>,
}

/// Request ids made by one worker: its own random prefix and a count, so
/// ids are unique across workers and restarts without a shared counter.
#[derive(Debug)]
pub struct RequestIds {
    /// The prefix's hex digits, made once.
    prefix: [u8; 16],
    next: std::sync::atomic::AtomicU64,
    /// A xorshift state, for trace and span ids.
    draw: std::sync::atomic::AtomicU64,
}

impl RequestIds {
    /// Ids starting from `prefix`, and random numbers from `seed`; both
    /// should be random, and apart: a request id shows its prefix to
    /// anyone, and must not tell them the trace ids to come.
    pub fn new(prefix: u64, seed: u64) -> RequestIds {
        RequestIds {
            prefix: hex16(prefix),
            next: std::sync::atomic::AtomicU64::new(0),
            draw: std::sync::atomic::AtomicU64::new(seed | 1),
        }
    }

    /// A random 64-bit number, never 0 (xorshift64*, this worker's own).
    pub fn random(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let mut x = self.draw.load(Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.draw.store(x, Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1
    }

    /// A new id: 32 hex digits.
    pub fn make(&self) -> RequestId {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut id = [0u8; 32];
        id[..16].copy_from_slice(&self.prefix);
        id[16..].copy_from_slice(&hex16(n));
        RequestId::Made(id)
    }
}

/// The client at the other end of a connection, formatted once for all the
/// requests it sends: the address is the user key when a request has none,
/// and goes into `x-forwarded-for`.
#[derive(Debug)]
pub struct Peer {
    ip: HeaderValue,
    addr: IpAddr,
}

impl Peer {
    /// The peer at `addr`.
    pub fn new(addr: SocketAddr) -> Arc<Peer> {
        Arc::new(Peer { ip: ip_value(addr.ip()), addr: addr.ip() })
    }

    /// The address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The address, as a header value.
    pub fn ip(&self) -> &HeaderValue {
        &self.ip
    }
}

/// The request's identity for measurement and error records.
pub struct Ctx {
    pub(super) w: Arc<Worker>,
    pub(super) route: u16,
    pub(super) start: Instant,
    pub(super) method: Method,
    pub(super) uri: Uri,
    /// The client's protocol version.
    pub(super) version: http::Version,
    /// Whether the request is a gRPC call (see `grpc.rs`).
    pub(super) grpc: bool,
    /// Whether the client sent `TE: trailers` (hop-by-hop, so stripped, but
    /// HTTP/2 allows it and gRPC servers may ask for it).
    pub(super) te_trailers: bool,
    /// Whether the response is written by the fast client path, which takes
    /// an upstream's response head in its own form (see `h1::raw`).
    pub(super) raw_head: bool,
    /// Who sent it, and where routing sent it, for its record (see `journal`).
    pub(super) who: Who,
    /// The request body's declared length (`Content-Length`), for the access log.
    pub(super) bytes_in: u64,
    /// The route's label, taken with its index while the access log is on
    /// (every request's entry needs it).
    pub(super) route_label: Option<Arc<str>>,
    /// The copy to send the canary once stable answered, during a shadow
    /// step (see `shadow`).
    pub(super) shadow: Option<Arc<crate::shadow::tee::Copy>>,
}

/// Who sent a request and where routing sent it: what its record needs
/// that the request's end no longer has at hand.
#[derive(Debug, Clone)]
pub struct Who {
    /// The version routing chose, and why.
    pub decision: Decision,
    /// The user key's keyed hash (see `requests::user`).
    pub user: u64,
    /// The user key itself, only when the access log is told to show it.
    pub user_key: Option<Box<str>>,
    /// The request's `x-request-id`, as sent or made (see `route::name_request`).
    pub request_id: Option<RequestId>,
    /// The client's address.
    pub client: IpAddr,
    /// Its place in a trace, while tracing is on (see `route::trace_request`);
    /// boxed, so that a request without one carries a pointer's width.
    pub trace: Option<Box<TraceContext>>,
}

impl Who {
    /// The id the proxy made for the request, if it made one: the upstream
    /// must be sent it.
    pub fn made_id(&self) -> Option<&[u8; 32]> {
        match &self.request_id {
            Some(RequestId::Made(b)) => Some(b),
            _ => None,
        }
    }
}

impl Ctx {
    /// The context of a request the fast client path forwards from its own
    /// bytes (see `fast.rs`): HTTP/1.1, never a gRPC call (those have a body),
    /// its upstream's response head kept in the client's form.
    pub(super) fn fast(
        w: Arc<Worker>,
        (route, route_label): (u16, Option<Arc<str>>),
        start: Instant,
        (method, uri): (Method, Uri),
        who: Who,
    ) -> Ctx {
        let version = http::Version::HTTP_11;
        let (grpc, te_trailers, raw_head, bytes_in) = (false, false, true, 0);
        let shadow = None;
        Ctx {
            w,
            route,
            start,
            method,
            uri,
            version,
            grpc,
            te_trailers,
            raw_head,
            who,
            bytes_in,
            route_label,
            shadow,
        }
    }

    /// The request's method.
    pub(super) fn method(&self) -> &Method {
        &self.method
    }

    /// The request's target as the upstream gets it, but for a path prefix.
    pub(super) fn target(&self) -> &str {
        self.uri.path_and_query().map_or("/", PathAndQuery::as_str)
    }
}

//! Clients that go away mid-request: an upload closed half sent, and a large
//! response read in part and closed. Over raw TCP sockets, so the disconnect
//! is exactly where the test puts it. Each time the upstream's connection is
//! closed (never left open, never pooled in the middle of an exchange), the
//! in-flight gauge comes back to its level, the request is counted exactly
//! once, and the next request is served.

use crate::support::*;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the admin API says of the proxy's requests: in flight now (the
/// Prometheus gauge, both versions), and stable's counts.
#[derive(Debug, Clone, PartialEq)]
struct Counts {
    in_flight: i64,
    total: u64,
    upstream_failures: u64,
}

async fn counts(admin: SocketAddr) -> Counts {
    let (_, _, text) = get(&client(), admin, "/metrics", &[]).await;
    let in_flight = text
        .lines()
        .filter(|l| l.starts_with("canary_in_flight_requests{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
        .sum();
    let m = admin_json(&client(), admin, "/api/v2/metrics").await;
    let r = &m["versions"]["stable"]["requests"];
    Counts {
        in_flight,
        total: r["total"].as_u64().unwrap(),
        upstream_failures: r["upstream_failures"].as_u64().unwrap(),
    }
}

/// Polls until `check` holds, for up to 15 s; on timeout, fails with `what`
/// and the last value seen.
async fn settle<T: std::fmt::Debug>(
    what: &str,
    mut read: impl AsyncFnMut() -> T,
    check: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = read().await;
        if check(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: still {v:?} after 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The upstream's connections that carried proxied requests, before a
/// request: made so far, and open (idle in canary's pool) now.
#[derive(Debug, Clone, Copy)]
struct Conns {
    made: u64,
    open: u64,
}

impl Conns {
    fn of(up: &Upstream) -> Conns {
        Conns { made: up.carried.made.load(Ordering::Relaxed), open: up.carried.open.load(Ordering::Relaxed) }
    }
}

/// What may become of the upstream connection a request used when its
/// client leaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Left {
    /// Closed: the exchange was cut in the middle.
    Closed,
    /// Closed, or back in the pool if the exchange had ended.
    ClosedOrPooled,
}

/// canary in front of one upstream, and its workers (each has its own pool).
struct Bench {
    srv: canary::server::Running,
    up: Upstream,
    workers: usize,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn start() -> Bench {
        let (up, dir) = (Upstream::start("stable"), tempdir());
        let cfg = config(&up, None, "0", dir.path());
        let workers = cfg.proxy.workers;
        Bench { srv: start(cfg), up, workers, _dir: dir }
    }

    async fn counts(&self) -> Counts {
        counts(self.srv.admin_addr).await
    }

    /// A connection to the proxy with `head` sent, and the counts before it.
    async fn send(&self, head: &str) -> (TcpStream, Counts, Conns) {
        let (before, conns) = (self.counts().await, Conns::of(&self.up));
        let mut s = TcpStream::connect(self.srv.proxy_addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        (s, before, conns)
    }

    /// After a disconnect: nothing in flight, `before` plus one request
    /// counted (and no upstream failure: the client left, the upstream did
    /// nothing wrong), the upstream connection the request used closed (or
    /// pooled, as `left` allows; the others as they were), and the next
    /// request served.
    async fn all_released(&self, before: &Counts, conns: Conns, left: Left) {
        let (admin, up) = (self.srv.admin_addr, &self.up);
        let want =
            Counts { in_flight: 0, total: before.total + 1, upstream_failures: before.upstream_failures };
        settle("the counts", || counts(admin), |c| *c == want).await;
        let made = up.carried.made.load(Ordering::Relaxed) - conns.made;
        assert!(made <= 1, "{made} upstream connections for one request");
        let closed = conns.open + made - 1;
        let open = async || up.carried.open.load(Ordering::Relaxed);
        match left {
            Left::Closed => settle("the upstream's open connections", open, |&n| n == closed).await,
            Left::ClosedOrPooled => {
                settle("the upstream's open connections", open, |&n| n <= closed + 1).await
            }
        };
        let (status, version, body) = get(&client(), self.srv.proxy_addr, "/", &[]).await;
        assert_eq!((status, version.as_str(), body.as_str()), (200, "stable", "stable"), "the next request");
        let want = Counts { total: want.total + 1, ..want };
        settle("the counts after the next request", || counts(admin), |c| *c == want).await;
        // Idle connections stay pooled, but no more than one per worker and
        // path (the lean path's and hyper's): the pool does not grow.
        let open = up.carried.open.load(Ordering::Relaxed);
        assert!(open <= 2 * self.workers as u64, "{open} upstream connections left open");
    }
}

/// Reads from `s` until `n` bytes have come, then drops the connection.
async fn read_then_close(mut s: TcpStream, n: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < n {
        let k = tokio::time::timeout(Duration::from_secs(15), s.read(&mut buf)).await.unwrap().unwrap();
        assert!(k > 0, "the response ended after {got} bytes");
        got += k;
    }
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_response_releases_the_upstream_and_is_counted_once() {
    let b = Bench::start();
    // A GET takes the lean path; a POST with a body takes hyper's.
    let heads = [
        "GET /bytes/200000000 HTTP/1.1\r\nhost: x\r\n\r\n",
        "POST /bytes/200000000 HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello",
    ];
    for round in 0..6 {
        let (s, before, conns) = b.send(heads[round % 2]).await;
        // 1 MiB of 200 MB: the rest is still coming when the client leaves.
        read_then_close(s, 1 << 20).await;
        b.all_released(&before, conns, Left::Closed).await;
    }
    b.srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_upload_releases_the_upstream_and_is_counted_once() {
    let b = Bench::start();
    let chunk = vec![b'x'; 64 * 1024];
    for round in 0..6 {
        // A declared length, then a chunked body: both cut off half sent.
        let chunked = round % 2 == 1;
        let head = match chunked {
            false => "POST /count HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n",
            true => "POST /count HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        };
        let (mut s, before, conns) = b.send(head).await;
        for _ in 0..16 {
            if chunked {
                s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.unwrap();
            }
            s.write_all(&chunk).await.unwrap();
            if chunked {
                s.write_all(b"\r\n").await.unwrap();
            }
        }
        // The upload is under way upstream before the client leaves.
        let made = async || b.up.carried.made.load(Ordering::Relaxed);
        settle("the upstream connection", made, |&n| n > conns.made).await;
        drop(s);
        b.all_released(&before, conns, Left::Closed).await;
    }
    b.srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_before_the_answer_is_counted_once_and_frees_its_slot() {
    let b = Bench::start();
    // The upstream takes 1.5 s; the client leaves as soon as it has asked.
    let heads = [
        "GET /slow/1500 HTTP/1.1\r\nhost: x\r\n\r\n",
        "POST /slow/1500 HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello",
    ];
    for round in 0..4 {
        let (s, before, conns) = b.send(heads[round % 2]).await;
        settle("the request in flight", || b.counts(), |c| c.in_flight == 1).await;
        drop(s);
        b.all_released(&before, conns, Left::ClosedOrPooled).await;
    }
    b.srv.shutdown();
}

//! The client side of the wire, which the proxy speaks itself for plain
//! HTTP/1.1 (see `proxy::front`): a client written byte by byte sends heads
//! pipelined, split, closing, or unusual enough to move the connection to
//! hyper's server mid-way, and must get every answer, in order and framed
//! exactly, on the same connection.

use crate::support::*;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads bytes from a connection, keeping what it read past one response.
struct Reader {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    async fn connect(addr: SocketAddr) -> Reader {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        Reader { s, buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// Ensures `n` bytes are buffered; false at EOF.
    async fn fill(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            let mut chunk = [0u8; 8192];
            let got = self.s.read(&mut chunk).await.unwrap_or(0);
            if got == 0 {
                return false;
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
        true
    }

    /// The next CRLF-terminated line, without its CRLF.
    async fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).to_string();
                self.buf.drain(..i + 2);
                return line;
            }
            let want = self.buf.len() + 1;
            assert!(self.fill(want).await, "EOF inside a line: {:?}", String::from_utf8_lossy(&self.buf));
        }
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        assert!(self.fill(n).await, "EOF inside a body");
        self.buf.drain(..n).collect()
    }

    /// One response; `head_request`: it answers a HEAD, so has no body.
    async fn answer(&mut self, head_request: bool) -> Answer {
        let status_line = self.line().await;
        let status = status_line.get(9..12).unwrap_or("").parse().unwrap_or(0);
        let mut head = status_line + "\n";
        loop {
            let l = self.line().await;
            if l.is_empty() {
                break;
            }
            head += &l;
            head += "\n";
        }
        let mut a = Answer { status, head, body: Vec::new() };
        if head_request || status == 204 || status == 304 {
            return a;
        }
        if a.header("transfer-encoding").is_some_and(|t| t.ends_with("chunked")) {
            loop {
                let size =
                    usize::from_str_radix(self.line().await.split(';').next().unwrap().trim(), 16).unwrap();
                if size == 0 {
                    assert_eq!(self.line().await, "", "no trailers on HTTP/1.1");
                    return a;
                }
                a.body.extend(self.take(size).await);
                assert_eq!(self.take(2).await, b"\r\n");
            }
        }
        let len: usize = a.header("content-length").expect("a length or chunks").parse().unwrap();
        a.body = self.take(len).await;
        a
    }

    /// Whether the proxy closed the connection (and sent nothing more).
    async fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill(1).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_heads_are_answered_in_order_on_one_connection() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let mut c = Reader::connect(srv.proxy_addr).await;
    c.send(
        b"GET /status/201 HTTP/1.1\r\nhost: a\r\n\r\n\
          HEAD /x HTTP/1.1\r\nhost: a\r\n\r\n\
          GET /headers HTTP/1.1\r\nhost: api.example\r\nx-forwarded-for: 10.0.0.1\r\n\r\n\
          DELETE /status/204 HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    let a = c.answer(false).await;
    assert_eq!((a.status, a.body.as_slice()), (201, &b"stable"[..]), "{a:?}");
    assert!(a.header("date").is_some(), "a Date header: {a:?}");
    let a = c.answer(true).await;
    assert_eq!((a.status, a.header("content-length")), (200, Some("6")), "HEAD keeps the length: {a:?}");
    let a = c.answer(false).await;
    let seen: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(seen["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    assert_eq!(seen["x-forwarded-host"], "api.example");
    let a = c.answer(false).await;
    assert_eq!(a.status, 204, "{a:?}");
    c.send(b"GET /after HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert_eq!(c.answer(false).await.status, 200, "still open after the pipeline");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_in_single_bytes_is_read_whole() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let mut c = Reader::connect(srv.proxy_addr).await;
    for b in b"GET /split HTTP/1.1\r\nhost: a\r\nx-user-id: u1\r\n\r\n" {
        c.send(&[*b]).await;
    }
    let a = c.answer(false).await;
    assert_eq!((a.status, a.body.as_slice()), (200, &b"stable"[..]));
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_moves_to_the_general_path_mid_way_and_keeps_working() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let mut c = Reader::connect(srv.proxy_addr).await;
    c.send(b"GET /one HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert_eq!(c.answer(false).await.body, b"stable");
    // A body: the lean path hands the connection over, head and body included.
    c.send(b"POST /count HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello").await;
    assert_eq!(c.answer(false).await.body, b"5");
    c.send(b"GET /three HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert_eq!(c.answer(false).await.body, b"stable");
    // Pipelined behind a lean request, an unusual one and another after it.
    c.send(
        b"GET /four HTTP/1.1\r\nhost: a\r\n\r\nGET /five HTTP/1.0\r\nhost: a\r\nconnection: keep-alive\r\n\r\n",
    )
    .await;
    assert_eq!(c.answer(false).await.status, 200);
    assert_eq!(c.answer(false).await.status, 200);
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_is_answered_then_the_connection_closes() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let mut c = Reader::connect(srv.proxy_addr).await;
    c.send(b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\nGET /never HTTP/1.1\r\n\r\n").await;
    let a = c.answer(false).await;
    assert_eq!((a.status, a.header("connection")), (200, Some("close")), "{a:?}");
    assert!(c.closed().await, "nothing after the answer, the next request unread");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_and_error_bodies_are_framed_exactly() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let dead_dir = tempdir();
    let dead = start(config_of("http://127.0.0.1:1".into(), None, "0", dead_dir.path(), None));
    let srv = start(config(&stable, None, "0", dir.path()));
    let mut c = Reader::connect(srv.proxy_addr).await;
    c.send(b"GET /bytes/300000 HTTP/1.1\r\nhost: a\r\n\r\nGET /bytes/0 HTTP/1.1\r\nhost: a\r\n\r\n").await;
    let a = c.answer(false).await;
    assert_eq!(a.body.len(), 300_000, "{}", a.head);
    assert!(a.body.iter().all(|&b| b == 0));
    assert_eq!(c.answer(false).await.body.len(), 0);
    // The proxy's own reply, from a proxy whose upstream refuses connections.
    let mut d = Reader::connect(dead.proxy_addr).await;
    d.send(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\nGET /y HTTP/1.1\r\nhost: a\r\n\r\n").await;
    for _ in 0..2 {
        let a = d.answer(false).await;
        assert_eq!((a.status, a.header("content-type")), (502, Some("application/json")), "{a:?}");
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["error"], "upstream_unavailable");
    }
    dead.shutdown();
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_served_again_and_closed_at_shutdown() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let mut conns = Vec::new();
    for i in 0..100 {
        let mut c = Reader::connect(srv.proxy_addr).await;
        c.send(format!("GET /first/{i} HTTP/1.1\r\nhost: a\r\n\r\n").as_bytes()).await;
        assert_eq!(c.answer(false).await.status, 200);
        conns.push(c);
    }
    for c in &mut conns {
        c.send(b"GET /again HTTP/1.1\r\nhost: a\r\n\r\n").await;
        assert_eq!(c.answer(false).await.body, b"stable", "an idle connection serves its next request");
    }
    let stopped = tokio::task::spawn_blocking(move || srv.shutdown());
    for c in &mut conns {
        assert!(c.closed().await, "shutdown closes an idle connection");
    }
    stopped.await.unwrap();
}

/// An upstream that keeps the request heads it gets, each answered `ok`.
async fn recording_upstream() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut chunk).await {
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let _ = tx.send(String::from_utf8_lossy(&buf[..end + 4]).to_string());
                        buf.drain(..end + 4);
                        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// The next head that starts with `start`: the proxy's own checks (health,
/// resources) may reach the upstream in between.
async fn next_head(heads: &mut tokio::sync::mpsc::UnboundedReceiver<String>, start: &str) -> String {
    loop {
        let head = heads.recv().await.unwrap();
        if head.starts_with(start) {
            return head;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_gets_the_clients_lines_with_its_own_host_and_forwarded_headers() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let (recorder, mut heads) = recording_upstream().await;
    let mut cfg = config(&stable, None, "0", dir.path());
    cfg.stable = canary_core::upstream::Upstream::parse(&format!("http://{recorder}/base")).unwrap();
    let srv = start(cfg);
    let mut c = Reader::connect(srv.proxy_addr).await;
    c.send(
        b"GET /p?q=1 HTTP/1.1\r\nHost: api.example\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
          TE: trailers\r\nProxy-Authorization: Basic eA==\r\nX-Forwarded-For: 10.0.0.1\r\n\
          X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nX-Many: 1\r\nx-many: 2\r\n\r\n",
    )
    .await;
    let a = c.answer(false).await;
    assert_eq!((a.status, a.body.as_slice()), (200, &b"ok"[..]), "{a:?}");
    let head = next_head(&mut heads, "GET /base/p").await;
    assert_eq!(
        head,
        format!(
            "GET /base/p?q=1 HTTP/1.1\r\nhost: {recorder}\r\nX-Many: 1\r\nx-many: 2\r\n\
             x-forwarded-for: 10.0.0.1, 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: api.example\r\n\r\n"
        ),
        "hop-by-hop and the client's x-forwarded-* are gone; the upstream's host and path prefix are set"
    );
    // A forwarded-for chain that is not plain text is replaced, not extended.
    c.send(b"DELETE /d HTTP/1.1\r\nhost: h\r\nx-forwarded-for: \xff\r\n\r\n").await;
    assert_eq!(c.answer(false).await.status, 200);
    let head = next_head(&mut heads, "DELETE /base/d HTTP/1.1\r\n").await;
    assert!(head.contains("\r\nx-forwarded-for: 127.0.0.1\r\n"), "{head}");
    srv.shutdown();
}

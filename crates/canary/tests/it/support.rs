//! Test fixtures: real upstream servers on loopback, canary started in-process
//! or as a real process, and an HTTP client.

use bytes::Bytes;
use canary::config::{self, Overrides, ServeConfig};
use canary::server::{self, Running};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// A test upstream: answers with its name; special paths change behaviour.
/// - `/status/{code}`: that status
/// - `/slow/{ms}`: answers after a delay
/// - `/headers`: the request headers it received, as JSON
/// - `/count`: reads the body and answers its length
/// - `/bytes/{n}`: streams n bytes
/// - `/api/v2/metrics` on an upstream named `canary-hot`: memory at 95%
/// - `/api/v2/pay...` on an upstream named `canary-pay-broken`: 500
/// - `/api/v2/health` on an upstream named `canary-sick`: 503 unhealthy
pub struct Upstream {
    pub addr: SocketAddr,
    /// When non-zero, every request is answered with this status.
    pub fail_with: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
    _thread: std::thread::JoinHandle<()>,
}

impl Upstream {
    pub fn start(name: &'static str) -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let fail_with = Arc::new(AtomicU16::new(0));
        let (s, f) = (Arc::clone(&stop), Arc::clone(&fail_with));
        let thread = std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(serve(listener, name, s, f));
        });
        Upstream { addr, fail_with, stop, _thread: thread }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

async fn serve(
    listener: std::net::TcpListener,
    name: &'static str,
    stop: Arc<AtomicBool>,
    fail: Arc<AtomicU16>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let fail = Arc::clone(&fail);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let status = fail.load(Ordering::Relaxed);
                answer(name, req, status)
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

type UpBody = http_body_util::Either<Full<Bytes>, Zeros>;

async fn answer(
    name: &'static str,
    req: Request<Incoming>,
    fail: u16,
) -> Result<Response<UpBody>, Infallible> {
    let path = if fail != 0 { format!("/status/{fail}") } else { req.uri().path().to_string() };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let full = |status: u16, body: String| {
        let mut r = Response::new(UpBody::Left(Full::new(Bytes::from(body))));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r.headers_mut().insert("x-upstream", name.parse().unwrap());
        r
    };
    Ok(match parts.as_slice() {
        ["status", code] => full(code.parse().unwrap_or(500), name.to_string()),
        ["slow", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
            full(200, name.to_string())
        }
        ["api", "v2", "pay", ..] if name == "canary-pay-broken" => full(500, "payment failed".into()),
        ["api", "v2", "health"] if name == "canary-sick" => full(503, r#"{"status":"unhealthy"}"#.into()),
        ["api", "v2", "metrics"] if name == "canary-hot" => {
            full(200, r#"{"resources": {"memory_percent": 95.0, "cpu_percent": 20.0}}"#.to_string())
        }
        ["headers"] => {
            let map: serde_json::Map<String, serde_json::Value> =
                req.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into())).collect();
            full(200, serde_json::Value::Object(map).to_string())
        }
        ["count"] => {
            let mut body = req.into_body();
            let mut n = 0usize;
            while let Some(Ok(f)) = body.frame().await {
                n += f.data_ref().map_or(0, |d| d.len());
            }
            full(200, n.to_string())
        }
        ["bytes", n] => {
            let mut r = Response::new(UpBody::Right(Zeros::new(n.parse().unwrap())));
            r.headers_mut().insert("x-upstream", name.parse().unwrap());
            r
        }
        _ => full(200, name.to_string()),
    })
}

/// A body of `n` zero bytes, produced 64 KiB at a time, never held whole.
pub struct Zeros {
    left: u64,
    chunk: Bytes,
}

impl Zeros {
    pub fn new(n: u64) -> Zeros {
        Zeros { left: n, chunk: Bytes::from(vec![0u8; 64 * 1024]) }
    }
}

impl Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64) as usize;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// A fresh temporary directory, removed at drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Config for an in-process canary on ephemeral ports.
pub fn config(stable: &Upstream, canary: Option<&Upstream>, share: &str, dir: &Path) -> ServeConfig {
    let cli = Overrides {
        stable: Some(stable.url()),
        canary: canary.map(Upstream::url),
        listen: Some("127.0.0.1:0".into()),
        admin: Some("127.0.0.1:0".into()),
        state: Some(dir.join("canary.db")),
        share: Some(share.into()),
        ..Overrides::default()
    };
    config::load(None, &cli).unwrap()
}

/// Starts canary in-process.
pub fn start(cfg: ServeConfig) -> Running {
    server::start(cfg).unwrap()
}

/// A pooled HTTP/1 client.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build_http()
}

/// A plain GET with extra headers; returns status, served version and body.
pub async fn get(
    c: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut b = Request::get(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = c.request(b.body(Full::new(Bytes::new())).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let version =
        resp.headers().get("x-canary-version").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).to_string();
    (status, version, body)
}

/// JSON from the admin API.
pub async fn admin_json(
    c: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    path: &str,
) -> serde_json::Value {
    let (_, _, body) = get(c, addr, path, &[]).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// PUT JSON to the admin API; returns status and the JSON reply.
pub async fn admin_put(
    c: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    admin_send(c, http::Method::PUT, addr, path, body).await
}

/// POST JSON to the admin API; returns status and the JSON reply.
pub async fn admin_post(
    c: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    admin_send(c, http::Method::POST, addr, path, body).await
}

async fn admin_send(
    c: &Client<HttpConnector, Full<Bytes>>,
    method: http::Method,
    addr: SocketAddr,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// `canary serve` as a real process.
pub struct Process {
    pub child: Child,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
}

impl Process {
    /// Starts `canary serve` with `args` and waits for its "listening" line.
    pub fn start(args: &[&str]) -> Process {
        let mut full = vec!["serve"];
        full.extend_from_slice(args);
        Process::start_cmd(&full)
    }

    /// Starts the binary with `args` and reads the addresses on its first line
    /// (a server with one address has it as both `proxy` and `admin`).
    pub fn start_cmd(args: &[&str]) -> Process {
        Process::start_env(args, &[])
    }

    /// As [`Process::start_cmd`], with extra environment variables.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_canary"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        let addrs: Vec<SocketAddr> =
            line.split_whitespace().filter_map(|w| w.trim_end_matches(',').parse().ok()).collect();
        assert!(!addrs.is_empty(), "unexpected first line: {line:?}");
        Process { child, proxy: addrs[0], admin: *addrs.last().unwrap() }
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `canary serve` as a process in front of `stable` on ephemeral ports, its
/// state in `state`, with `extra` flags.
pub fn serve_proc(stable: &Upstream, state: &str, extra: &[&str]) -> Process {
    let url = stable.url();
    let mut args =
        vec!["--stable", url.as_str(), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--state", state];
    args.extend_from_slice(extra);
    Process::start(&args)
}

/// Runs the binary to completion; returns exit code and stderr.
pub fn run_canary(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_canary")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

/// A path in `dir`, as a string argument.
pub fn arg(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// Sends requests from many distinct users at about `rps` until `stop` is set;
/// returns (answered 2xx, anything else).
pub fn spawn_load(addr: SocketAddr, rps: u64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let c = client();
        let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps.max(1)));
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            i += 1;
            let (c, ok, bad) = (c.clone(), Arc::clone(&ok), Arc::clone(&bad));
            tokio::spawn(async move {
                let req = Request::get(format!("http://{addr}/api/v2/rooms"))
                    .header("x-user-id", format!("load-user-{i}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                // A connection error counts as a failure too, not a lost task.
                let good = match c.request(req).await {
                    Ok(resp) => resp.status().as_u16() < 300 && resp.into_body().collect().await.is_ok(),
                    Err(_) => false,
                };
                (if good { &ok } else { &bad }).fetch_add(1, Ordering::Relaxed);
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed))
    })
}

/// Polls `check` every 100 ms for up to `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..secs * 10 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Runs the binary's client commands with `args`; returns exit code, stdout and stderr.
pub fn cli(args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_canary")).args(args).env_remove("CANARY_TOKEN").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs `jq -c FILTER` on `input`: the seed's pipelines, as written.
pub fn jq(filter: &str, input: &str) -> serde_json::Value {
    use std::io::Write;
    let mut child = Command::new("jq")
        .arg("-c")
        .arg(filter)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("jq is required for these tests (./test.sh installs it)");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "jq {filter} failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

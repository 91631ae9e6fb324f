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
/// - `/api/v2/pay...` on an upstream named `canary-pay-slow`: 200 after 400 ms
/// - `/api/v2/health` on an upstream named `canary-sick`: 503 unhealthy
/// - `/api/v2/health*` and `/api/v2/metrics` on one named `service`: healthy
/// - `/sni` (over TLS): the server name the client asked for
pub struct Upstream {
    pub addr: SocketAddr,
    /// When non-zero, every request is answered with this status.
    pub fail_with: Arc<AtomicU16>,
    /// Connections accepted (TLS ones once their handshake completed).
    pub connections: Arc<AtomicU64>,
    /// The connections that carried the proxy's requests (see [`Carried`]).
    pub carried: Arc<Carried>,
    tls: bool,
    stop: Arc<AtomicBool>,
    _thread: std::thread::JoinHandle<()>,
}

impl Upstream {
    pub fn start(name: &'static str) -> Upstream {
        Upstream::start_with(name, None)
    }

    /// An upstream speaking TLS with `cfg`; its URL is `https://localhost:PORT`.
    pub fn start_tls(name: &'static str, cfg: Arc<rustls::ServerConfig>) -> Upstream {
        Upstream::start_with(name, Some(tokio_rustls::TlsAcceptor::from(cfg)))
    }

    /// As [`Upstream::start_tls`], on `addr`: an upstream restarted where
    /// the one before it listened (it may take a moment to let the port go).
    pub fn start_tls_at(name: &'static str, cfg: Arc<rustls::ServerConfig>, addr: SocketAddr) -> Upstream {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match std::net::TcpListener::bind(addr) {
                Ok(l) => break l,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("{addr} not free yet ({e}), retrying");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot listen on {addr} again: {e}"),
            }
        };
        Upstream::start_on(listener, name, Some(tokio_rustls::TlsAcceptor::from(cfg)))
    }

    fn start_with(name: &'static str, tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        Upstream::start_on(std::net::TcpListener::bind("127.0.0.1:0").unwrap(), name, tls)
    }

    fn start_on(
        listener: std::net::TcpListener,
        name: &'static str,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Upstream {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let fail_with = Arc::new(AtomicU16::new(0));
        let (connections, carried) = (Arc::new(AtomicU64::new(0)), Arc::new(Carried::default()));
        let (s, f) = (Arc::clone(&stop), Arc::clone(&fail_with));
        let n = (Arc::clone(&connections), Arc::clone(&carried));
        let is_tls = tls.is_some();
        let thread = std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(serve(listener, name, s, f, n, tls));
        });
        Upstream { addr, fail_with, connections, carried, tls: is_tls, stop, _thread: thread }
    }

    pub fn url(&self) -> String {
        match self.tls {
            false => format!("http://{}", self.addr),
            // A name, so the certificate check and SNI are by name.
            true => format!("https://localhost:{}", self.addr.port()),
        }
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
    (connections, carried): (Arc<AtomicU64>, Arc<Carried>),
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (fail, connections, tls) = (Arc::clone(&fail), Arc::clone(&connections), tls.clone());
        let conn = Arc::new(Conn { carried: Arc::clone(&carried), proxied: AtomicBool::new(false) });
        tokio::spawn(async move {
            let Some(acceptor) = tls else {
                connections.fetch_add(1, Ordering::Relaxed);
                return serve_conn(TokioIo::new(stream), name, fail, None, conn).await;
            };
            // A refused handshake (an unknown CA on the client's side) ends here.
            let Ok(stream) = acceptor.accept(stream).await else { return };
            connections.fetch_add(1, Ordering::Relaxed);
            let sni: Option<Arc<str>> = stream.get_ref().1.server_name().map(Arc::from);
            serve_conn(TokioIo::new(stream), name, fail, sni, conn).await;
        });
    }
}

/// The connections that carried a request outside `/api/v2/`: the proxy's
/// requests, not canary's own polls of each version's health and metrics
/// (which keep a connection of their own, opened on their schedule).
#[derive(Debug, Default)]
pub struct Carried {
    /// Such connections made so far.
    pub made: AtomicU64,
    /// Of those, the ones still open.
    pub open: AtomicU64,
}

/// One connection, counted in [`Carried`] from its first such request until
/// it closes.
struct Conn {
    carried: Arc<Carried>,
    proxied: AtomicBool,
}

impl Conn {
    fn saw(&self, path: &str) {
        if !path.starts_with("/api/v2/") && !self.proxied.swap(true, Ordering::Relaxed) {
            self.carried.made.fetch_add(1, Ordering::Relaxed);
            self.carried.open.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.proxied.load(Ordering::Relaxed) {
            self.carried.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

async fn serve_conn<I>(
    io: I,
    name: &'static str,
    fail: Arc<AtomicU16>,
    sni: Option<Arc<str>>,
    conn: Arc<Conn>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: Request<Incoming>| {
        conn.saw(req.uri().path());
        let status = fail.load(Ordering::Relaxed);
        answer(name, req, status, sni.clone())
    });
    let _ = http1::Builder::new().serve_connection(io, svc).await;
}

type UpBody = http_body_util::Either<Full<Bytes>, Zeros>;

async fn answer(
    name: &'static str,
    req: Request<Incoming>,
    fail: u16,
    sni: Option<Arc<str>>,
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
        ["sni"] => full(200, sni.as_deref().unwrap_or("").to_string()),
        ["slow", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
            full(200, name.to_string())
        }
        ["api", "v2", "pay", ..] if name == "canary-pay-broken" => full(500, "payment failed".into()),
        ["api", "v2", "pay", ..] if name == "canary-pay-slow" => {
            tokio::time::sleep(Duration::from_millis(400)).await;
            full(200, name.to_string())
        }
        ["api", "v2", "health"] if name == "canary-sick" => full(503, r#"{"status":"unhealthy"}"#.into()),
        ["api", "v2", "metrics"] if name == "canary-hot" => {
            full(200, r#"{"resources": {"memory_percent": 95.0, "cpu_percent": 20.0}}"#.to_string())
        }
        ["api", "v2", "health", ..] if name == "service" => full(200, r#"{"status":"healthy"}"#.into()),
        ["api", "v2", "metrics"] if name == "service" => full(
            200,
            r#"{"performance": {"p95_response_time": 20.0}, "reliability": {"error_rate": 0.0},
                "resources": {"memory_percent": 30.0, "cpu_percent": 20.0}}"#
                .into(),
        ),
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

/// The seed of the random choices of this run's tests (the demo service's
/// error draws): `CANARY_TEST_SEED` when set, to replay a failure, else one
/// from the clock. Printed by each test that uses it, so a failed test's
/// output says how to replay it.
pub fn test_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| match std::env::var("CANARY_TEST_SEED") {
        Ok(s) => s.parse().unwrap_or_else(|_| panic!("CANARY_TEST_SEED={s:?} is not a number")),
        Err(_) => {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        }
    });
    eprintln!("random draws seeded with {seed} (replay with CANARY_TEST_SEED={seed})");
    seed
}

/// A fresh temporary directory, removed at drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Config for an in-process canary on ephemeral ports.
pub fn config(stable: &Upstream, canary: Option<&Upstream>, share: &str, dir: &Path) -> ServeConfig {
    config_of(stable.url(), canary.map(Upstream::url), share, dir, None)
}

/// Config for an in-process canary on ephemeral ports in front of these
/// upstream URLs, its state in `dir`, with `toml` as its config file if given.
pub fn config_of(
    stable: String,
    canary: Option<String>,
    share: &str,
    dir: &Path,
    toml: Option<&str>,
) -> ServeConfig {
    let cli = Overrides {
        stable: Some(stable),
        canary,
        listen: Some("127.0.0.1:0".into()),
        admin: Some("127.0.0.1:0".into()),
        state: Some(dir.join("canary.db")),
        share: Some(share.into()),
        ..Overrides::default()
    };
    let file = toml.map(|t| {
        let f = dir.join("canary.toml");
        std::fs::write(&f, t).unwrap();
        f
    });
    config::load(file.as_deref(), &cli).unwrap()
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
        Process::start_logged(args, env, Stdio::null())
    }

    /// As [`Process::start_env`], with the log (stderr) sent to `log`. Demo
    /// services it starts (directly, or through `canary demo`) draw their
    /// errors from [`test_seed`].
    pub fn start_logged(args: &[&str], env: &[(&str, &str)], log: impl Into<Stdio>) -> Process {
        Process::start_bin(env!("CARGO_BIN_EXE_canary"), args, env, log)
    }

    /// As [`Process::start_logged`], running the canary binary at `bin`
    /// (another release's, say).
    pub fn start_bin(bin: &str, args: &[&str], env: &[(&str, &str)], log: impl Into<Stdio>) -> Process {
        let mut child = Command::new(bin)
            .args(args)
            .env("CANARY_DEMO_SEED", test_seed().to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
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

    /// Sends `signal` (`STOP`, `CONT`...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success();
        assert!(ok, "kill -{signal} {pid} failed");
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
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .env("CANARY_DEMO_SEED", test_seed().to_string())
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

/// A loopback address kept for the test as long as the returned socket
/// lives: bound, with SO_REUSEADDR, but not listening. Connections to it are
/// refused, and no server or outgoing connection of another test is given its
/// port (a port bound and let go at once could be), while a child told to
/// listen there still can: servers set SO_REUSEADDR too (etcd, Prometheus).
pub fn reserved() -> (SocketAddr, tokio::net::TcpSocket) {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.set_reuseaddr(true).unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    (s.local_addr().unwrap(), s)
}

/// A path in `dir`, as a string argument.
pub fn arg(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
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
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .env_remove("CANARY_TOKEN")
        .env("CANARY_DEMO_SEED", test_seed().to_string())
        .output()
        .unwrap();
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

/// A certificate authority made for one test, and the leaf certificates it issues.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A leaf certificate and its key, in PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: rustls::pki_types::CertificateDer<'static>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().unwrap();
        TestCa { issuer: rcgen::CertifiedIssuer::self_signed(params, key).unwrap() }
    }

    /// The CA certificate in PEM, as a `ca_file` holds it.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `localhost` and 127.0.0.1, its common name `cn`.
    pub fn leaf(&self, cn: &str) -> Leaf {
        self.leaf_with(cn, |_| {})
    }

    /// A leaf as [`TestCa::leaf`], valid only from `from` to `to` (year,
    /// month, day; midnight UTC).
    pub fn leaf_dated(&self, cn: &str, from: (i32, u8, u8), to: (i32, u8, u8)) -> Leaf {
        self.leaf_with(cn, |p| {
            p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
            p.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        })
    }

    /// A leaf as [`TestCa::leaf`] that expires `secs` seconds from now.
    pub fn leaf_expiring_in(&self, cn: &str, secs: u64) -> Leaf {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        self.leaf_with(cn, |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_epoch + Duration::from_secs(secs);
        })
    }

    /// A leaf as [`TestCa::leaf`] that becomes valid `secs` seconds from now.
    pub fn leaf_valid_in(&self, cn: &str, secs: u64) -> Leaf {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        self.leaf_with(cn, |p| {
            p.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch + Duration::from_secs(secs);
            p.not_after = rcgen::date_time_ymd(2090, 1, 1);
        })
    }

    fn leaf_with(&self, cn: &str, edit: impl FnOnce(&mut rcgen::CertificateParams)) -> Leaf {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        edit(&mut params);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone() }
    }

    /// A client config trusting this CA only, offering `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(cfg)
    }
}

impl Leaf {
    /// Writes `{name}.crt` and `{name}.key` in `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (String, String) {
        let (cert, key) = (arg(dir, &format!("{name}.crt")), arg(dir, &format!("{name}.key")));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }

    /// A server config serving this leaf (HTTP/1.1, as upstreams speak it).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.der.clone()], key)
            .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

/// A TLS connection to `addr` checked as `localhost` with `cfg`.
pub async fn tls_connect(
    addr: SocketAddr,
    cfg: &Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::clone(cfg)).connect(name, tcp).await
}

/// One GET over a new TLS connection with HTTP/1.1; returns status, served
/// version and the certificate the server presented.
pub async fn tls_get(
    addr: SocketAddr,
    cfg: &Arc<rustls::ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String, Vec<u8>), String> {
    let tls = tls_connect(addr, cfg).await.map_err(|e| format!("handshake: {e}"))?;
    let cert =
        tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut b = Request::get(path).header("host", "localhost");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp =
        send.send_request(b.body(Full::new(Bytes::new())).unwrap()).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let version =
        resp.headers().get("x-canary-version").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    resp.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok((status, version, cert))
}

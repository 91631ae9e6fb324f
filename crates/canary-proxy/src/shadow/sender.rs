//! The sender thread: takes finished jobs off the queue, sends each copy
//! to the canary (and, for a noise sample, to stable again, at the same
//! moment, so both second answers are as far from the user's in time),
//! reads the answers up to the compare limit, compares them and records
//! the outcome. Copies in flight are bounded; a copy that gets no answer
//! within the timeout counts as a failure of the canary, never as a wait
//! of anyone's.

use super::results::{self, Example, Outcome};
use super::tee::{Answer, Job};
use super::{Shadow, Skip};
use crate::routes::Routes;
use bytes::Bytes;
use canary_core::shadow::diff::{self, Difference};
use canary_core::upstream::{Protocol, Upstream};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::Receiver;

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The clients copies are sent with: HTTP/1.1 (or h2 by ALPN over TLS),
/// and HTTP/2 by prior knowledge for `h2c://` upstreams.
struct Clients {
    http: HttpClient,
    h2c: HttpClient,
}

/// Starts the thread.
pub fn spawn(
    shadow: Arc<Shadow>,
    rx: Receiver<Job>,
    routes: Arc<Routes>,
    tls: Arc<rustls::ClientConfig>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("canary-shadow".into()).spawn(move || {
        yield_to_users();
        let clients = Arc::new(clients(&tls));
        rt.block_on(run(shadow, rx, routes, clients));
    })?;
    Ok(())
}

/// Lowers this thread's scheduling priority (nice 10): when the cores are
/// busy, the workers answering users run first and copies wait. On Linux
/// the nice value is per thread; elsewhere, or if refused, nothing changes.
fn yield_to_users() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
        tracing::debug!(error = %e, "the shadow thread keeps its priority");
    }
}

fn clients(tls: &rustls::ClientConfig) -> Clients {
    let connector = |tls: &rustls::ClientConfig| {
        let mut tls = tls.clone();
        tls.alpn_protocols.clear();
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build()
    };
    Clients {
        http: Client::builder(TokioExecutor::new()).build(connector(tls)),
        h2c: Client::builder(TokioExecutor::new()).http2_only(true).build(connector(tls)),
    }
}

/// How long the thread gathers jobs after the first of a batch: while it
/// sleeps, a worker queuing a job wakes nobody (a wake-up is a write to an
/// eventfd, and a switch away from the worker, per request otherwise).
/// Idle, it waits on the queue and costs nothing.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

async fn run(shadow: Arc<Shadow>, mut rx: Receiver<Job>, routes: Arc<Routes>, clients: Arc<Clients>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(shadow.options.concurrency.max(1)));
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        tokio::time::sleep(GATHER).await;
        while let Ok(job) = rx.try_recv() {
            batch.push(job);
        }
        for job in batch.drain(..) {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
            let (shadow, routes, clients) = (Arc::clone(&shadow), Arc::clone(&routes), Arc::clone(&clients));
            tokio::spawn(async move {
                let size = job.size();
                one(&shadow, job, &routes, &clients).await;
                shadow.release(size);
                drop(slot);
            });
        }
    }
}

/// An answer to a copy: the status, headers and body, and how long it took.
struct Got {
    answer: Answer,
    latency_us: u64,
}

/// Why a copy got no answer to compare.
enum Missed {
    /// No answer, or a broken one, in time: the canary's failure.
    Failed,
    /// An answer over the compare limit: not compared, not a failure.
    TooLarge,
}

async fn one(shadow: &Shadow, job: Job, routes: &Routes, clients: &Clients) {
    let epoch = shadow.results.epoch();
    let ups = routes.upstreams();
    let Some(canary) = ups.canary.clone() else { return };
    let stable = ups.stable.clone();
    drop(ups);
    let again = job.copy.noise.then(|| ask(shadow, clients, &stable, &job));
    let (canary_got, stable_got) = match again {
        Some(a) => {
            let (c, s) = tokio::join!(ask(shadow, clients, &canary, &job), a);
            (c, Some(s))
        }
        None => (ask(shadow, clients, &canary, &job).await, None),
    };
    let route = job.copy.route.to_string();
    let ignored = shadow.options.ignored_on(&route);
    let compare = |a: &Answer, b: &Answer| {
        let mut found = diff::compare(&view(a), &view(b), &shadow.options.compare);
        diff::ignore(&mut found, &ignored);
        found
    };
    let noise = match stable_got {
        Some(Ok(s)) => Some(compare(&job.stable, &s.answer)),
        _ => None,
    };
    let (failed, latency_us, differences, canary_answer) = match canary_got {
        Ok(g) => {
            let failed = g.answer.status.is_server_error();
            let found = compare(&job.stable, &g.answer);
            (failed, Some(g.latency_us), Some(found), Some(g.answer))
        }
        Err(Missed::Failed) => (true, None, None, None),
        Err(Missed::TooLarge) => {
            shadow.skip(Skip::TooLarge);
            (false, None, None, None)
        }
    };
    let example = || example(shadow, &job, canary_answer.as_ref(), differences.as_ref());
    shadow.results.record(Outcome {
        epoch,
        route: &route,
        failed,
        latency_us,
        differences: differences.clone(),
        noise,
        example: &example,
    });
}

fn view(a: &Answer) -> diff::Answer<'_> {
    diff::Answer { status: a.status.as_u16(), headers: &a.headers, body: &a.body }
}

/// Sends the job's copy to `up` and reads its answer, within the timeout.
async fn ask(shadow: &Shadow, clients: &Clients, up: &Upstream, job: &Job) -> Result<Got, Missed> {
    let start = Instant::now();
    let c = &job.copy;
    let scheme = if up.protocol() == Protocol::Https { "https" } else { "http" };
    let uri = format!("{scheme}://{}{}{}", up.authority(), up.base_path(), c.uri);
    let mut req = http::Request::new(Full::new(job.body.clone()));
    *req.method_mut() = c.method.clone();
    *req.uri_mut() = uri.parse().map_err(|_| Missed::Failed)?;
    *req.headers_mut() = c.headers.clone();
    let client = if up.protocol() == Protocol::H2c { &clients.h2c } else { &clients.http };
    let limit = shadow.options.max_compare;
    let exchange = async {
        let resp = client.request(req).await.map_err(|_| Missed::Failed)?;
        let (parts, body) = resp.into_parts();
        let body = match Limited::new(body, limit).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(Missed::TooLarge),
            Err(_) => return Err(Missed::Failed),
        };
        Ok(Answer { status: parts.status, headers: parts.headers, body })
    };
    match tokio::time::timeout(shadow.options.timeout, exchange).await {
        Ok(Ok(answer)) => Ok(Got { answer, latency_us: start.elapsed().as_micros() as u64 }),
        Ok(Err(m)) => Err(m),
        Err(_) => Err(Missed::Failed),
    }
}

fn example(
    shadow: &Shadow,
    job: &Job,
    canary: Option<&Answer>,
    found: Option<&BTreeSet<Difference>>,
) -> Example {
    let o = &shadow.options;
    let side =
        |a: &Answer| results::side(a.status.as_u16(), &a.headers, &a.body, &o.compare.headers, &o.redact);
    let empty = Answer::default();
    Example {
        method: job.copy.method.to_string(),
        path: job.copy.uri.path().to_string(),
        query: job.copy.uri.query().map(|q| results::redact_query(q, &o.redact)),
        stable: side(&job.stable),
        canary: side(canary.unwrap_or(&empty)),
        differences: found.map(|f| f.iter().cloned().collect()).unwrap_or_default(),
    }
}

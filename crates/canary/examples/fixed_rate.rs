//! An open-loop HTTP/1.1 load generator in the style of wrk2: latency at a
//! fixed offered rate, which is what users feel, where a closed-loop tool (wrk,
//! `hey -q`) measures latency at whatever rate the server lets it reach.
//!
//! `cargo run --release -p canary --example fixed_rate -- URL RATE DURATION_S [CONNECTIONS] [WARMUP_S]`
//! (CONNECTIONS defaults to 32, WARMUP_S to 2; RATE in requests per second for
//! all connections together; the seconds may be fractions).
//!
//! How it measures. One schedule of send slots, RATE a second, starts once
//! every connection is open; connection i of C owns slots i, i + C, i + 2C, ...,
//! so each keep-alive connection sends `GET PATH` (with a `x-user-id: u1`
//! header, as `bench/instructions.sh`'s wrk) every C / RATE seconds and the
//! connections are staggered by 1 / RATE. A request's latency counts from its
//! *scheduled* slot, not from when it could be sent: when an answer is late, the
//! requests that should have followed on that connection go out as soon as it
//! is in, and each counts its wait for it. A closed-loop tool would instead not
//! send them and not measure them (coordinated omission). What is left out is
//! the generator's own delay: latency = the slot's wait for its connection's
//! previous answer + the time from this request's actual send to the end of its
//! response. (wrk2 counts from the slot outright, so a late timer in the
//! generator shows as server latency.) Slots of the first WARMUP_S seconds are
//! sent but not recorded; after the last slot each connection finishes its
//! backlog, for at most 5 s more (slots still unanswered then count as errors).
//! Latencies go into an HDR histogram in microseconds.
//!
//! The connections live on one thread (a current_thread runtime), which waits
//! in epoll like any client while requests are in flight, leaving the
//! machine's other core to the server under test. Tokio's timers tick in whole
//! milliseconds, too coarse for slots a fraction of a millisecond apart (they
//! would send each millisecond's requests in one burst, up to 2 ms late), so a
//! second, mostly sleeping thread paces the schedule: it releases each slot a
//! little before its time, the lead adapting so that half the sends leave
//! before their slot and half after, within tens of microseconds. Whether the
//! generator kept up is reported, not assumed: `achieved` (responses completed
//! per second of the measured window, against `rate`) and `gen_lag` (how long
//! after the later of its slot and its connection's previous answer a request
//! actually went out).
//!
//! Output: one line on stdout, `key=value` pairs (`rate achieved requests
//! errors non_2xx p50_us p90_us p99_us p999_us max_us mean_us svc_p50_us
//! svc_p99_us svc_p999_us gen_lag_p99_us gen_lag_max_us connections duration_s`;
//! `requests` are the recorded answers, `errors` the measured slots without
//! one, `non_2xx` the answers recorded but not 2xx, `svc_*` the latency from
//! the actual send, as a closed-loop tool would count it), and a readable
//! summary on stderr. With `FIXED_RATE_TIMELINE=PATH`
//! it also writes one line per 100 ms of the measured window (by slot time):
//! `t_s requests max_us over_1ms`, to see when the slow requests were scheduled.
//!
//! Only plain `http://` URLs; responses framed by Content-Length, chunked or
//! the connection's close are read in full.

use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

const USAGE: &str = "usage: fixed_rate URL RATE DURATION_S [CONNECTIONS] [WARMUP_S]";
/// The histograms' ceiling (latencies above it are recorded as it): 60 s.
const MAX_US: u64 = 60_000_000;
/// The pacer's first guess of how long before a slot to wake its connection
/// (a thread's sleep overshoots by tens of microseconds, waking the runtime adds
/// more); it adapts from there.
const FIRST_LEAD: Duration = Duration::from_micros(100);
/// How long after the last slot the backlog may take.
const GRACE: Duration = Duration::from_secs(5);
/// The timeline's resolution.
const BUCKET: Duration = Duration::from_millis(100);
/// Largest response head and body read.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 << 20;

/// What the command line asks for.
#[derive(Debug)]
struct Args {
    url: String,
    /// `host:port` to resolve.
    target: String,
    /// The `Host` header: the URL's authority.
    authority: String,
    path: String,
    rate: f64,
    duration: Duration,
    connections: usize,
    warmup: Duration,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    if !(3..=5).contains(&args.len()) {
        return Err(format!("expected 3 to 5 arguments, got {}\n{USAGE}", args.len()));
    }
    let url = args[0].clone();
    let bad_url = |why: &str| format!("bad URL '{url}': {why}");
    let uri: http::Uri = url.parse().map_err(|e| bad_url(&format!("{e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad_url("only http:// URLs are supported"));
    }
    let authority = uri.authority().ok_or_else(|| bad_url("no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad_url("user info is not supported"));
    }
    let port = authority.port_u16().unwrap_or(80);
    let target = format!("{}:{port}", authority.host());
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let path = if path.is_empty() { "/".to_string() } else { path };

    let rate = parse_seconds_like(&args[1], "RATE", "requests per second, a number above 0", false)?;
    if rate > 10_000_000.0 {
        return Err(format!("bad RATE '{}': at most 10000000 requests per second", args[1]));
    }
    let duration = parse_seconds_like(&args[2], "DURATION_S", "seconds, a number above 0", false)?;
    if duration > 86_400.0 {
        return Err(format!("bad DURATION_S '{}': at most 86400 seconds", args[2]));
    }
    let connections = match args.get(3) {
        None => 32,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => return Err(format!("bad CONNECTIONS '{s}': expected a whole number from 1 to 10000")),
        },
    };
    let warmup = match args.get(4) {
        None => 2.0,
        Some(s) => {
            let w = parse_seconds_like(s, "WARMUP_S", "seconds, a number of 0 or more", true)?;
            if w > 3600.0 {
                return Err(format!("bad WARMUP_S '{s}': at most 3600 seconds"));
            }
            w
        }
    };
    Ok(Args {
        url: url.clone(),
        target,
        authority: authority.as_str().to_string(),
        path,
        rate,
        duration: Duration::from_secs_f64(duration),
        connections,
        warmup: Duration::from_secs_f64(warmup),
    })
}

/// A finite number above 0 (or at least 0 if `zero_ok`).
fn parse_seconds_like(s: &str, name: &str, what: &str, zero_ok: bool) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)) => Ok(v),
        _ => Err(format!("bad {name} '{s}': expected {what}")),
    }
}

/// The schedule every connection follows.
struct Plan {
    t0: Instant,
    rate: f64,
    connections: u64,
    record_from: Instant,
    end: Instant,
    hard_end: Instant,
    request: Vec<u8>,
    addr: SocketAddr,
    /// Slots below this one are released: their connection may send them.
    released: AtomicU64,
    /// One per connection: woken when one of its slots is released.
    wake: Vec<Notify>,
    /// How long before its time the pacer releases a slot, in nanoseconds.
    lead_ns: AtomicI64,
}

impl Plan {
    /// When slot `n` is due.
    fn slot(&self, n: u64) -> Instant {
        self.t0 + Duration::from_secs_f64(n as f64 / self.rate)
    }
    fn measured(&self, at: Instant) -> bool {
        at >= self.record_from && at < self.end
    }

    /// The pacer thread: releases the slots in order, each a little before
    /// its time (`lead_ns`), sleeping in between; returns after the last one.
    fn pace(&self) {
        let mut n = 0;
        loop {
            let at = self.slot(n);
            if at >= self.end {
                // Every slot is released: connections still catching up need no more wake-ups.
                self.released.store(u64::MAX, Ordering::Release);
                return;
            }
            let lead = Duration::from_nanos(self.lead_ns.load(Ordering::Relaxed).max(0).unsigned_abs());
            let wake = at.checked_sub(lead).unwrap_or(at);
            let now = Instant::now();
            if wake > now {
                std::thread::sleep(wake - now);
            }
            self.released.store(n + 1, Ordering::Release);
            if let Some(w) = self.wake.get((n % self.connections) as usize) {
                w.notify_one();
            }
            n += 1;
        }
    }

    /// Waits (connection `i`) until the pacer releases slot `n`, due at `at`.
    async fn wait_slot(&self, i: usize, n: u64, at: Instant) {
        let mut slept = false;
        while self.released.load(Ordering::Acquire) <= n {
            let Some(w) = self.wake.get(i) else { break };
            // notify_one leaves a permit when nobody waits, so no wake-up is lost
            // between the check above and this wait; a stale permit costs one more turn.
            w.notified().await;
            slept = true;
        }
        if slept {
            // Tune the pacer's lead so that half the wake-ups come before
            // their slot and half after: sends then leave within tens of
            // microseconds of their slot either way, with no busy waiting.
            let step = if Instant::now() > at { 1_000 } else { -1_000 };
            let lead = self.lead_ns.fetch_add(step, Ordering::Relaxed) + step;
            if !(0..=2_000_000).contains(&lead) {
                self.lead_ns.store(lead.clamp(0, 2_000_000), Ordering::Relaxed);
            }
        }
    }
}

/// What one connection saw.
struct Tally {
    latency: Histogram<u64>,
    /// From the request's actual send to its response (what wrk would report).
    service: Histogram<u64>,
    gen_lag: Histogram<u64>,
    ok: u64,
    errors: u64,
    non_2xx: u64,
    unanswered: u64,
    /// Responses that ended inside the measured window, whatever their slot.
    done_in_window: u64,
    /// The next slot this connection owns.
    next: u64,
    /// Per timeline bucket: answers recorded, the slowest, how many over 1 ms.
    timeline: Vec<(u64, u64, u64)>,
    first_error: Option<String>,
}

impl Tally {
    fn new(first_slot: u64, buckets: usize) -> Result<Tally, String> {
        let hist = || Histogram::<u64>::new_with_bounds(1, MAX_US, 3).map_err(|e| format!("histogram: {e}"));
        Ok(Tally {
            latency: hist()?,
            service: hist()?,
            gen_lag: hist()?,
            ok: 0,
            errors: 0,
            non_2xx: 0,
            unanswered: 0,
            done_in_window: 0,
            next: first_slot,
            timeline: vec![(0, 0, 0); buckets],
            first_error: None,
        })
    }

    fn failed(&mut self, plan: &Plan, at: Instant, e: &io::Error) {
        if plan.measured(at) {
            self.errors += 1;
        }
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads more bytes into `buf`; `Ok(0)` at the end of the stream.
async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    s.read_buf(buf).await
}

async fn fill_some(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    match fill(s, buf).await? {
        0 => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before the response ended")),
        _ => Ok(()),
    }
}

/// How the body of a response is delimited.
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

/// Sends one request and reads its whole response: its status, and whether the
/// connection can carry another request.
async fn exchange(s: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> io::Result<(u16, bool)> {
    s.write_all(request).await?;
    buf.clear();
    let (status, head_len, framing, mut keep) = loop {
        let parsed = {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = resp.code.unwrap_or(0);
                    let mut keep = resp.version == Some(1);
                    let mut length = None;
                    let mut chunked = false;
                    for h in resp.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let v = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .ok_or_else(|| invalid("bad Content-Length"))?;
                            length = Some(v);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = h.value.to_ascii_lowercase().ends_with(b"chunked");
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            let v = h.value.to_ascii_lowercase();
                            if v.windows(5).any(|w| w == b"close") {
                                keep = false;
                            } else if v.windows(10).any(|w| w == b"keep-alive") {
                                keep = true;
                            }
                        }
                    }
                    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
                        Framing::None
                    } else if chunked {
                        Framing::Chunked
                    } else if let Some(n) = length {
                        Framing::Length(n)
                    } else {
                        Framing::UntilClose
                    };
                    Some((status, n, framing, keep))
                }
                Ok(httparse::Status::Partial) => None,
                Err(e) => return Err(invalid(format!("bad response head: {e}"))),
            }
        };
        match parsed {
            // An interim answer (100 Continue and the like): the final one follows.
            Some((status, n, _, _)) if (100..200).contains(&status) && status != 101 => {
                buf.drain(..n);
            }
            Some(p) => break p,
            None if buf.len() > MAX_HEAD => return Err(invalid("response head too large")),
            None => fill_some(s, buf).await?,
        }
    };
    let end = match framing {
        Framing::None => head_len,
        Framing::Length(n) => {
            if n > MAX_BODY {
                return Err(invalid(format!("body of {n} bytes is too large")));
            }
            while buf.len() < head_len + n {
                fill_some(s, buf).await?;
            }
            head_len + n
        }
        Framing::Chunked => read_chunked(s, buf, head_len).await?,
        Framing::UntilClose => {
            while fill(s, buf).await? > 0 {
                if buf.len() > head_len + MAX_BODY {
                    return Err(invalid("body too large"));
                }
            }
            keep = false;
            buf.len()
        }
    };
    if buf.len() > end {
        return Err(invalid("bytes after the response, before any request for them"));
    }
    Ok((status, keep))
}

/// Reads a chunked body that starts at `at`; returns where it ends.
async fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>, mut at: usize) -> io::Result<usize> {
    loop {
        if buf.len() > at + MAX_BODY {
            return Err(invalid("body too large"));
        }
        match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete((n, 0))) => {
                at += n;
                // Trailer lines, then an empty line.
                loop {
                    match buf[at..].windows(2).position(|w| w == b"\r\n") {
                        Some(0) => return Ok(at + 2),
                        Some(p) => at += p + 2,
                        None => fill_some(s, buf).await?,
                    }
                }
            }
            Ok(httparse::Status::Complete((n, size))) => {
                let size = usize::try_from(size).map_err(|_| invalid("chunk too large"))?;
                if size > MAX_BODY {
                    return Err(invalid("chunk too large"));
                }
                let chunk_end = at + n + size;
                while buf.len() < chunk_end + 2 {
                    fill_some(s, buf).await?;
                }
                if &buf[chunk_end..chunk_end + 2] != b"\r\n" {
                    return Err(invalid("chunk not followed by CRLF"));
                }
                at = chunk_end + 2;
            }
            Ok(httparse::Status::Partial) => fill_some(s, buf).await?,
            Err(_) => return Err(invalid("bad chunk size")),
        }
    }
}

/// One connection's share of the schedule, until its last slot is answered.
async fn drive(plan: &Plan, i: usize, t: &mut Tally, mut stream: Option<TcpStream>) {
    let mut buf = Vec::with_capacity(4096);
    let mut prev_done = plan.t0;
    loop {
        let at = plan.slot(t.next);
        if at >= plan.end {
            return;
        }
        plan.wait_slot(i, t.next, at).await;
        let start = Instant::now();
        // The slot could go at `ready`: at its time, or once the connection's
        // previous answer was in. What it waited for that answer counts in its
        // latency; what the generator took after `ready` does not (`gen_lag`).
        let ready = at.max(prev_done);
        let waited = ready - at;
        let lag = start.saturating_duration_since(ready);
        let s = match stream.as_mut() {
            Some(s) => s,
            None => match connect(plan.addr).await {
                Ok(s) => stream.insert(s),
                Err(e) => {
                    t.failed(plan, at, &e);
                    prev_done = Instant::now();
                    t.next += plan.connections;
                    continue;
                }
            },
        };
        let result = exchange(s, &plan.request, &mut buf).await;
        let done = Instant::now();
        prev_done = done;
        match result {
            Ok((status, keep)) => {
                if !keep {
                    stream = None;
                }
                if plan.measured(at) {
                    let latency = waited + done.duration_since(start);
                    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                    t.latency.saturating_record(us.max(1));
                    let service = u64::try_from(done.duration_since(start).as_micros()).unwrap_or(u64::MAX);
                    t.service.saturating_record(service.max(1));
                    t.gen_lag.saturating_record(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX).max(1));
                    t.ok += 1;
                    if !(200..300).contains(&status) {
                        t.non_2xx += 1;
                    }
                    let b = (at.duration_since(plan.record_from).as_nanos() / BUCKET.as_nanos()) as usize;
                    if let Some(slot) = t.timeline.get_mut(b) {
                        slot.0 += 1;
                        slot.1 = slot.1.max(us);
                        slot.2 += u64::from(us > 1000);
                    }
                }
            }
            Err(e) => {
                stream = None;
                t.failed(plan, at, &e);
            }
        }
        if done >= plan.record_from && done < plan.end {
            t.done_in_window += 1;
        }
        t.next += plan.connections;
    }
}

/// The whole run; returns the stdout line.
async fn run(args: &Args) -> Result<String, String> {
    let addr = tokio::net::lookup_host(&args.target)
        .await
        .map_err(|e| format!("cannot resolve '{}': {e}", args.target))?
        .next()
        .ok_or_else(|| format!("'{}' resolves to no address", args.target))?;
    let mut streams = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        streams
            .push(connect(addr).await.map_err(|e| format!("cannot connect to {addr} ({}): {e}", args.url))?);
    }
    let plan = Arc::new(plan(args, addr));
    let pacer = {
        let plan = Arc::clone(&plan);
        std::thread::Builder::new()
            .name("pacer".into())
            .spawn(move || plan.pace())
            .map_err(|e| format!("cannot start the pacer thread: {e}"))?
    };
    let buckets = (args.duration.as_nanos() / BUCKET.as_nanos()) as usize + 1;
    let mut tasks = Vec::with_capacity(args.connections);
    for (i, s) in streams.into_iter().enumerate() {
        let tally = Tally::new(i as u64, buckets)?;
        tasks.push(tokio::spawn(connection(Arc::clone(&plan), i, tally, s)));
    }
    // Every connection finishes before any tally is merged: merging on this
    // thread while others still wait for answers would delay their reading.
    let mut tallies = Vec::with_capacity(tasks.len());
    for task in tasks {
        tallies.push(task.await.map_err(|e| format!("a connection's task failed: {e}"))?);
    }
    let mut all = Tally::new(0, buckets)?;
    for t in tallies {
        all.merge(t)?;
    }
    // It has released every slot by now (the last one came before the connections finished).
    pacer.join().map_err(|_| "the pacer thread panicked".to_string())?;
    if let Ok(path) = std::env::var("FIXED_RATE_TIMELINE") {
        write_timeline(&path, &all, args.duration)?;
    }
    report(args, &all)
}

/// The schedule for `args`, starting a moment from now.
fn plan(args: &Args, addr: SocketAddr) -> Plan {
    let request = format!("GET {} HTTP/1.1\r\nHost: {}\r\nx-user-id: u1\r\n\r\n", args.path, args.authority)
        .into_bytes();
    let t0 = Instant::now() + Duration::from_millis(20);
    let record_from = t0 + args.warmup;
    let end = record_from + args.duration;
    Plan {
        t0,
        rate: args.rate,
        connections: args.connections as u64,
        record_from,
        end,
        hard_end: end + GRACE,
        request,
        addr,
        released: AtomicU64::new(0),
        wake: (0..args.connections).map(|_| Notify::new()).collect(),
        lead_ns: AtomicI64::new(FIRST_LEAD.as_nanos() as i64),
    }
}

/// Connection `i`'s slots until the end (or the hard deadline, after which
/// the measured slots it still owes count as unanswered errors).
async fn connection(plan: Arc<Plan>, i: usize, mut tally: Tally, s: TcpStream) -> Tally {
    let finished = tokio::time::timeout_at(plan.hard_end.into(), drive(&plan, i, &mut tally, Some(s))).await;
    if finished.is_err() {
        let mut n = tally.next;
        loop {
            let at = plan.slot(n);
            if at >= plan.end {
                break;
            }
            if plan.measured(at) {
                tally.errors += 1;
                tally.unanswered += 1;
            }
            n += plan.connections;
        }
    }
    tally
}

impl Tally {
    /// Adds another connection's counts to these.
    fn merge(&mut self, t: Tally) -> Result<(), String> {
        self.latency.add(&t.latency).map_err(|e| format!("histogram: {e}"))?;
        self.service.add(&t.service).map_err(|e| format!("histogram: {e}"))?;
        self.gen_lag.add(&t.gen_lag).map_err(|e| format!("histogram: {e}"))?;
        self.ok += t.ok;
        self.errors += t.errors;
        self.non_2xx += t.non_2xx;
        self.unanswered += t.unanswered;
        self.done_in_window += t.done_in_window;
        for (a, b) in self.timeline.iter_mut().zip(&t.timeline) {
            a.0 += b.0;
            a.1 = a.1.max(b.1);
            a.2 += b.2;
        }
        if self.first_error.is_none() {
            self.first_error = t.first_error;
        }
        Ok(())
    }
}

/// One line per 100 ms of the measured window: `t_s requests max_us over_1ms`.
fn write_timeline(path: &str, all: &Tally, duration: Duration) -> Result<(), String> {
    let mut out = String::from("t_s\trequests\tmax_us\tover_1ms\n");
    for (i, (n, max, over)) in all.timeline.iter().enumerate() {
        let t_s = (i as f64) * BUCKET.as_secs_f64();
        if t_s < duration.as_secs_f64() {
            let _ = writeln!(out, "{t_s:.1}\t{n}\t{max}\t{over}");
        }
    }
    std::fs::write(path, out).map_err(|e| format!("cannot write FIXED_RATE_TIMELINE '{path}': {e}"))
}

/// The stdout line, and a readable summary on stderr; an error when nothing
/// was answered at all.
fn report(args: &Args, all: &Tally) -> Result<String, String> {
    let secs = args.duration.as_secs_f64();
    let achieved = all.done_in_window as f64 / secs;
    let (l, g, sv) = (&all.latency, &all.gen_lag, &all.service);
    let q = |h: &Histogram<u64>, q: f64| if h.is_empty() { 0 } else { h.value_at_quantile(q) };
    let line = format!(
        "rate={} achieved={achieved:.1} requests={} errors={} non_2xx={} p50_us={} p90_us={} p99_us={} \
         p999_us={} max_us={} mean_us={:.1} svc_p50_us={} svc_p99_us={} svc_p999_us={} gen_lag_p99_us={} \
         gen_lag_max_us={} connections={} duration_s={}",
        args.rate,
        all.ok,
        all.errors,
        all.non_2xx,
        q(l, 0.5),
        q(l, 0.9),
        q(l, 0.99),
        q(l, 0.999),
        l.max(),
        if l.is_empty() { 0.0 } else { l.mean() },
        q(sv, 0.5),
        q(sv, 0.99),
        q(sv, 0.999),
        q(g, 0.99),
        g.max(),
        args.connections,
        secs,
    );
    eprintln!(
        "fixed_rate: {} at {} req/s over {} connections, {secs} s measured after {} s of warm-up: \
         achieved {achieved:.1} req/s; {} answers, {} errors ({} unanswered at the deadline), {} not 2xx; \
         latency from the scheduled send: p50 {} us, p90 {} us, p99 {} us, p99.9 {} us, max {} us; \
         from the actual send: p50 {} us, p99 {} us, p99.9 {} us; \
         the generator's own send lag: p99 {} us, max {} us",
        args.url,
        args.rate,
        args.connections,
        args.warmup.as_secs_f64(),
        all.ok,
        all.errors,
        all.unanswered,
        all.non_2xx,
        q(l, 0.5),
        q(l, 0.9),
        q(l, 0.99),
        q(l, 0.999),
        l.max(),
        q(sv, 0.5),
        q(sv, 0.99),
        q(sv, 0.999),
        q(g, 0.99),
        g.max(),
    );
    if let Some(e) = &all.first_error {
        eprintln!("fixed_rate: first error: {e}");
    }
    if achieved < args.rate * 0.99 {
        eprintln!("fixed_rate: warning: achieved {achieved:.1} req/s, under 99% of the {} asked", args.rate);
    }
    if all.ok == 0 {
        return Err(format!("no request was answered ({line})"));
    }
    Ok(line)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fixed_rate: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fixed_rate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fixed_rate: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_and_defaults() {
        let a = args(&["http://127.0.0.1:8080", "5000", "10"]).unwrap();
        assert_eq!(
            (a.target.as_str(), a.authority.as_str(), a.path.as_str()),
            ("127.0.0.1:8080", "127.0.0.1:8080", "/")
        );
        assert_eq!(
            (a.rate, a.duration, a.connections, a.warmup),
            (5000.0, Duration::from_secs(10), 32, Duration::from_secs(2))
        );
        let a = args(&["http://localhost/x?y=1", "2.5", "0.5", "4", "0"]).unwrap();
        assert_eq!((a.target.as_str(), a.path.as_str(), a.connections), ("localhost:80", "/x?y=1", 4));
        assert_eq!(a.warmup, Duration::ZERO);
    }

    #[test]
    fn names_the_bad_argument() {
        let cases: &[(&[&str], &str)] = &[
            (&["http://h:1"], "expected 3 to 5"),
            (&["https://h:1", "10", "1"], "bad URL"),
            (&["h:1", "10", "1"], "bad URL"),
            (&["http://h:1", "0", "1"], "bad RATE"),
            (&["http://h:1", "x", "1"], "bad RATE"),
            (&["http://h:1", "NaN", "1"], "bad RATE"),
            (&["http://h:1", "10", "-1"], "bad DURATION_S"),
            (&["http://h:1", "10", "1", "0"], "bad CONNECTIONS"),
            (&["http://h:1", "10", "1", "2.5"], "bad CONNECTIONS"),
            (&["http://h:1", "10", "1", "2", "-1"], "bad WARMUP_S"),
        ];
        for (v, want) in cases {
            let e = args(v).unwrap_err();
            assert!(e.contains(want), "{v:?}: {e}");
        }
    }

    #[test]
    fn slots_are_spread_evenly_over_connections() {
        let t0 = Instant::now();
        let plan = Plan {
            t0,
            rate: 1000.0,
            connections: 4,
            record_from: t0,
            end: t0 + Duration::from_secs(1),
            hard_end: t0 + Duration::from_secs(2),
            request: Vec::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            released: AtomicU64::new(0),
            wake: Vec::new(),
            lead_ns: AtomicI64::new(0),
        };
        // Connection 1 owns slots 1, 5, 9: 4 ms apart, 1 ms after connection 0's.
        assert_eq!(plan.slot(1) - t0, Duration::from_millis(1));
        assert_eq!(plan.slot(5) - plan.slot(1), Duration::from_millis(4));
    }

    #[tokio::test]
    async fn reads_length_chunked_and_close_framed_answers() {
        use tokio::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let answers: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1;x=y\r\n!\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close",
        ];
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            for a in answers {
                let mut req = [0u8; 256];
                let _ = s.read(&mut req).await.unwrap();
                // In two pieces, to exercise the partial reads.
                let (x, y) = a.split_at(a.len() / 2);
                s.write_all(x).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                s.write_all(y).await.unwrap();
            }
        });
        let mut s = connect(addr).await.unwrap();
        let mut buf = Vec::new();
        assert_eq!(exchange(&mut s, b"GET / HTTP/1.1\r\n\r\n", &mut buf).await.unwrap(), (200, true));
        assert_eq!(exchange(&mut s, b"GET / HTTP/1.1\r\n\r\n", &mut buf).await.unwrap(), (503, true));
        let write_then_read = exchange(&mut s, b"GET / HTTP/1.1\r\n\r\n", &mut buf);
        let (status, keep) = tokio::time::timeout(Duration::from_secs(5), async {
            let r = write_then_read.await;
            server.await.unwrap();
            r
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!((status, keep), (200, false));
    }

    #[tokio::test]
    async fn every_slot_of_the_window_is_answered_and_counted() {
        use tokio::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 1024];
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        got.extend_from_slice(&buf[..n]);
                        while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                            got.drain(..end + 4);
                            let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                            if s.write_all(ok).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        let a = args(&[&format!("http://{addr}/"), "1000", "0.5", "4", "0.1"]).unwrap();
        let line = run(&a).await.unwrap();
        let field = |k: &str| {
            line.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{k}="))).unwrap().to_string()
        };
        // Slots 100..599 fall in the measured half second: 500 of them.
        assert_eq!(field("requests"), "500", "{line}");
        assert_eq!(field("errors"), "0", "{line}");
        let achieved: f64 = field("achieved").parse().unwrap();
        assert!((800.0..=1200.0).contains(&achieved), "{line}");
    }
}

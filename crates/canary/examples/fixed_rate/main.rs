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

mod args;
mod plan;
mod tally;
mod wire;

use args::{Args, parse_args};
use plan::{Plan, plan};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tally::{BUCKET, Tally, report, write_timeline};
use tokio::net::TcpStream;
use wire::{connect, exchange};

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
    use args::tests::args;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
        // Answers completed per second of the window: about the rate. Wide
        // bounds, since a stall of the machine near the window's end moves
        // completions past it (the slots still count in `requests`).
        let achieved: f64 = field("achieved").parse().unwrap();
        assert!((500.0..=1200.0).contains(&achieved), "{line}");
    }
}

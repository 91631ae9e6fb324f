//! `canary logs`: recent requests from the admin API's request log, one line
//! each, oldest first, the word `ERROR` on each failure of a version, so the
//! runbook's `canary logs --since 30m | grep ERROR` works as written.
//! `--json` prints each record as one JSON object per line; `--follow`
//! keeps printing as requests come. What the answer could not include
//! (records dropped for room, past the limit, replicas that did not
//! answer) is said on stderr, so a pipe reads only records.

use super::args::LogsArgs;
use super::client::{Admin, answered, refused};
use super::sse::{self, Ended};
use crate::exit::{Exit, fail};
use canary_proxy::requests::{Found, Record};
use http::Method;
use std::io::Write;

/// `canary logs [--since D] [--version V] [--status S] ... [--follow] [--json]`
pub fn run(a: &LogsArgs) -> Exit {
    let admin = Admin::from(&a.admin);
    if a.follow {
        return follow(&admin, a);
    }
    let v = match answered("logs", admin.call(Method::GET, &format!("/api/v2/logs?{}", query(a)), None)) {
        Ok(v) => v,
        Err(exit) => return exit,
    };
    let found: Found = match serde_json::from_value(v.clone()) {
        Ok(f) => f,
        Err(e) => {
            return fail(Exit::Failed, "logs", format!("the admin API's answer is not a request log ({e})"));
        }
    };
    warn_missing(&v);
    if found.dropped.records > 0 {
        let newest = found.dropped.newest_ms.map_or("-".into(), time);
        eprintln!(
            "canary logs: {} older failures were dropped for room (the newest of them at {newest}); \
             raise [logs] max_records or max_bytes to keep more",
            found.dropped.records
        );
    }
    if found.truncated > 0 {
        eprintln!("canary logs: {} older records left out past --limit {}", found.truncated, a.limit);
    }
    let mut out = std::io::stdout().lock();
    for r in &found.records {
        if print(&mut out, r, a.json).is_err() {
            break;
        }
    }
    Exit::Done
}

/// Prints records as the server sends them, until it closes the stream or
/// stdout is closed (`| head`).
fn follow(admin: &Admin, a: &LogsArgs) -> Exit {
    let path = format!("/api/v2/logs?follow=true&{}", query(a));
    let mut out = std::io::stdout();
    let mut closed = false;
    let ended = sse::follow(admin, &path, |event, data| {
        if closed {
            return;
        }
        match event {
            "record" => match serde_json::from_str::<Record>(data) {
                Ok(r) => closed = print(&mut out, &r, a.json).is_err(),
                Err(e) => eprintln!("canary logs: a record not understood ({e}): {data}"),
            },
            "notice" => eprintln!("canary logs: records left out, more came at once than --limit: {data}"),
            _ => {}
        }
        if closed {
            // The reader is gone: nothing more can be shown.
            std::process::exit(0);
        }
    });
    match ended {
        Ended::Closed => Exit::Done,
        Ended::Refused(status, v) => refused("logs", status, &v),
        Ended::Broken(why) => fail(
            Exit::Failed,
            "logs",
            format!("the stream from {} broke off: {why} (is `canary serve` running?)", admin.url),
        ),
    }
}

/// The query string for the filters given.
fn query(a: &LogsArgs) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("limit", &a.limit.to_string());
    let pairs = [
        ("since", &a.since),
        ("version", &a.version),
        ("status", &a.status),
        ("route", &a.route),
        ("path", &a.path),
        ("user", &a.user),
        ("request_id", &a.request_id),
    ];
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    if a.errors {
        q.append_pair("errors", "true");
    }
    if a.node {
        q.append_pair("scope", "node");
    }
    q.finish()
}

fn warn_missing(v: &serde_json::Value) {
    let missing = v.pointer("/replicas/missing").and_then(|m| m.as_array()).filter(|m| !m.is_empty());
    if let Some(m) = missing {
        let names: Vec<&str> = m.iter().filter_map(|x| x.as_str()).collect();
        eprintln!("canary logs: no answer from replica(s) {}: their records are not shown", names.join(", "));
    }
}

fn print(out: &mut impl Write, r: &Record, json: bool) -> std::io::Result<()> {
    if json {
        let line = serde_json::to_string(r).map_err(std::io::Error::other)?;
        writeln!(out, "{line}")
    } else {
        writeln!(out, "{}", line(r))
    }
}

/// One record as a log line: time, level, version, method, path, status,
/// duration, then `key=value` fields, and the failure in words last.
pub fn line(r: &Record) -> String {
    let status = r.status.map_or("-".to_string(), |s| s.to_string());
    let ms = r.duration_us as f64 / 1000.0;
    let mut s = format!(
        "{} {:<5} {} {} {} {status} {ms:.1}ms route={} user={} request_id={} reason={}",
        time(r.time_ms),
        r.level(),
        r.version,
        r.method,
        r.path,
        r.route,
        r.user,
        r.request_id.as_deref().unwrap_or("-"),
        r.reason.as_str(),
    );
    if let Some(b) = r.bucket {
        s.push_str(&format!(" bucket={b}"));
    }
    s.push_str(if r.fallback { " fallback=yes" } else { " fallback=no" });
    if let Some(c) = r.cause {
        s.push_str(&format!(" cause={c} flags={}", c.flag()));
    }
    s.push_str(&format!(" protocol={} client={}", r.protocol.replace(' ', "_"), r.client));
    if let Some(rep) = &r.replica {
        s.push_str(&format!(" replica={rep}"));
    }
    if let Some(d) = &r.detail {
        s.push_str(&format!(" {d:?}"));
    }
    s
}

fn time(t: canary_core::time::UnixMs) -> String {
    t.to_timestamp().map_or_else(|| t.to_string(), |ts| format!("{ts:.3}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::Version;
    use canary_core::time::UnixMs;
    use canary_proxy::requests::{Cause, Reason};

    fn record() -> Record {
        Record {
            time_ms: UnixMs::from_millis(1_796_651_558_891),
            seq: 3,
            replica: None,
            version: Version::Canary,
            method: "GET".into(),
            path: "/api/v2/rooms/7".into(),
            route: "/api/v2/rooms/:id".into(),
            status: Some(500),
            duration_us: 12_345,
            user: "00000000000000ab".into(),
            request_id: Some("req-1".into()),
            reason: Reason::Bucket,
            bucket: Some(42),
            fallback: false,
            cause: Some(Cause::Upstream5xx),
            detail: Some("upstream answered with a server error".into()),
            protocol: "HTTP/1.1".into(),
            client: "10.0.0.7".into(),
        }
    }

    #[test]
    fn a_failure_reads_as_one_error_line_with_every_field() {
        let l = line(&record());
        assert!(l.starts_with("2026-12-07T"), "{l}");
        assert!(l.contains(" ERROR canary GET /api/v2/rooms/7 500 12.3ms route=/api/v2/rooms/:id"), "{l}");
        for field in [
            "user=00000000000000ab",
            "request_id=req-1",
            "reason=bucket bucket=42",
            "fallback=no",
            "cause=upstream_5xx flags=-",
            "client=10.0.0.7",
        ] {
            assert!(l.contains(field), "{field} in {l}");
        }
        assert!(l.ends_with("\"upstream answered with a server error\""), "{l}");
        assert!(!l.contains('\n'));
    }

    #[test]
    fn a_success_has_no_error_word() {
        let mut r = record();
        (r.status, r.cause, r.detail) = (Some(200), None, None);
        assert!(!line(&r).contains("ERROR"));
        assert!(line(&r).contains(" INFO  canary"));
    }
}

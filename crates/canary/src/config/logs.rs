//! The `[logs]` section: how much of the request log `canary logs` reads is
//! kept in memory (see `canary_proxy::requests`); and `[access_log]`, the
//! access log written to a file (see `canary_proxy::access_log`).
//!
//! ```toml
//! [logs]
//! keep = "30m"            # failures older than this go
//! max_records = 100000    # failures kept per replica
//! max_bytes = 67108864    # about 64 MB per replica
//! sample = 0.01           # the share of other requests kept
//!
//! [access_log]
//! path = "/var/log/canary/access.log"   # or "-" for stdout; no path: no access log
//! request_id = true       # give a request without x-request-id one (sent upstream too)
//! users = "hash"          # or "plain": the user key as sent
//! queue = 65536           # lines waiting to be written; past it they are dropped and counted
//!
//! [tracing]
//! otlp = "http://collector:4318"   # OTLP/HTTP (or https://); no collector: no span is exported
//! ca_file = "/etc/canary/collector-ca.pem"  # https: trust these CAs, not the system's
//! ratio = 0.1             # the share of requests without a sampled parent that are traced
//! make_traceparent = true # give a request without traceparent one (sent upstream)
//! service_name = "canary"
//! ```

use super::{ConfigError, Origin};
use canary_core::plan::parse_duration_ms;
use canary_proxy::access_log::Options;
use canary_proxy::requests::{Keep, Limits};
use canary_proxy::traces::Options as TraceOptions;
use serde::Deserialize;
use std::path::PathBuf;

/// The `[logs]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLogs {
    keep: Option<String>,
    max_records: Option<usize>,
    max_bytes: Option<usize>,
    sample: Option<f64>,
}

/// What the request log keeps.
pub(super) fn keep(f: &FileLogs, o: &Origin<'_>) -> Result<Keep, ConfigError> {
    let d = Keep::default();
    let age_ms = match &f.keep {
        None => d.failures.age_ms,
        Some(s) => parse_duration_ms(s).map_err(|e| o.err(false, "logs.keep", "", e.to_string()))?,
    };
    let sample = f.sample.unwrap_or(d.sample);
    if !(0.0..=1.0).contains(&sample) {
        let why = format!("{sample} is not a share: use 0 (keep no successful request) to 1 (keep all)");
        return Err(o.err(false, "logs.sample", "", why));
    }
    let failures = Limits {
        age_ms,
        records: f.max_records.unwrap_or(d.failures.records),
        bytes: f.max_bytes.unwrap_or(d.failures.bytes),
    };
    let zero = [
        ("logs.keep", age_ms == 0),
        ("logs.max_records", failures.records == 0),
        ("logs.max_bytes", failures.bytes == 0),
    ];
    if let Some((key, _)) = zero.iter().find(|(_, z)| *z) {
        return Err(o.err(false, key, "", "is 0: the request log would keep nothing; give a positive bound"));
    }
    Ok(Keep { failures, sample })
}

/// The `[access_log]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAccessLog {
    path: Option<String>,
    request_id: Option<bool>,
    users: Option<String>,
    queue: Option<usize>,
}

/// The access log's options; `None` without a path (none is written).
pub(super) fn access_log(f: &FileAccessLog, o: &Origin<'_>) -> Result<Option<Options>, ConfigError> {
    let Some(path) = f.path.as_deref() else {
        let given = f.request_id.is_some() || f.users.is_some() || f.queue.is_some();
        if given {
            let why = "set `path` (a file, or \"-\" for stdout): without it no access log is written";
            return Err(o.err(false, "access_log.path", "", why));
        }
        return Ok(None);
    };
    let path = match path {
        "-" => None,
        "" => return Err(o.err(false, "access_log.path", "", "is empty: name a file, or \"-\" for stdout")),
        p => Some(PathBuf::from(p)),
    };
    let plain_users = match f.users.as_deref() {
        None | Some("hash") => false,
        Some("plain") => true,
        Some(other) => {
            let why = format!(
                "`{other}`: expected \"hash\" (the user key's keyed hash) or \"plain\" (the key as sent)"
            );
            return Err(o.err(false, "access_log.users", "", why));
        }
    };
    let queue = f.queue.unwrap_or(65_536);
    if queue == 0 {
        return Err(o.err(false, "access_log.queue", "", "must be at least 1"));
    }
    Ok(Some(Options { path, queue, request_ids: f.request_id.unwrap_or(true), plain_users }))
}

/// The `[tracing]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTracing {
    otlp: Option<String>,
    ratio: Option<f64>,
    make_traceparent: Option<bool>,
    service_name: Option<String>,
    queue: Option<usize>,
    ca_file: Option<PathBuf>,
}

/// Tracing's options; `None` without a collector (no span is exported).
pub(super) fn tracing(f: &FileTracing, o: &Origin<'_>) -> Result<Option<TraceOptions>, ConfigError> {
    let Some(endpoint) = f.otlp.as_deref() else {
        let given = f.ratio.is_some()
            || f.make_traceparent.is_some()
            || f.service_name.is_some()
            || f.queue.is_some()
            || f.ca_file.is_some();
        if given {
            let why =
                "set `otlp` (the collector, e.g. \"http://collector:4318\"): without it no span is exported";
            return Err(o.err(false, "tracing.otlp", "", why));
        }
        return Ok(None);
    };
    let https = endpoint.starts_with("https://");
    if !https && !endpoint.starts_with("http://") {
        let why = format!(
            "`{endpoint}`: expected the collector's OTLP/HTTP URL, e.g. \"http://collector:4318\" or \"https://collector:4318\""
        );
        return Err(o.err(false, "tracing.otlp", "", why));
    }
    if let Some(ca) = f.ca_file.as_ref().filter(|_| !https) {
        let why = format!(
            "`{}` is for an https:// collector, and `{endpoint}` is plain HTTP: remove it or use https://",
            ca.display()
        );
        return Err(o.err(false, "tracing.ca_file", "", why));
    }
    let ratio = f.ratio.unwrap_or(0.1);
    if !(0.0..=1.0).contains(&ratio) {
        let why =
            format!("{ratio} is not a share: use 0 (trace only requests whose parent is sampled) to 1 (all)");
        return Err(o.err(false, "tracing.ratio", "", why));
    }
    Ok(Some(TraceOptions {
        endpoint: endpoint.to_string(),
        ca_file: f.ca_file.clone(),
        ratio,
        make: f.make_traceparent.unwrap_or(true),
        service: f.service_name.clone().unwrap_or_else(|| "canary".into()),
        queue: match f.queue {
            Some(0) => return Err(o.err(false, "tracing.queue", "", "must be at least 1")),
            q => q.unwrap_or(65_536),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<Option<TraceOptions>, ConfigError> {
        let f: FileTracing = toml::from_str(toml).unwrap();
        tracing(&f, &Origin { file: None })
    }

    #[test]
    fn a_collector_is_an_http_url_and_the_ratio_a_share() {
        let t = parse("otlp = \"http://c:4318\"").unwrap().unwrap();
        assert_eq!((t.ratio, t.make, t.service.as_str()), (0.1, true, "canary"));
        assert!(parse("").unwrap().is_none());
        let t = parse("otlp = \"https://c:4318\"\nca_file = \"/x.pem\"").unwrap().unwrap();
        assert_eq!(t.ca_file.as_deref(), Some(std::path::Path::new("/x.pem")));
        for (bad, says) in [
            ("otlp = \"http://c:4318\"\nca_file = \"/x.pem\"", "for an https:// collector"),
            ("otlp = \"c:4318\"", "OTLP/HTTP URL"),
            ("otlp = \"http://c\"\nratio = 2.0", "not a share"),
            ("ratio = 0.5", "set `otlp`"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.reason.contains(says), "{bad}: {}", e.reason);
        }
    }
}

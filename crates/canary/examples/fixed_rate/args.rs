//! The command line: what to load, how fast, for how long, on how many
//! connections; every bad argument is refused by name.

use std::time::Duration;

const USAGE: &str = "usage: fixed_rate URL RATE DURATION_S [CONNECTIONS] [WARMUP_S]";

/// What the command line asks for.
#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) url: String,
    /// `host:port` to resolve.
    pub(crate) target: String,
    /// The `Host` header: the URL's authority.
    pub(crate) authority: String,
    pub(crate) path: String,
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    pub(crate) connections: usize,
    pub(crate) warmup: Duration,
}

pub(crate) fn parse_args(args: &[String]) -> Result<Args, String> {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn args(v: &[&str]) -> Result<Args, String> {
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
}

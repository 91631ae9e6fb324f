//! The `[shadow]` section: what a shadow step copies to the canary and how
//! the answers are compared (see `canary_proxy::shadow`). Every key has a
//! default; the section is needed only to change one.
//!
//! ```toml
//! [shadow]
//! allow = ["POST /api/v2/search"]   # methods besides GET, HEAD, OPTIONS, per path
//! max_body = 65536          # larger request bodies are not copied
//! max_compare = 1048576     # larger answers (either side) are not compared
//! sample = 1.0              # the share of eligible requests copied
//! max_rate = 500            # copies a second, at most
//! noise_sample = 0.25       # the share of safe copies also sent to stable again
//! header = "x-canary-shadow"
//! headers = ["content-type", "content-encoding", "location", "cache-control"]
//! ignore = ["$.meta.generated_at", "/api/v2/rooms $.rooms[*].updated"]
//! redact = ["email"]        # values never shown in examples, besides tokens and passwords
//! concurrency = 64          # copies in flight
//! max_memory = 67108864     # bytes of copies and answers held
//! max_diff_rate = 0.01      # a route fails when surely more answers differ beyond noise
//! min_compared = 50         # comparisons a route needs to be judged
//! noisy_share = 0.02        # a field stable itself changes more often is noise
//! min_noise_samples = 10    # pairs of stable's answers before value changes count
//! ```

use super::{ConfigError, Origin};
use canary_core::exclude::Excludes;
use canary_core::shadow::verdict::ShadowPolicy;
use canary_proxy::shadow::Options;
use http::{HeaderName, Method};
use serde::Deserialize;

/// The `[shadow]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileShadow {
    allow: Option<Vec<String>>,
    max_body: Option<usize>,
    max_compare: Option<usize>,
    sample: Option<f64>,
    max_rate: Option<u32>,
    noise_sample: Option<f64>,
    header: Option<String>,
    headers: Option<Vec<String>>,
    ignore: Option<Vec<String>>,
    redact: Option<Vec<String>>,
    concurrency: Option<usize>,
    max_memory: Option<usize>,
    max_diff_rate: Option<f64>,
    min_compared: Option<u64>,
    noisy_share: Option<f64>,
    min_noise_samples: Option<u64>,
}

/// The shadow options, defaults filled in.
pub(super) fn shadow(
    f: &FileShadow,
    o: &Origin<'_>,
    timeout: std::time::Duration,
) -> Result<Options, ConfigError> {
    let d = Options::default();
    let err = |key: &str, why: String| o.err(false, &format!("shadow.{key}"), "", why);
    for (key, v) in [("sample", f.sample), ("noise_sample", f.noise_sample)] {
        if let Some(v) = v.filter(|v| !(0.0..=1.0).contains(v)) {
            return Err(err(key, format!("{v} is not a share: use 0 to 1")));
        }
    }
    let positive = [
        ("max_body", f.max_body.map(|v| v as u64)),
        ("max_compare", f.max_compare.map(|v| v as u64)),
        ("max_rate", f.max_rate.map(u64::from)),
        ("concurrency", f.concurrency.map(|v| v as u64)),
        ("max_memory", f.max_memory.map(|v| v as u64)),
    ];
    if let Some((key, _)) = positive.iter().find(|(_, v)| *v == Some(0)) {
        return Err(err(key, "is 0: give a positive number".into()));
    }
    let header = match &f.header {
        None => d.header.clone(),
        Some(h) => HeaderName::try_from(h.as_str())
            .map_err(|_| err("header", format!("`{h}` is not a header name (letters, digits and dashes)")))?,
    };
    let mut compare = d.compare.clone();
    if let Some(hs) = &f.headers {
        compare.headers = hs.iter().map(|h| h.to_ascii_lowercase()).collect();
    }
    Ok(Options {
        allow: f
            .allow
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|a| allow(a).map_err(|e| err("allow", e)))
            .collect::<Result<_, _>>()?,
        max_body: f.max_body.unwrap_or(d.max_body),
        max_compare: f.max_compare.unwrap_or(d.max_compare),
        sample: f.sample.unwrap_or(d.sample),
        max_rate: f.max_rate.unwrap_or(d.max_rate),
        noise_sample: f.noise_sample.unwrap_or(d.noise_sample),
        header,
        compare,
        ignore: f
            .ignore
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|r| ignore(r).map_err(|e| err("ignore", e)))
            .collect::<Result<_, _>>()?,
        redact: f.redact.clone().unwrap_or_default(),
        max_memory: f.max_memory.unwrap_or(d.max_memory),
        concurrency: f.concurrency.unwrap_or(d.concurrency),
        timeout,
    })
}

/// The shadow step's judging keys (the error rate and alpha are the
/// rollout policy's).
pub(super) fn policy(f: &FileShadow, o: &Origin<'_>) -> Result<ShadowPolicy, ConfigError> {
    let d = ShadowPolicy::default();
    for (key, v) in [("max_diff_rate", f.max_diff_rate), ("noisy_share", f.noisy_share)] {
        if let Some(v) = v.filter(|v| !(0.0..1.0).contains(v)) {
            return Err(o.err(
                false,
                &format!("shadow.{key}"),
                "",
                format!("{v} is not a share: use 0 to 1, e.g. 0.01"),
            ));
        }
    }
    Ok(ShadowPolicy {
        max_diff_rate: f.max_diff_rate.unwrap_or(d.max_diff_rate),
        min_compared: f.min_compared.unwrap_or(d.min_compared).max(1),
        noisy_share: f.noisy_share.unwrap_or(d.noisy_share),
        min_noise_samples: f.min_noise_samples.unwrap_or(d.min_noise_samples),
        ..d
    })
}

/// `"POST /api/v2/search"`: a method and a path pattern (globs as in excludes).
fn allow(rule: &str) -> Result<(Method, Excludes), String> {
    let (m, path) = rule
        .split_once(' ')
        .ok_or_else(|| format!("`{rule}`: write a method and a path, such as \"POST /api/v2/search\""))?;
    let method =
        Method::from_bytes(m.trim().as_bytes()).map_err(|_| format!("`{rule}`: `{m}` is not a method"))?;
    let paths = Excludes::new(&[path.trim()]).map_err(|e| format!("`{rule}`: {e}"))?;
    Ok((method, paths))
}

/// `"$.meta.at"` (every route), `"/api/v2/rooms $.rooms[*].updated"` (one
/// route), or a header (`"header:etag"`) or the whole body (`"body"`).
fn ignore(rule: &str) -> Result<(Option<String>, String), String> {
    let place = |p: &str| p.starts_with('$') || p.starts_with("header:") || p == "body" || p == "status";
    match rule.trim().split_once(' ') {
        None if place(rule.trim()) => Ok((None, rule.trim().to_string())),
        Some((route, field)) if place(field.trim()) => {
            Ok((Some(route.to_string()), field.trim().to_string()))
        }
        _ => Err(format!(
            "`{rule}`: write a place (`$.field`, `header:name`, `body`), optionally after a route: \"/api/v2/rooms $.rooms[*].updated\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<Options, ConfigError> {
        let f: FileShadow = toml::from_str(toml).unwrap();
        shadow(
            &f,
            &Origin { file: Some(std::path::Path::new("canary.toml")) },
            std::time::Duration::from_secs(3),
        )
    }

    #[test]
    fn defaults_and_rules_are_read_and_bad_ones_named() {
        let o = parse("").unwrap();
        assert_eq!((o.sample, o.max_rate, o.max_body), (1.0, 500, 64 << 10));
        let o = parse("allow = [\"POST /api/v2/search\"]\nignore = [\"$.at\", \"/a $.b[*].c\"]").unwrap();
        assert!(o.copies(&Method::POST, "/api/v2/search") && !o.copies(&Method::POST, "/api/v2/other"));
        assert!(o.copies(&Method::GET, "/anything"));
        assert_eq!(o.ignored_on("/a"), vec!["$.at".to_string(), "$.b[*].c".to_string()]);
        assert_eq!(o.ignored_on("/z"), vec!["$.at".to_string()]);
        for (bad, key, says) in [
            ("sample = 2.0", "shadow.sample", "not a share"),
            ("allow = [\"POST\"]", "shadow.allow", "a method and a path"),
            ("ignore = [\"/a b\"]", "shadow.ignore", "write a place"),
            ("max_rate = 0", "shadow.max_rate", "is 0"),
            ("header = \"bad header\"", "shadow.header", "not a header name"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.key == key && e.reason.contains(says), "{bad}: {} {}", e.key, e.reason);
        }
    }
}

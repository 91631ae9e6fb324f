//! The `[analysis]` section: a team's own checks beside the built-in judge.
//! `[[analysis.prometheus]]` entries are PromQL queries against a Prometheus
//! server held to a `max` or `min`; `[[analysis.webhook]]` entries are URLs
//! whose 2xx answer passes (Flagger's gate). Validated whole at start.

use canary_core::plan::parse_duration_ms;
use serde::Deserialize;
use std::time::Duration;

/// The section as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// PromQL checks.
    #[serde(default)]
    pub prometheus: Vec<PrometheusConfig>,
    /// Webhook gates.
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
}

/// One `[[analysis.prometheus]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Its line in the verdict table.
    pub name: String,
    /// The Prometheus server, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// PromQL; `{{version}}` and `{{rollout}}` are replaced.
    pub query: String,
    /// Fail above this.
    pub max: Option<f64>,
    /// Fail below this.
    pub min: Option<f64>,
    /// How often it runs, e.g. `30s` (default 30s).
    pub interval: Option<String>,
}

/// One `[[analysis.webhook]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Its line in the verdict table.
    pub name: String,
    /// Where the rollout's state is POSTed.
    pub url: String,
    /// How long an answer may take (default 5s).
    pub timeout: Option<String>,
    /// How often it is asked (default 10s).
    pub interval: Option<String>,
}

/// What a check asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A PromQL query, held to a bound.
    Prometheus {
        /// The server's base URL.
        url: String,
        /// The query with its placeholders.
        query: String,
        /// The bound.
        bound: Bound,
    },
    /// A URL that must answer 2xx.
    Webhook {
        /// Where to POST.
        url: String,
        /// How long an answer may take.
        timeout: Duration,
    },
}

/// The side a value must stay on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// At most this.
    Max(f64),
    /// At least this.
    Min(f64),
}

/// One validated check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Its name, unique.
    pub name: String,
    /// What it asks.
    pub source: Source,
    /// How often.
    pub interval: Duration,
}

impl AnalysisConfig {
    /// Validates every entry; the error names the entry and the key.
    pub fn build(&self) -> Result<Vec<Check>, String> {
        let mut out = Vec::new();
        for (i, p) in self.prometheus.iter().enumerate() {
            out.push(p.build(i)?);
        }
        for (i, w) in self.webhook.iter().enumerate() {
            out.push(w.build(i)?);
        }
        for (i, c) in out.iter().enumerate() {
            if out[..i].iter().any(|o| o.name == c.name) {
                return Err(format!("analysis: two checks are named `{}`; give each its own name", c.name));
            }
        }
        Ok(out)
    }
}

impl PrometheusConfig {
    fn build(&self, i: usize) -> Result<Check, String> {
        let at = format!("analysis.prometheus[{i}] ({})", self.name);
        let bound = match (self.max, self.min) {
            (Some(m), None) => Bound::Max(m),
            (None, Some(m)) => Bound::Min(m),
            _ => return Err(format!("{at}: give exactly one of `max` or `min`")),
        };
        if self.query.trim().is_empty() {
            return Err(format!("{at}.query: empty; write the PromQL to run"));
        }
        Ok(Check {
            name: name(&self.name, &at)?,
            source: Source::Prometheus { url: http_url(&self.url, &at)?, query: self.query.clone(), bound },
            interval: duration(self.interval.as_deref(), "30s", &at, "interval")?,
        })
    }
}

impl WebhookConfig {
    fn build(&self, i: usize) -> Result<Check, String> {
        let at = format!("analysis.webhook[{i}] ({})", self.name);
        Ok(Check {
            name: name(&self.name, &at)?,
            source: Source::Webhook {
                url: http_url(&self.url, &at)?,
                timeout: duration(self.timeout.as_deref(), "5s", &at, "timeout")?,
            },
            interval: duration(self.interval.as_deref(), "10s", &at, "interval")?,
        })
    }
}

fn name(n: &str, at: &str) -> Result<String, String> {
    let n = n.trim();
    if n.is_empty() || n.len() > 64 {
        return Err(format!("{at}.name: give a short name (1 to 64 characters) for the verdict table"));
    }
    Ok(n.to_string())
}

fn http_url(u: &str, at: &str) -> Result<String, String> {
    let parsed: http::Uri = u.parse().map_err(|e| format!("{at}.url `{u}`: {e}"))?;
    if parsed.scheme_str() != Some("http") || parsed.host().is_none() {
        return Err(format!("{at}.url `{u}`: expected http://host:port[/path]"));
    }
    Ok(u.trim_end_matches('/').to_string())
}

fn duration(v: Option<&str>, default: &str, at: &str, key: &str) -> Result<Duration, String> {
    let ms = parse_duration_ms(v.unwrap_or(default)).map_err(|e| format!("{at}.{key}: {e}"))?;
    if ms < 100 {
        return Err(format!("{at}.{key}: at least 100ms"));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Vec<Check>, String> {
        toml::from_str::<AnalysisConfig>(toml_text).map_err(|e| e.to_string())?.build()
    }

    #[test]
    fn valid_entries_and_clear_refusals() {
        let ok = parse(
            "[[prometheus]]\nname = \"p99\"\nurl = \"http://127.0.0.1:9090\"\nquery = \"up\"\nmax = 1.5\n\
             [[webhook]]\nname = \"qa\"\nurl = \"http://127.0.0.1:1/gate\"\n",
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].interval, Duration::from_secs(30));
        let both =
            parse("[[prometheus]]\nname = \"x\"\nurl = \"http://h:1\"\nquery = \"up\"\nmax = 1\nmin = 0\n");
        assert!(both.unwrap_err().contains("exactly one of `max` or `min`"));
        let bad = parse("[[webhook]]\nname = \"x\"\nurl = \"ftp://h\"\n");
        assert!(bad.unwrap_err().contains("analysis.webhook[0] (x).url"));
        let dup = parse(
            "[[webhook]]\nname = \"x\"\nurl = \"http://h:1\"\n[[webhook]]\nname = \"x\"\nurl = \"http://h:2\"\n",
        );
        assert!(dup.unwrap_err().contains("two checks are named `x`"));
    }
}

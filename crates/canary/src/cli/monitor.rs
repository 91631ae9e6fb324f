//! `canary monitor [<url>] <minutes>` (S9): watches metrics for that long and
//! judges them with the controller's thresholds (S12/S13), then prints a
//! go/no-go table. With a URL it polls `<url>/api/v2/metrics` (S10); without,
//! the running canary's own per-version figures from its admin API (the
//! canary's, against stable's). The thresholds are `--config`'s `[policy]`,
//! else the running server's in force (without a URL), else the seed's; it
//! says which. Exit 0 go, 1 no-go, 2 could not measure.
//! Ctrl-C ends early with the summary so far.

use super::client::fetch;
use super::policy::{self, Chosen};
use super::{AdminArgs, MonitorArgs};
use crate::controller::api::Thresholds;
use crate::exit::{Exit, fail};
use canary_core::judge::{Figures, Outcome, Policy, Resources, Verdict, judge_figures};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to watch.
#[derive(Debug, Clone)]
pub struct Target {
    /// The metrics URL.
    pub url: String,
    /// Where the figures sit in the document: `""` or `/versions/canary`.
    pub pointer: String,
    /// The CA file an https URL is verified with (`--ca-file`).
    pub ca_file: Option<PathBuf>,
}

/// `canary monitor [URL] MINUTES`: checks the arguments, watches, judges.
pub fn command(a: &MonitorArgs) -> Exit {
    let (target, minutes) = match a.args.as_slice() {
        [minutes] => (own_figures(&a.admin), minutes),
        [url, minutes] => (service(url, &a.admin), minutes),
        _ => {
            let why = format!("expected `[URL] MINUTES`, got {} arguments", a.args.len());
            return fail(Exit::BadInput, "monitor", why);
        }
    };
    let minutes = match parse_minutes(minutes) {
        Ok(m) => m,
        Err(why) => return fail(Exit::BadInput, "monitor", why),
    };
    if !(a.interval > 0.0 && a.interval <= 3600.0) {
        let why = format!("--interval {}: give seconds above 0, at most 3600", a.interval);
        return fail(Exit::BadInput, "monitor", why);
    }
    if let Err(e) = super::tls::client(&target.url, target.ca_file.as_deref()) {
        return fail(Exit::BadInput, "monitor", e);
    }
    let chosen = match policy::choose(a.config.as_deref(), a.args.len() == 1, &a.admin) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    if !a.json {
        crate::say!("judging by {}: {}", chosen.from, policy::describe(&chosen.policy));
    }
    run(&target, &chosen, minutes, Duration::from_secs_f64(a.interval), a.json)
}

fn parse_minutes(text: &str) -> Result<f64, String> {
    let Ok(minutes) = text.parse::<f64>() else {
        return Err(format!("minutes `{text}` is not a number (e.g. 10 or 0.5)"));
    };
    if !(minutes > 0.0 && minutes <= 24.0 * 60.0) {
        return Err(format!(
            "minutes `{text}`: give a duration from 0 to 1440 minutes (decimals allowed, e.g. 0.5)"
        ));
    }
    Ok(minutes)
}

/// The running canary's own figures for its canary, from its admin API.
fn own_figures(admin: &AdminArgs) -> Target {
    Target {
        url: format!("{}/api/v2/metrics?window=1m", admin.admin.trim_end_matches('/')),
        pointer: "/versions/canary".into(),
        ca_file: admin.ca_file.clone(),
    }
}

/// A service's own `/api/v2/metrics` (S10).
fn service(url: &str, admin: &AdminArgs) -> Target {
    Target {
        url: format!("{}/api/v2/metrics", url.trim_end_matches('/')),
        pointer: String::new(),
        ca_file: admin.ca_file.clone(),
    }
}

fn run(target: &Target, chosen: &Chosen, minutes: f64, interval: Duration, json: bool) -> Exit {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(Exit::CannotTell, "monitor", e),
    };
    let total = Duration::from_secs_f64(minutes * 60.0);
    let samples = rt.block_on(watch(target, &chosen.policy, total, interval, json));
    summary(&samples, chosen, json)
}

async fn watch(
    t: &Target,
    policy: &Policy,
    total: Duration,
    interval: Duration,
    json: bool,
) -> Vec<Result<Verdict, String>> {
    let start = Instant::now();
    let mut out = Vec::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let sample = fetch(&t.url, Duration::from_secs(5), t.ca_file.as_deref())
            .await
            .and_then(|f| figures(&f.json?, &t.pointer));
        let verdict = sample.map(|f| judge_figures(policy, &f));
        if !json {
            print_line(start.elapsed(), total, &verdict);
        }
        out.push(verdict);
        if start.elapsed() + interval > total {
            return out;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = &mut ctrl_c => {
                eprintln!("interrupted: summary of what was seen so far");
                return out;
            }
        }
    }
}

fn figures(doc: &Value, pointer: &str) -> Result<Figures, String> {
    let v = doc
        .pointer(pointer)
        .filter(|v| v.is_object())
        .ok_or_else(|| format!("no metrics at `{pointer}` in the answer"))?;
    let num = |p: &str| v.pointer(p).and_then(Value::as_f64);
    if v.get("performance").is_none() || v.get("reliability").is_none() {
        return Err("the answer lacks `performance` and `reliability` (the /api/v2/metrics shape)".into());
    }
    Ok(Figures {
        error_rate: num("/reliability/error_rate"),
        p95_ms: num("/performance/p95_response_time"),
        resources: Resources {
            memory: num("/resources/memory_percent"),
            cpu: num("/resources/cpu_percent"),
            db_connections: num("/capacity/database_connections"),
        },
    })
}

fn print_line(elapsed: Duration, total: Duration, v: &Result<Verdict, String>) {
    let pct = (elapsed.as_secs_f64() / total.as_secs_f64() * 100.0).min(100.0);
    let bar: String = (0..20).map(|i| if (i as f64) < pct / 5.0 { '#' } else { '.' }).collect();
    let what = match v {
        Ok(v) => v
            .criteria
            .iter()
            .filter(|c| c.value.is_some())
            .map(|c| format!("{} {:.2}", c.name, c.value.unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("  "),
        Err(e) => format!("could not measure: {e}"),
    };
    crate::say!("[{bar}] {:>5.0}s  {what}", elapsed.as_secs_f64());
}

fn summary(samples: &[Result<Verdict, String>], chosen: &Chosen, json: bool) -> Exit {
    let verdicts: Vec<&Verdict> = samples.iter().filter_map(|s| s.as_ref().ok()).collect();
    let failed = verdicts.iter().any(|v| v.outcome == Outcome::Fail);
    let measured = verdicts.iter().any(|v| v.outcome != Outcome::Inconclusive);
    let (word, exit) = match (measured, failed) {
        (_, true) => ("no-go", Exit::No),
        (true, false) => ("go", Exit::Done),
        (false, false) => ("could not measure", Exit::CannotTell),
    };
    let worst = worst_lines(&verdicts);
    if json {
        let errors: Vec<&String> = samples.iter().filter_map(|s| s.as_ref().err()).collect();
        crate::say!(
            "{}",
            serde_json::json!({"decision": word, "samples": samples.len(), "failed_samples": errors.len(), "errors": errors, "criteria": worst, "thresholds": Thresholds::of(&chosen.policy), "thresholds_from": chosen.from})
        );
    } else {
        crate::say!("\n{:<24} {:>10} {:>10}  result", "criterion", "worst", "threshold");
        for c in &worst {
            let v = c.value.map_or("-".to_string(), |x| format!("{x:.2}"));
            crate::say!("{:<24} {:>10} {:>10.2}  {:?}", c.name, v, c.threshold, c.outcome);
        }
        crate::say!("decision: {word} ({} samples)", samples.len());
    }
    if exit != Exit::Done {
        // The table says which criterion; stderr says why the exit is not 0.
        eprintln!("canary monitor: {word}");
    }
    exit
}

/// Per criterion, the worst line seen: a failure over a pass, a higher value over a lower.
fn worst_lines(verdicts: &[&Verdict]) -> Vec<canary_core::judge::Criterion> {
    let mut out: Vec<canary_core::judge::Criterion> = Vec::new();
    for c in verdicts.iter().flat_map(|v| &v.criteria) {
        match out.iter_mut().find(|o| o.name == c.name) {
            None => out.push(c.clone()),
            Some(o) => {
                let rank = |x: &canary_core::judge::Criterion| {
                    (x.outcome == Outcome::Fail, x.value.unwrap_or(f64::MIN))
                };
                if rank(c) > rank(o) {
                    *o = c.clone();
                }
            }
        }
    }
    out
}

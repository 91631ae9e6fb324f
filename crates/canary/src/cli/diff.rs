//! `canary diff [--route R] [--json]`: what the shadow step's copies
//! found, from the admin API (`/api/v2/shadow`): per route its verdict,
//! each field the canary answers differently (with how often, and how
//! often stable itself does: noise), and an example pair; then the
//! requests not copied, by reason.

use super::args::DiffArgs;
use super::client::{Admin, answered};
use crate::exit::Exit;
use http::Method;
use serde_json::Value;
use std::fmt::Write;

/// Runs the command.
pub fn run(a: &DiffArgs) -> Exit {
    let path = match &a.route {
        Some(r) => format!(
            "/api/v2/shadow?{}",
            form_urlencoded::Serializer::new(String::new()).append_pair("route", r).finish()
        ),
        None => "/api/v2/shadow".to_string(),
    };
    let v = match answered("diff", Admin::from(&a.admin).call(Method::GET, &path, None)) {
        Ok(v) => v,
        Err(exit) => return exit,
    };
    if a.json {
        println!("{v}");
    } else {
        print!("{}", text(&v));
    }
    Exit::Done
}

/// The answer as a person reads it.
pub fn text(v: &Value) -> String {
    let mut out = String::new();
    let on = if v["shadowing"] == true { "on" } else { "off" };
    let _ = writeln!(out, "shadow step: {on}");
    let routes = v["routes"].as_array().map(Vec::as_slice).unwrap_or_default();
    if routes.is_empty() {
        out.push_str("no copy compared yet\n");
    }
    for r in routes {
        route(&mut out, r);
    }
    let skipped: Vec<String> = v["skipped"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
        .map(|(why, n)| format!("{why} {n}"))
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "not copied or not compared: {}", skipped.join(", "));
    }
    out
}

fn route(out: &mut String, r: &Value) {
    let outcome = r["outcome"].as_str().unwrap_or("?").to_uppercase();
    let _ = writeln!(
        out,
        "\n{}  {}  {}",
        r["route"].as_str().unwrap_or("?"),
        outcome,
        r["note"].as_str().unwrap_or("")
    );
    let l = &r["latency_ms"];
    let _ = writeln!(
        out,
        "  copies {}, canary errors {}, stable pairs {}, canary latency p50 {} ms p95 {} ms p99 {} ms",
        r["copies"], r["copy_errors"], r["noise_samples"], l["p50"], l["p95"], l["p99"]
    );
    let fields = r["fields"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !fields.is_empty() {
        let _ = writeln!(out, "  {:<40} {:<8} {:>8} {:>7}", "difference", "how", "count", "noise");
    }
    for f in fields {
        let noise = f["noise"].as_f64().map_or("-".to_string(), |n| format!("{:.0}%", 100.0 * n));
        let tag = if f["noisy"] == true { "  (noise, not counted)" } else { "" };
        let (at, kind) = (f["at"].as_str().unwrap_or("?"), f["kind"].as_str().unwrap_or("?"));
        let count = f["count"].as_u64().unwrap_or(0);
        let _ = writeln!(out, "  {at:<40} {kind:<8} {count:>8} {noise:>7}{tag}");
    }
    for ex in r["examples"].as_array().into_iter().flatten().filter(|e| !noisy(r, e)).take(3) {
        let Some(pair) = ex["pairs"].get(0) else { continue };
        let query = pair["query"].as_str().map(|q| format!("?{q}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  example ({} {}): {} {}{query}",
            ex["at"].as_str().unwrap_or(""),
            ex["kind"].as_str().unwrap_or(""),
            pair["method"].as_str().unwrap_or(""),
            pair["path"].as_str().unwrap_or("")
        );
        for side in ["stable", "canary"] {
            let _ = writeln!(
                out,
                "    {side} {} {}",
                pair[side]["status"],
                pair[side]["body"].as_str().unwrap_or("")
            );
        }
    }
}

/// Whether an example's difference is noise on its route.
fn noisy(r: &Value, ex: &Value) -> bool {
    r["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["at"] == ex["at"] && f["kind"] == ex["kind"] && f["noisy"] == true)
}

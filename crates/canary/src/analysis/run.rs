//! Running the checks: one task per check, each on its own interval, asking
//! only while a rollout is active. Prometheus is read through its HTTP API
//! (`GET /api/v1/query`); a webhook gets the rollout's state as a JSON POST.

use super::config::{Bound, Check, Source};
use super::{Shared, record};
use bytes::Bytes;
use canary_core::judge::{Criterion, Outcome};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// How long a Prometheus query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a check knows of the rollout it judges.
#[derive(Debug, Clone)]
pub struct Context {
    /// The rollout's number.
    pub id: i64,
    /// The rollout's name (`{{rollout}}`).
    pub name: String,
    /// The step, 1-based.
    pub step: usize,
    /// The canary's share, percent.
    pub share: f64,
    /// The canary's URL.
    pub canary: String,
}

/// Where the checks learn the rollout in progress, if any.
pub type Current = Arc<dyn Fn() -> Option<Context> + Send + Sync>;

/// Starts one task per check; they end when the runtime does (or are aborted).
pub fn spawn(checks: Vec<Check>, current: Current, out: Shared) -> Vec<tokio::task::JoinHandle<()>> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    checks
        .into_iter()
        .map(|c| tokio::spawn(run_check(c, client.clone(), Arc::clone(&current), Arc::clone(&out))))
        .collect()
}

async fn run_check(check: Check, client: HttpClient, current: Current, out: Shared) {
    let mut tick = tokio::time::interval(check.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(ctx) = current() else { continue };
        let line = match &check.source {
            Source::Prometheus { url, query, bound } => {
                prometheus(&client, &check.name, url, query, *bound, &ctx).await
            }
            Source::Webhook { url, timeout } => webhook(&client, &check.name, url, *timeout, &ctx).await,
        };
        record(&out, ctx.id, line);
    }
}

fn criterion(name: &str, value: Option<f64>, threshold: f64, outcome: Outcome, note: String) -> Criterion {
    Criterion { name: name.to_string(), value, threshold, outcome, note }
}

async fn prometheus(
    c: &HttpClient,
    name: &str,
    base: &str,
    query: &str,
    bound: Bound,
    ctx: &Context,
) -> Criterion {
    let q = query.replace("{{version}}", "canary").replace("{{rollout}}", &ctx.name);
    let (threshold, side) = match bound {
        Bound::Max(m) => (m, "at most"),
        Bound::Min(m) => (m, "at least"),
    };
    let inconclusive = |why: String| criterion(name, None, threshold, Outcome::Inconclusive, why);
    let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let doc = match get_json(c, &format!("{base}/api/v1/query?query={encoded}")).await {
        Ok(d) => d,
        Err(e) => return inconclusive(format!("prometheus unreachable, holding: {e}")),
    };
    let Some(value) = sample(&doc) else {
        return inconclusive(format!("no data for `{q}`, holding"));
    };
    let ok = match bound {
        Bound::Max(m) => value <= m,
        Bound::Min(m) => value >= m,
    };
    let outcome = if ok { Outcome::Pass } else { Outcome::Fail };
    criterion(name, Some(value), threshold, outcome, format!("prometheus `{q}` must be {side} {threshold}"))
}

/// The first value of an instant vector or a scalar, if a number.
fn sample(doc: &Value) -> Option<f64> {
    if doc["status"] != "success" {
        return None;
    }
    let result = &doc["data"]["result"];
    let pair = match doc["data"]["resultType"].as_str()? {
        "vector" => &result.get(0)?["value"],
        "scalar" => result,
        _ => return None,
    };
    pair.get(1)?.as_str()?.parse::<f64>().ok().filter(|v| v.is_finite())
}

async fn get_json(c: &HttpClient, url: &str) -> Result<Value, String> {
    let req = http::Request::get(url).body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
    let (status, body) = send(c, req, QUERY_TIMEOUT).await?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body).chars().take(200).collect::<String>()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
}

async fn webhook(c: &HttpClient, name: &str, url: &str, timeout: Duration, ctx: &Context) -> Criterion {
    let body = json!({"check": name, "rollout": ctx.name, "rollout_id": ctx.id, "step": ctx.step, "share": ctx.share, "canary": ctx.canary});
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())));
    let answer = match req {
        Ok(req) => send(c, req, timeout).await,
        Err(e) => Err(e.to_string()),
    };
    match answer {
        Ok((s, _)) if (200..300).contains(&s) => {
            criterion(name, Some(f64::from(s)), 200.0, Outcome::Pass, format!("webhook {url} answered {s}"))
        }
        Ok((s, body)) => {
            let said = String::from_utf8_lossy(&body).chars().take(120).collect::<String>();
            criterion(
                name,
                Some(f64::from(s)),
                200.0,
                Outcome::Fail,
                format!("webhook {url} answered {s}: {said}"),
            )
        }
        Err(e) => criterion(
            name,
            None,
            200.0,
            Outcome::Inconclusive,
            format!("webhook {url} unreachable, holding: {e}"),
        ),
    }
}

async fn send(
    c: &HttpClient,
    req: http::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(u16, Bytes), String> {
    let work = async {
        let resp = c.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| format!("no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vectors_and_scalars_and_nothing_else() {
        let v = json!({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "0.25"]}]}});
        assert_eq!(sample(&v), Some(0.25));
        let s = json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}});
        assert_eq!(sample(&s), Some(3.0));
        let empty = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert_eq!(sample(&empty), None);
        let nan = json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "NaN"]}});
        assert_eq!(sample(&nan), None);
    }
}

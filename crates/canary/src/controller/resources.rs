//! Resource use each version reports about itself (S8, S10), polled every few
//! seconds from its own endpoints, for the judge's memory, CPU and database
//! criteria. A version that does not expose a figure leaves it `None`, and the
//! judge says "not reported" rather than passing it silently.
//!
//! Read from `GET {upstream}/api/v2/metrics` (the shape canary's probe library
//! serves): `resources.memory_percent`, `resources.cpu_percent`, and
//! `capacity.database_connections` (a percentage of the pool), falling back
//! to `capacity.database_pool.{in_use,max}`.

use super::probe::Probe;
use crate::cluster::Cluster;
use crate::live::Live;
use canary_core::Version;
use canary_core::judge::Resources;
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How often each version is asked.
const EVERY: Duration = Duration::from_secs(5);

/// The latest figures, stable then canary.
pub type Shared = Arc<Mutex<[Resources; 2]>>;

/// Reads the latest figures.
pub fn read(s: &Shared) -> [Resources; 2] {
    *s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Polls both upstreams until the task is dropped; in a cluster, only
/// while this replica leads (only the leader judges: N replicas polling
/// would ask each upstream N times as often).
pub async fn poll(live: Arc<Live>, out: Shared, client: Probe, cluster: Option<Arc<Cluster>>) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        if cluster.as_ref().is_some_and(|c| !c.is_leader()) {
            continue;
        }
        let ups = live.upstreams();
        let urls = [Some(ups.stable.url().to_string()), ups.canary.as_ref().map(|c| c.url().to_string())];
        let mut got = [Resources::default(); 2];
        for v in Version::ALL {
            if let Some(url) = &urls[v.index()] {
                got[v.index()] = fetch(&client, url).await.unwrap_or_default();
            }
        }
        *out.lock().unwrap_or_else(PoisonError::into_inner) = got;
    }
}

async fn fetch(client: &Probe, base: &str) -> Option<Resources> {
    let uri: http::Uri = format!("{base}/api/v2/metrics").parse().ok()?;
    let resp = tokio::time::timeout(Duration::from_secs(2), client.get(uri)).await.ok()?.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body = tokio::time::timeout(Duration::from_secs(2), resp.into_body().collect()).await.ok()?.ok()?;
    let v: Value = serde_json::from_slice(&body.to_bytes()).ok()?;
    Some(parse(&v))
}

/// The figures in one metrics document.
pub fn parse(v: &Value) -> Resources {
    let pct = |p: &str| v.pointer(p).and_then(Value::as_f64).filter(|x| (0.0..=100.0).contains(x));
    let pool = || {
        let used = v.pointer("/capacity/database_pool/in_use")?.as_f64()?;
        let max = v.pointer("/capacity/database_pool/max")?.as_f64().filter(|m| *m > 0.0)?;
        Some(used * 100.0 / max)
    };
    Resources {
        memory: pct("/resources/memory_percent"),
        cpu: pct("/resources/cpu_percent"),
        db_connections: pct("/capacity/database_connections").or_else(pool),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_is_there_and_nothing_else() {
        let v = json!({"resources": {"memory_percent": 42.5, "cpu_percent": 7}, "capacity": {"database_pool": {"in_use": 3, "max": 12}}});
        let r = parse(&v);
        assert_eq!((r.memory, r.cpu, r.db_connections), (Some(42.5), Some(7.0), Some(25.0)));
        let r = parse(&json!({"capacity": {"database_connections": null}}));
        assert_eq!(r, Resources::default());
    }
}

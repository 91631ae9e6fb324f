//! A real Prometheus (Debian's) for tests: on loopback, scraping one target
//! every second, evaluating rules every second when given, and queried over
//! its HTTP API.

use crate::support::*;
use std::net::SocketAddr;
use std::path::Path;

/// A Prometheus server scraping `target` every second.
pub struct Prometheus {
    child: std::process::Child,
    pub url: String,
    pub addr: SocketAddr,
    /// Its port, kept for it from before it listens (see `reserved`).
    _port: tokio::net::TcpSocket,
}

impl Prometheus {
    pub fn start(dir: &Path, target: SocketAddr) -> Prometheus {
        Prometheus::start_with(dir, target, None)
    }

    /// As [`Prometheus::start`], scraping as job `canary` and evaluating the
    /// alerting rules in `rules`.
    pub fn start_with(dir: &Path, target: SocketAddr, rules: Option<&Path>) -> Prometheus {
        let bin = Path::new("/usr/bin/prometheus");
        assert!(bin.exists(), "/usr/bin/prometheus is needed: apt-get install prometheus (./test.sh does)");
        let (addr, held) = reserved();
        let cfg = dir.join("prometheus.yml");
        let rule_files = rules.map_or(String::new(), |r| format!("rule_files:\n  - {}\n", r.display()));
        let job = if rules.is_some() { "canary" } else { "app" };
        let scrape = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{rule_files}scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(&cfg, scrape).unwrap();
        let child = std::process::Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Prometheus { child, url: format!("http://{addr}"), addr, _port: held }
    }

    /// Waits until it answers `/-/ready` (it takes a moment to start).
    pub async fn ready(&self) {
        let url: http::Uri = format!("{}/-/ready", self.url).parse().unwrap();
        let up = eventually(30, || async {
            client().get(url.clone()).await.is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(up, "prometheus did not become ready within 30 s");
    }

    /// An instant query's `data.result` (an empty list while it answers
    /// nothing; panics on an error, with the query).
    pub async fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
        let (status, _, body) =
            get(&client(), self.addr, &format!("/api/v1/query?query={encoded}"), &[]).await;
        let doc: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{q}: {e}: {body}"));
        assert_eq!((status, doc["status"].as_str()), (200, Some("success")), "{q}: {body}");
        doc["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The alerts in state `firing` now, by name.
    pub async fn firing(&self) -> Vec<String> {
        let (_, _, body) = get(&client(), self.addr, "/api/v1/alerts", &[]).await;
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let alerts = doc["data"]["alerts"].as_array().cloned().unwrap_or_default();
        alerts
            .iter()
            .filter(|a| a["state"] == "firing")
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

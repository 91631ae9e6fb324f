//! The cluster's lines in `/metrics`: who leads, whether etcd answers,
//! each replica's liveness, the internal requests answered, and on the
//! leader the replicas whose totals have not come.

use super::{Cluster, Internal, TOTALS_PATH, WINDOW_PATH};
use canary_proxy::metrics::prometheus::{escape, gauge};
use std::fmt::Write;
use std::sync::atomic::Ordering;

impl Cluster {
    /// The `/metrics` lines of the cluster: who leads, each replica's liveness.
    pub fn exposition(&self) -> String {
        let mut out = String::new();
        gauge(
            &mut out,
            "canary_cluster_leader",
            "1 on the replica whose controller drives the rollout now, else 0.",
        );
        let me = escape(&self.node_id);
        let _ = writeln!(out, "canary_cluster_leader{{node=\"{me}\"}} {}", u8::from(self.is_leader()));
        gauge(&mut out, "canary_cluster_etcd_up", "1 while etcd answers this replica, else 0.");
        let _ = writeln!(
            out,
            "canary_cluster_etcd_up{{node=\"{me}\"}} {}",
            u8::from(self.etcd_error().is_none())
        );
        let seen = self.replicas().into_iter().filter_map(|r| Some((r.id, r.last_seen_ms?)));
        per_replica(
            &mut out,
            "canary_cluster_replica_last_seen_seconds",
            "Seconds since each registered replica's registration was last confirmed in etcd (0 for itself).",
            seen,
        );
        gauge(&mut out, "canary_cluster_replicas", "Replicas registered in etcd, this one included.");
        let _ = writeln!(out, "canary_cluster_replicas {}", self.replicas().len());
        let name = "canary_cluster_internal_requests_total";
        let _ = writeln!(out, "# HELP {name} Internal requests this replica answered for other replicas.");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (path, what) in [(TOTALS_PATH, Internal::Totals), (WINDOW_PATH, Internal::Window)] {
            let n = self.served[what as usize].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{path=\"{path}\"}} {n}");
        }
        per_replica(
            &mut out,
            "canary_cluster_replica_unanswered_seconds",
            "On the leader: seconds a registered replica has not answered for its totals (its traffic is not judged meanwhile).",
            self.unanswered().into_iter().map(|u| (u.id, u.since_ms)),
        );
        out
    }
}

/// A gauge with one line per replica: its id, and milliseconds shown as seconds.
fn per_replica(out: &mut String, name: &str, help: &str, lines: impl Iterator<Item = (String, u64)>) {
    gauge(out, name, help);
    for (id, ms) in lines {
        let _ = writeln!(out, "{name}{{replica=\"{}\"}} {:.3}", escape(&id), ms as f64 / 1000.0);
    }
}

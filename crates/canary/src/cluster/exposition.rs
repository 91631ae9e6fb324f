//! The cluster's lines in `/metrics`: who leads, whether etcd answers,
//! each replica's liveness, the internal requests answered, and on the
//! leader the replicas whose totals have not come.

use super::{Cluster, Internal, TOTALS_PATH, WINDOW_PATH};
use std::sync::atomic::Ordering;

impl Cluster {
    /// The `/metrics` lines of the cluster: who leads, each replica's liveness.
    pub fn exposition(&self) -> String {
        use canary_proxy::metrics::prometheus::{escape, gauge};
        use std::fmt::Write;
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
        let name = "canary_cluster_replica_last_seen_seconds";
        gauge(
            &mut out,
            name,
            "Seconds since each registered replica's registration was last confirmed in etcd (0 for itself).",
        );
        for r in self.replicas() {
            if let Some(ms) = r.last_seen_ms {
                let _ = writeln!(out, "{name}{{replica=\"{}\"}} {:.3}", escape(&r.id), ms as f64 / 1000.0);
            }
        }
        gauge(&mut out, "canary_cluster_replicas", "Replicas registered in etcd, this one included.");
        let _ = writeln!(out, "canary_cluster_replicas {}", self.replicas().len());
        let name = "canary_cluster_internal_requests_total";
        let _ = writeln!(out, "# HELP {name} Internal requests this replica answered for other replicas.");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (path, what) in [(TOTALS_PATH, Internal::Totals), (WINDOW_PATH, Internal::Window)] {
            let n = self.served[what as usize].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{path=\"{path}\"}} {n}");
        }
        let name = "canary_cluster_replica_unanswered_seconds";
        gauge(
            &mut out,
            name,
            "On the leader: seconds a registered replica has not answered for its totals (its traffic is not judged meanwhile).",
        );
        for u in self.unanswered() {
            let _ =
                writeln!(out, "{name}{{replica=\"{}\"}} {:.3}", escape(&u.id), u.since_ms as f64 / 1000.0);
        }
        out
    }
}

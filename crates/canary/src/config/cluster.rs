//! The `[cluster]` section and `--etcd`/`--node-id`: several replicas sharing
//! their state in etcd. Without either, canary is one process with its state
//! in the local SQLite file.

use super::{ConfigError, Origin, Overrides, pick};
use canary_core::plan::parse_duration_ms;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// How this replica joins its cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// etcd's client URLs (`http://127.0.0.1:2379`).
    pub etcd: Vec<String>,
    /// The key prefix of this rollout's state (default `/canary/<rollout>`).
    pub prefix: String,
    /// This replica's name in the cluster (default its admin address).
    pub node_id: String,
    /// How long leadership and registration outlive a replica that stops
    /// answering (default 5 s).
    pub lease_ttl: Duration,
    /// The admin address other replicas reach this one at (default the
    /// admin listener's, which must then not be 0.0.0.0 or [::]).
    pub advertise: Option<SocketAddr>,
}

/// The `[cluster]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCluster {
    etcd: Option<Vec<String>>,
    prefix: Option<String>,
    node_id: Option<String>,
    lease_ttl: Option<String>,
    advertise: Option<String>,
}

/// The cluster settings, if etcd endpoints were given.
pub(super) fn cluster(
    cli: &Overrides,
    f: &FileCluster,
    rollout: &str,
    admin: SocketAddr,
    o: &Origin<'_>,
) -> Result<Option<ClusterConfig>, ConfigError> {
    let from_cli = cli.etcd.as_ref().map(|s| s.split(',').map(|e| e.trim().to_string()).collect::<Vec<_>>());
    let (etcd, flag) = pick(&from_cli, &f.etcd);
    let Some(etcd) = etcd else {
        if f.prefix.is_some() || f.node_id.is_some() || f.lease_ttl.is_some() || cli.node_id.is_some() {
            return Err(o.err(
                cli.node_id.is_some(),
                "cluster.etcd",
                "--etcd",
                "cluster settings without etcd endpoints: add --etcd http://HOST:2379 (or [cluster] etcd = [...])",
            ));
        }
        return Ok(None);
    };
    for e in &etcd {
        endpoint(e).map_err(|r| o.err(flag, "cluster.etcd", "--etcd", r))?;
    }
    if etcd.is_empty() {
        return Err(o.err(
            flag,
            "cluster.etcd",
            "--etcd",
            "give at least one etcd URL, e.g. http://127.0.0.1:2379",
        ));
    }
    let prefix = f.prefix.clone().unwrap_or_else(|| format!("/canary/{rollout}"));
    if !prefix.starts_with('/') || prefix.trim_end_matches('/').is_empty() {
        return Err(o.err(
            false,
            "cluster.prefix",
            "",
            format!("`{prefix}` must be a key path such as /canary/api"),
        ));
    }
    let (node, nflag) = pick(&cli.node_id, &f.node_id);
    let node_id = node.unwrap_or_else(|| admin.to_string());
    if node_id.is_empty() || node_id.contains('/') || node_id.chars().any(char::is_whitespace) {
        return Err(o.err(
            nflag,
            "cluster.node_id",
            "--node-id",
            format!("`{node_id}` must be a non-empty name without `/` or spaces"),
        ));
    }
    let advertise = match &f.advertise {
        Some(a) => Some(a.parse().map_err(|_| {
            o.err(
                false,
                "cluster.advertise",
                "",
                format!("`{a}` is not an address; write IP:PORT such as 10.0.0.5:9090"),
            )
        })?),
        None if admin.ip().is_unspecified() => {
            return Err(o.err(false, "cluster.advertise", "", format!("the admin API listens on {admin}: set [cluster] advertise = \"IP:PORT\" to the address other replicas reach it at")));
        }
        None => None,
    };
    Ok(Some(ClusterConfig { etcd, prefix, node_id, lease_ttl: lease_ttl(f, o)?, advertise }))
}

fn lease_ttl(f: &FileCluster, o: &Origin<'_>) -> Result<Duration, ConfigError> {
    let Some(text) = &f.lease_ttl else { return Ok(Duration::from_secs(5)) };
    let ms = parse_duration_ms(text).map_err(|e| o.err(false, "cluster.lease_ttl", "", e.to_string()))?;
    // etcd grants leases of whole seconds, 2 at least with its default timing.
    if ms < 2_000 || ms % 1_000 != 0 {
        return Err(o.err(
            false,
            "cluster.lease_ttl",
            "",
            format!("`{text}` must be whole seconds, 2s or more, e.g. \"5s\""),
        ));
    }
    Ok(Duration::from_millis(ms))
}

fn endpoint(e: &str) -> Result<(), String> {
    if e.starts_with("https://") {
        return Err(format!(
            "`{e}`: TLS to etcd is not supported yet; reach etcd over http:// on a private network or loopback"
        ));
    }
    let rest = e.strip_prefix("http://").ok_or_else(|| {
        format!("`{e}` is not an etcd URL; write http://HOST:PORT, e.g. http://127.0.0.1:2379")
    })?;
    if rest.is_empty() || rest.contains('/') && !rest.ends_with('/') {
        return Err(format!("`{e}` is not an etcd URL; write http://HOST:PORT, e.g. http://127.0.0.1:2379"));
    }
    Ok(())
}

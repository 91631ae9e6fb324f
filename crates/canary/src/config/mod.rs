//! `canary serve`'s configuration: compiled defaults, then the TOML file, then
//! command-line flags, each overriding the one before; validated whole before
//! anything starts. Every refusal names where the value came from (file or flag),
//! the key and what is wrong, and `canary serve` exits with code 2.

use crate::ops::config::{Contact, HookConfig, Incidents, OpsConfig, Release, Reports};
use crate::windows::{Windows, WindowsConfig};
use canary_core::Share;
use canary_core::exclude::Excludes;
use canary_core::judge::Policy;
use canary_core::plan::{Plan, parse_duration_ms};
pub use canary_core::proxy_config::{OnRollback, ProxyConfig, UserKey};
use canary_core::rollout::Controls;
use canary_core::route_label::RouteTemplates;
use canary_core::upstream::Upstream;
pub use cluster::ClusterConfig;
use http::HeaderName;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use tls::{AdminTls, TlsFiles, UpstreamTls};

mod cluster;
mod logs;
mod shadow;
mod tls;

/// The rollout name used when none is configured: the seed's flag name.
pub const DEFAULT_ROLLOUT: &str = "v2-api-canary";

/// A validated configuration for `canary serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The proxy's listen address.
    pub listen: SocketAddr,
    /// The admin API's listen address.
    pub admin: SocketAddr,
    /// The SQLite state file.
    pub state: PathBuf,
    /// Start from this config's values when the state cannot be read (`--reset-state`).
    pub reset_state: bool,
    /// The dynamic config file (S16), watched for changes.
    pub flags: Option<PathBuf>,
    /// The rollout's name, mixed into every user's bucket.
    pub rollout: String,
    /// The stable upstream.
    pub stable: Upstream,
    /// The canary upstream, if any.
    pub canary: Option<Upstream>,
    /// How `https://` upstreams are verified.
    pub upstream_tls: UpstreamTls,
    /// The certificate and key the listener serves TLS with; plain HTTP without.
    pub tls: Option<TlsFiles>,
    /// The admin API's TLS: its pair, and the CA replicas verify each other with.
    pub admin_tls: Option<AdminTls>,
    /// The share to start with when the state file holds none.
    pub share: Share,
    /// Paths that always go to stable, when the state file holds none.
    pub excludes: Excludes,
    /// Where the user key comes from.
    pub user_key: UserKey,
    /// Whether responses carry `x-canary-version`.
    pub version_header: bool,
    /// What a rollback does to the canary's open upgraded connections.
    pub upgraded_on_rollback: OnRollback,
    /// Proxy limits and timeouts.
    pub proxy: ProxyConfig,
    /// How requests are labelled for per-route metrics.
    pub routes: RouteTemplates,
    /// The most distinct route labels kept per version; the rest count as `other`.
    pub max_routes: usize,
    /// What the request log keeps (`[logs]`).
    pub logs: canary_proxy::requests::Keep,
    /// The access log (`[access_log]`), if one is written.
    pub access_log: Option<canary_proxy::access_log::Options>,
    /// Spans exported over OTLP (`[tracing]`), if a collector is named.
    pub tracing: Option<canary_proxy::traces::Options>,
    /// What a shadow step copies and compares (`[shadow]`).
    pub shadow: canary_proxy::shadow::Options,
    /// What the shadow step holds the canary to (`[shadow]`'s judging keys).
    pub shadow_policy: canary_core::shadow::verdict::ShadowPolicy,
    /// The `grpc-status` codes that count as errors (`[metrics] grpc_error_codes`).
    pub grpc_errors: canary_core::grpc_codes::Codes,
    /// The default rollout plan.
    pub plan: Plan,
    /// The judge's thresholds.
    pub policy: Policy,
    /// Controller settings.
    pub controls: Controls,
    /// The token mutating admin calls must carry, if any.
    pub admin_token: Option<String>,
    /// A token that may read (dashboard, API) but not act; when set, reads need a token.
    pub viewer_token: Option<String>,
    /// Deployment windows (enforced on `deploy` when enabled).
    pub windows: Windows,
    /// Hooks, incidents, contacts, release tag, reports.
    pub ops: OpsConfig,
    /// A team's own checks (`[analysis]`).
    pub analysis: Vec<crate::analysis::config::Check>,
    /// Several replicas sharing state in etcd; `None`: one process, the SQLite file.
    pub cluster: Option<ClusterConfig>,
    /// The file and flags this came from, to read again on SIGHUP (none
    /// when there was no file).
    pub source: Option<ConfigSource>,
}

/// Where a configuration came from.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The TOML file.
    pub file: PathBuf,
    /// The command-line values that override it.
    pub cli: Overrides,
}

/// A refused configuration value: where it came from, which key, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file path, or `command line`.
    pub origin: String,
    /// The key (`routing.share`) or flag (`--share`).
    pub key: String,
    /// What is wrong and what to do.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.reason)
        } else {
            write!(f, "{}: `{}`: {}", self.origin, self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Values given on the command line (`canary serve` flags); each overrides the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// The stable upstream: http://host:port (HTTP/1.1), h2c://host:port
    /// (HTTP/2, as gRPC servers listen) or https://host (h2 or HTTP/1.1 by ALPN).
    #[arg(long, value_name = "URL")]
    pub stable: Option<String>,
    /// The canary upstream, in the same forms as --stable.
    #[arg(long, value_name = "URL")]
    pub canary: Option<String>,
    /// Where the proxy listens [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Where the admin API listens [default: 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,
    /// The SQLite state file [default: ./canary.db].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The dynamic config JSON file, watched for changes.
    #[arg(long, value_name = "FILE")]
    pub flags: Option<PathBuf>,
    /// The canary's starting share in percent, used when the state file has none.
    #[arg(long, value_name = "PERCENT")]
    pub share: Option<String>,
    /// A path glob that always goes to stable (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// The rollout's name, mixed into every user's bucket [default: v2-api-canary].
    #[arg(long, value_name = "NAME")]
    pub rollout: Option<String>,
    /// A token that mutating admin API calls must send (`Authorization: Bearer ...`).
    #[arg(long, value_name = "TOKEN", env = "CANARY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A token that may read the dashboard and API but not act.
    #[arg(long, value_name = "TOKEN", env = "CANARY_VIEWER_TOKEN", hide_env_values = true)]
    pub viewer_token: Option<String>,
    /// Serve TLS on --listen with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve the admin API (--admin) over TLS with this PEM certificate chain (needs --admin-tls-key).
    #[arg(long, value_name = "FILE")]
    pub admin_tls_cert: Option<PathBuf>,
    /// The PEM private key of --admin-tls-cert.
    #[arg(long, value_name = "FILE")]
    pub admin_tls_key: Option<PathBuf>,
    /// With --etcd: the PEM CA file replicas verify each other's admin certificate with [default: system roots].
    #[arg(long, value_name = "FILE")]
    pub admin_tls_ca: Option<PathBuf>,
    /// etcd client URLs, comma-separated: share state with other replicas.
    #[arg(long, value_name = "URLS")]
    pub etcd: Option<String>,
    /// This replica's name in the cluster [default: the admin address].
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// When the state cannot be read (a damaged state file or record, or one
    /// written by a newer canary), start again from the command line's and
    /// config's values. Without it canary serves stable only, the canary
    /// blocked, until a person decides. Nothing is deleted: a state file that
    /// cannot be read is renamed aside (FILE.set-aside-MILLIS), an unreadable
    /// record is kept in the event log.
    #[arg(long)]
    pub reset_state: bool,
}

/// The TOML file as written; every field optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    rollout: Option<String>,
    listen: Option<String>,
    admin: Option<String>,
    state: Option<PathBuf>,
    flags: Option<PathBuf>,
    #[serde(default)]
    upstreams: FileUpstreams,
    #[serde(default)]
    routing: FileRouting,
    #[serde(default)]
    tls: tls::FileTls,
    #[serde(default)]
    admin_tls: tls::FileAdminTls,
    #[serde(default)]
    proxy: FileProxy,
    #[serde(default)]
    metrics: FileMetrics,
    #[serde(default)]
    logs: logs::FileLogs,
    #[serde(default)]
    access_log: logs::FileAccessLog,
    #[serde(default)]
    tracing: logs::FileTracing,
    #[serde(default)]
    shadow: shadow::FileShadow,
    #[serde(default)]
    plan: FilePlan,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    controls: FileControls,
    admin_token: Option<String>,
    viewer_token: Option<String>,
    #[serde(default)]
    windows: WindowsConfig,
    #[serde(default)]
    hooks: Vec<HookConfig>,
    #[serde(default)]
    incidents: Incidents,
    #[serde(default)]
    contacts: Vec<Contact>,
    release: Option<Release>,
    #[serde(default)]
    reports: Reports,
    #[serde(default)]
    checklist: Vec<crate::ops::checklist::Item>,
    #[serde(default)]
    analysis: crate::analysis::config::AnalysisConfig,
    #[serde(default)]
    cluster: cluster::FileCluster,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePlan {
    steps: Option<Vec<f64>>,
    bake: Option<String>,
    final_watch: Option<String>,
    manual: Option<bool>,
    shadow: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileControls {
    rollback_after: Option<u32>,
    max_hold: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUpstreams {
    stable: Option<String>,
    canary: Option<String>,
    ca_file: Option<PathBuf>,
    insecure_skip_verify: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRouting {
    share: Option<f64>,
    exclude: Option<Vec<String>>,
    user_header: Option<String>,
    user_cookie: Option<String>,
    version_header: Option<bool>,
    upgraded_on_rollback: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProxy {
    connect_timeout_ms: Option<u64>,
    response_timeout_ms: Option<u64>,
    header_read_timeout_ms: Option<u64>,
    body_read_timeout_ms: Option<u64>,
    max_header_bytes: Option<usize>,
    max_body_bytes: Option<u64>,
    workers: Option<usize>,
    max_idle_per_upstream: Option<usize>,
    http2: Option<bool>,
    upgraded_idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMetrics {
    routes: Option<Vec<String>>,
    route_depth: Option<usize>,
    max_routes: Option<usize>,
    grpc_error_codes: Option<Vec<canary_core::grpc_codes::CodeName>>,
}

/// Where a value came from, for error messages.
struct Origin<'a> {
    file: Option<&'a Path>,
}

impl Origin<'_> {
    fn err(&self, from_flag: bool, key: &str, flag: &str, reason: impl Into<String>) -> ConfigError {
        let (origin, key) = match (from_flag, self.file) {
            (false, Some(f)) => (f.display().to_string(), key.to_string()),
            _ => ("command line".to_string(), flag.to_string()),
        };
        ConfigError { origin, key, reason: reason.into() }
    }
}

/// The deployment windows of a config file (its `[windows]` section), or the
/// seed's rules without one: for `canary window`.
pub fn load_windows(file: Option<&Path>) -> Result<Windows, ConfigError> {
    let parsed = match file {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let origin = file.map_or_else(|| "seed rules".to_string(), |p| p.display().to_string());
    parsed.windows.build().map_err(|reason| ConfigError { origin, key: String::new(), reason })
}

/// The judge's thresholds of a config file (its `[policy]` section), for
/// `canary monitor --config`: the whole file is read and checked as
/// `canary serve` would, so a file monitor accepts is one serve accepts.
pub fn load_policy(file: &Path) -> Result<Policy, ConfigError> {
    let f = read_file(file)?;
    let origin = file.display().to_string();
    f.policy.validate().map_err(|reason| ConfigError { origin, key: "policy".into(), reason })?;
    Ok(f.policy)
}

fn policy(p: &Policy, o: &Origin<'_>) -> Result<Policy, ConfigError> {
    p.validate().map_err(|e| o.err(false, "policy", "", e))?;
    Ok(p.clone())
}

/// Parses and validates config text as if it were a file with no flags given
/// (for tools and fuzzing: the same path a file takes, minus the read).
pub fn load_str(text: &str) -> Result<ServeConfig, ConfigError> {
    let origin = "config text".to_string();
    let parsed: FileConfig = toml::from_str(text).map_err(|e| ConfigError {
        origin,
        key: String::new(),
        reason: toml_reason(&e, text),
    })?;
    build(parsed, &Overrides::default(), &Origin { file: None })
}

/// Reads the optional file, applies the overrides and validates the result.
pub fn load(file: Option<&Path>, cli: &Overrides) -> Result<ServeConfig, ConfigError> {
    let parsed = match file {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let mut cfg = build(parsed, cli, &Origin { file })?;
    cfg.source = file.map(|f| ConfigSource { file: f.to_path_buf(), cli: cli.clone() });
    Ok(cfg)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: origin.clone(),
        key: String::new(),
        reason: format!("cannot read the config file: {e}"),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError {
        origin,
        key: String::new(),
        reason: toml_reason(&e, &text),
    })
}

fn toml_reason(e: &toml::de::Error, text: &str) -> String {
    let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    match line {
        Some(l) => format!("line {l}: {}", e.message()),
        None => e.message().to_string(),
    }
}

fn build(f: FileConfig, cli: &Overrides, o: &Origin<'_>) -> Result<ServeConfig, ConfigError> {
    let rollout = pick(&cli.rollout, &f.rollout);
    let rollout_name = rollout.0.unwrap_or_else(|| DEFAULT_ROLLOUT.to_string());
    if rollout_name.trim().is_empty() {
        return Err(o.err(rollout.1, "rollout", "--rollout", "must not be empty"));
    }
    let stable = pick(&cli.stable, &f.upstreams.stable);
    let stable = match stable.0 {
        Some(s) => upstream(&s, o, stable.1, "upstreams.stable", "--stable")?,
        None => return Err(o.err(true, "upstreams.stable", "--stable", "a stable upstream is required: pass --stable http://host:port or set [upstreams] stable in the config file")),
    };
    let canary = pick(&cli.canary, &f.upstreams.canary);
    let canary = match canary.0 {
        Some(s) => Some(upstream(&s, o, canary.1, "upstreams.canary", "--canary")?),
        None => None,
    };
    let admin = addr(pick(&cli.admin, &f.admin), "127.0.0.1:9090", o, "admin", "--admin")?;
    let proxy = proxy(&f.proxy, o)?;
    Ok(ServeConfig {
        listen: addr(pick(&cli.listen, &f.listen), "127.0.0.1:8080", o, "listen", "--listen")?,
        admin,
        cluster: cluster::cluster(cli, &f.cluster, &rollout_name, admin, o)?,
        state: pick(&cli.state, &f.state).0.unwrap_or_else(|| PathBuf::from("canary.db")),
        reset_state: cli.reset_state,
        flags: pick(&cli.flags, &f.flags).0,
        rollout: rollout_name.clone(),
        stable,
        canary,
        upstream_tls: UpstreamTls {
            ca_file: f.upstreams.ca_file.clone(),
            insecure_skip_verify: f.upstreams.insecure_skip_verify.unwrap_or(false),
        },
        tls: tls::listener(cli, &f.tls, o)?,
        admin_tls: tls::admin(cli, &f.admin_tls, o)?,
        share: share(cli, &f.routing, o)?,
        excludes: excludes(cli, &f.routing, o)?,
        user_key: user_key(&f.routing, o)?,
        version_header: f.routing.version_header.unwrap_or(true),
        upgraded_on_rollback: on_rollback(&f.routing, o)?,
        shadow: shadow::shadow(&f.shadow, o, proxy.response_timeout)?,
        shadow_policy: shadow::policy(&f.shadow, o)?,
        proxy,
        routes: RouteTemplates::new(
            f.metrics.routes.as_deref().unwrap_or(&[]),
            f.metrics.route_depth.unwrap_or(3),
        )
        .map_err(|e| o.err(false, "metrics.routes", "", e.to_string()))?,
        max_routes: f.metrics.max_routes.unwrap_or(100).max(1),
        logs: logs::keep(&f.logs, o)?,
        access_log: logs::access_log(&f.access_log, o)?,
        tracing: logs::tracing(&f.tracing, o)?,
        grpc_errors: match &f.metrics.grpc_error_codes {
            None => canary_core::grpc_codes::Codes::default(),
            Some(codes) => canary_core::grpc_codes::Codes::parse(codes)
                .map_err(|e| o.err(false, "metrics.grpc_error_codes", "", e))?,
        },
        plan: plan(&f.plan, o)?,
        controls: controls(&f.controls, o)?,
        policy: policy(&f.policy, o)?,
        admin_token: admin_token(cli, &f, o)?,
        viewer_token: pick(&cli.viewer_token, &f.viewer_token).0.filter(|t| !t.is_empty()),
        windows: f.windows.build().map_err(|e| o.err(false, "", "", e))?,
        ops: OpsConfig {
            hooks: f
                .hooks
                .iter()
                .enumerate()
                .map(|(i, h)| h.build(i))
                .collect::<Result<_, _>>()
                .map_err(|e| o.err(false, "", "", e))?,
            incidents: f.incidents.clone(),
            contacts: f.contacts.clone(),
            release: f.release.clone(),
            reports_dir: f.reports.dir.clone(),
            rollout_name,
            checklist: checklist(&f.checklist, o)?,
        },
        analysis: f.analysis.build().map_err(|e| o.err(false, "", "", e))?,
        source: None,
    })
}

/// The command-line value if given, else the file's; the flag says which.
fn pick<T: Clone>(cli: &Option<T>, file: &Option<T>) -> (Option<T>, bool) {
    match cli {
        Some(v) => (Some(v.clone()), true),
        None => (file.clone(), false),
    }
}

fn upstream(s: &str, o: &Origin<'_>, flag: bool, key: &str, name: &str) -> Result<Upstream, ConfigError> {
    Upstream::parse(s).map_err(|reason| o.err(flag, key, name, reason))
}

fn addr(
    v: (Option<String>, bool),
    default: &str,
    o: &Origin<'_>,
    key: &str,
    flag: &str,
) -> Result<SocketAddr, ConfigError> {
    let s = v.0.unwrap_or_else(|| default.to_string());
    s.parse().map_err(|_| {
        o.err(v.1, key, flag, format!("`{s}` is not an address; write IP:PORT such as 127.0.0.1:8080"))
    })
}

fn share(cli: &Overrides, r: &FileRouting, o: &Origin<'_>) -> Result<Share, ConfigError> {
    if let Some(s) = &cli.share {
        return s
            .parse()
            .map_err(|e: canary_core::share::ShareError| o.err(true, "", "--share", e.to_string()));
    }
    match r.share {
        Some(p) => Share::from_percent(p).map_err(|e| o.err(false, "routing.share", "", e.to_string())),
        None => Ok(Share::ZERO),
    }
}

fn excludes(cli: &Overrides, r: &FileRouting, o: &Origin<'_>) -> Result<Excludes, ConfigError> {
    if !cli.exclude.is_empty() {
        return Excludes::new(&cli.exclude).map_err(|e| o.err(true, "", "--exclude", e.to_string()));
    }
    Excludes::new(r.exclude.as_deref().unwrap_or(&[]))
        .map_err(|e| o.err(false, "routing.exclude", "", e.to_string()))
}

fn user_key(r: &FileRouting, o: &Origin<'_>) -> Result<UserKey, ConfigError> {
    match (&r.user_header, &r.user_cookie) {
        (Some(_), Some(_)) => {
            Err(o.err(false, "routing.user_cookie", "", "set either user_header or user_cookie, not both"))
        }
        (None, Some(c)) if c.is_empty() => Err(o.err(false, "routing.user_cookie", "", "must not be empty")),
        (None, Some(c)) => Ok(UserKey::Cookie(c.clone())),
        (h, None) => {
            let h = h.as_deref().unwrap_or("x-user-id");
            HeaderName::try_from(h.to_ascii_lowercase()).map(UserKey::Header).map_err(|_| {
                o.err(false, "routing.user_header", "", format!("`{h}` is not a valid header name"))
            })
        }
    }
}

fn proxy(p: &FileProxy, o: &Origin<'_>) -> Result<ProxyConfig, ConfigError> {
    let ms = |v: Option<u64>, default: u64, key: &str| -> Result<Duration, ConfigError> {
        match v.unwrap_or(default) {
            0 => Err(o.err(false, key, "", "must be above 0 milliseconds")),
            n => Ok(Duration::from_millis(n)),
        }
    };
    let max_header_bytes = p.max_header_bytes.unwrap_or(16 * 1024);
    if max_header_bytes < 8192 {
        return Err(o.err(
            false,
            "proxy.max_header_bytes",
            "",
            "must be at least 8192 (the HTTP/1 parser's minimum buffer)",
        ));
    }
    let workers = p.workers.unwrap_or_else(default_workers);
    if workers == 0 || workers > 256 {
        return Err(o.err(false, "proxy.workers", "", format!("{workers} is outside 1..256")));
    }
    Ok(ProxyConfig {
        connect_timeout: ms(p.connect_timeout_ms, 2_000, "proxy.connect_timeout_ms")?,
        response_timeout: ms(p.response_timeout_ms, 30_000, "proxy.response_timeout_ms")?,
        header_read_timeout: ms(p.header_read_timeout_ms, 60_000, "proxy.header_read_timeout_ms")?,
        body_read_timeout: ms(p.body_read_timeout_ms, 30_000, "proxy.body_read_timeout_ms")?,
        max_header_bytes,
        max_body_bytes: p.max_body_bytes.unwrap_or(1 << 30),
        workers,
        max_idle_per_upstream: p.max_idle_per_upstream.unwrap_or(256),
        http2: p.http2.unwrap_or(true),
        upgraded_idle_timeout: ms(p.upgraded_idle_timeout_ms, 3_600_000, "proxy.upgraded_idle_timeout_ms")?,
    })
}

fn on_rollback(r: &FileRouting, o: &Origin<'_>) -> Result<OnRollback, ConfigError> {
    match r.upgraded_on_rollback.as_deref() {
        None | Some("close") => Ok(OnRollback::Close),
        Some("keep") => Ok(OnRollback::Keep),
        Some(other) => Err(o.err(
            false,
            "routing.upgraded_on_rollback",
            "",
            format!("`{other}` is not one of \"close\" (the default) or \"keep\""),
        )),
    }
}

/// The admin token; required when the admin API listens beyond loopback,
/// where anyone who can reach it could otherwise change the share.
fn admin_token(cli: &Overrides, f: &FileConfig, o: &Origin<'_>) -> Result<Option<String>, ConfigError> {
    let token = pick(&cli.admin_token, &f.admin_token).0.filter(|t| !t.is_empty());
    let admin = pick(&cli.admin, &f.admin).0.unwrap_or_else(|| "127.0.0.1:9090".into());
    let loopback = admin.parse::<SocketAddr>().map_or(true, |a| a.ip().is_loopback());
    if token.is_none() && !loopback {
        let why = format!(
            "the admin API would listen on {admin}, beyond loopback, without a token: set --admin-token (or admin_token in the config, or CANARY_ADMIN_TOKEN)"
        );
        return Err(o.err(false, "admin_token", "--admin-token", why));
    }
    Ok(token)
}

fn plan(p: &FilePlan, o: &Origin<'_>) -> Result<Plan, ConfigError> {
    let mut plan = Plan::default();
    if let Some(steps) = &p.steps {
        let text = steps.iter().map(f64::to_string).collect::<Vec<_>>().join(",");
        plan.steps = Plan::parse_steps(&text).map_err(|e| o.err(false, "plan.steps", "", e.to_string()))?;
    }
    if let Some(b) = &p.bake {
        plan.bake_ms = parse_duration_ms(b).map_err(|e| o.err(false, "plan.bake", "", e.to_string()))?;
    }
    if let Some(f) = &p.final_watch {
        plan.final_watch_ms =
            parse_duration_ms(f).map_err(|e| o.err(false, "plan.final_watch", "", e.to_string()))?;
    }
    plan.manual = p.manual.unwrap_or(false);
    if let Some(s) = &p.shadow {
        plan.shadow_ms = parse_duration_ms(s).map_err(|e| o.err(false, "plan.shadow", "", e.to_string()))?;
    }
    Ok(plan)
}

fn controls(c: &FileControls, o: &Origin<'_>) -> Result<Controls, ConfigError> {
    let mut out = Controls::default();
    if let Some(n) = c.rollback_after {
        out.rollback_after = n.max(1);
    }
    if let Some(h) = &c.max_hold {
        out.max_hold_ms =
            parse_duration_ms(h).map_err(|e| o.err(false, "controls.max_hold", "", e.to_string()))?;
    }
    Ok(out)
}

fn checklist(
    items: &[crate::ops::checklist::Item],
    o: &Origin<'_>,
) -> Result<Vec<crate::ops::checklist::Item>, ConfigError> {
    for item in items {
        item.validate().map_err(|e| o.err(false, "", "", e))?;
    }
    Ok(items.to_vec())
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Whether two values differ, by their full debug form: every config type has
/// one, and a config is compared once per SIGHUP, so its cost does not matter.
pub fn differs<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

#[cfg(test)]
mod tests;

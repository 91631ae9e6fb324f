//! `canary serve` assembled: state file, live routing, dynamic config, proxy
//! workers and the admin API, started in that order so the very first request
//! is routed by the persisted state; stopped gracefully on request.

use crate::admin::{self, AdminState};
use crate::cluster::peer::PeerLink;
use crate::cluster::{self, Joined};
use crate::config::ServeConfig;
use crate::config::TlsFiles;
use crate::controller::{self, Controller};
use crate::dynamic::{self, FlagsStatus};
use crate::live::{Live, Upstreams};
use crate::reload;
use crate::store::Store;
use crate::tls::rotate::Rotation;
use canary_core::RoutingTable;
use canary_proxy::access_log::AccessLog;
use canary_proxy::metrics::Metrics;
use canary_proxy::requests::user::UserKeySecret;
use canary_proxy::tls::{self, listener::ListenerPair};
use canary_proxy::traces::Tracing;
use canary_proxy::{self as proxy, Settings};
use rustls::{ClientConfig, ServerConfig};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configuration input is invalid (exit code 2).
    #[error("{0}")]
    Config(String),
    /// A TLS file the config names was refused: unreadable, not PEM, a key
    /// not matching, a certificate outside its dates (exit code 2).
    #[error(transparent)]
    Tls(#[from] canary_proxy::tls::TlsError),
    /// Something outside the config failed: a port in use, an unwritable state file (exit code 1).
    #[error("{0}")]
    Io(String),
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// Where the proxy listens.
    pub proxy_addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// The live routing state.
    pub live: Arc<Live>,
    /// The measurements.
    pub metrics: Arc<Metrics>,
    /// The rollout controller.
    pub controller: Arc<Mutex<Controller>>,
    /// The cluster this replica joined, if any.
    pub joined: Option<Joined>,
    /// Shadow traffic's copies and what they came to.
    pub shadow: Arc<canary_proxy::shadow::Shadow>,
    /// The access log and the span exporter, closed last at shutdown.
    outlets: (Option<Arc<AccessLog>>, Option<Arc<Tracing>>),
    /// The one shutdown signal: the controller, the proxy workers and the
    /// admin API all stop on it.
    stop: CancellationToken,
    threads: Vec<JoinHandle<()>>,
}

/// Starts everything; returns once all listeners are bound.
pub fn start(cfg: ServeConfig) -> Result<Running, StartError> {
    let cfg = Arc::new(cfg);
    // Read before the state file is touched: a refused start changes nothing.
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let env_flags = canary_core::flags::from_env(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(StartError::Config)?;
    let (proxy_tls, rotations) = start_tls(&cfg)?;
    let admin_tls = start_admin_tls(&cfg)?;
    // Bound first: a cluster replica advertises the address it really has.
    let admin_sock = std::net::TcpListener::bind(cfg.admin)
        .and_then(|l| l.set_nonblocking(true).map(|_| l))
        .map_err(|e| StartError::Io(format!("admin API: cannot listen on {}: {e}", cfg.admin)))?;
    let admin_addr = admin_sock.local_addr().map_err(|e| StartError::Io(e.to_string()))?;
    let (store, joined) = open_store(&cfg, admin_addr, admin_tls.as_ref())?;
    let live = Live::new(store, table(&cfg), upstreams(&cfg), env_flags, cfg.reset_state)
        .map_err(|e| StartError::Io(e.to_string()))?;
    let live = Arc::new(live);
    if let Some(j) = &joined {
        // Before the proxy starts: the first request is routed by the
        // cluster's table, and every change after it reaches this replica.
        j.start(&live);
    }
    let cluster = joined.as_ref().map(|j| Arc::clone(&j.cluster));
    let flags = Arc::new(Mutex::new(FlagsStatus { path: cfg.flags.clone(), ..FlagsStatus::default() }));
    if let Some(path) = &cfg.flags {
        // Over state that could not be read nothing is applied: the start goes
        // on, serving stable, and the reload below shows why the file was not.
        if live.fault().is_none() {
            dynamic::load(path, &live).map_err(StartError::Config)?;
        }
        dynamic::reload(path, &live, &flags);
    }
    let metrics = Arc::new(Metrics::keeping(cfg.proxy.workers, cfg.max_routes, &cfg.logs));
    let secret = crate::store::secret::user_secret(live.store()).map_err(StartError::Io)?;
    let access_log = start_access_log(&cfg)?;
    let tracing = cfg.tracing.clone().map(Tracing::start).transpose().map_err(StartError::Config)?;
    let stop = CancellationToken::new();
    let shadow = canary_proxy::shadow::Shadow::start(
        cfg.shadow.clone(),
        live.routes(),
        Arc::clone(&proxy_tls.upstreams),
    )
    .map_err(|e| StartError::Io(format!("cannot start the shadow thread: {e}")))?;
    let settings =
        Arc::new(settings(&cfg, secret, (access_log.clone(), tracing.clone()), Arc::clone(&shadow)));
    let (proxy_addr, mut threads) = proxy::start(settings, live.routes(), &metrics, &proxy_tls, stop.clone())
        .map_err(|e| StartError::Io(format!("proxy: cannot listen on {}: {e}", cfg.listen)))?;
    let ctl = Controller::load(Arc::clone(&live), Arc::clone(&metrics), &cfg)
        .map_err(|e| StartError::Io(e.to_string()))?;
    let (outbox, ops_thread) = crate::ops::spawn(Arc::new(cfg.ops.clone()), Arc::clone(&live))
        .map_err(|e| StartError::Io(format!("cannot start the ops thread: {e}")))?;
    let mut ctl = ctl;
    ctl.outbox = Some(outbox);
    ctl.cluster = cluster.clone();
    ctl.shadow = Some(Arc::clone(&shadow));
    threads.push(ops_thread);
    let controller = Arc::new(Mutex::new(ctl));
    threads.push(
        controller::spawn(Arc::clone(&controller), stop.clone())
            .map_err(|e| StartError::Io(format!("cannot start the controller thread: {e}")))?,
    );
    // One lock at a time: a guard in the initializer below would live to its end.
    let (published, rollbacks) = {
        let g = controller::lock(&controller);
        (Arc::clone(&g.published), Arc::clone(&g.rollbacks))
    };
    let state = AdminState {
        live: Arc::clone(&live),
        metrics: Arc::clone(&metrics),
        cfg: Arc::clone(&cfg),
        flags,
        published,
        rollbacks,
        controller: Arc::clone(&controller),
        sessions: Arc::default(),
        cluster,
        secret,
        access_log: access_log.clone(),
        tracing: tracing.clone(),
        shadow: Arc::clone(&shadow),
    };
    let rotations =
        rotations.into_iter().chain(admin_tls.as_ref().map(|a| Arc::clone(&a.rotation))).collect();
    let side =
        Sidecar { upstream_tls: proxy_tls.upstreams, rotations, admin_tls: admin_tls.map(|a| a.server) };
    threads.push(spawn_admin(admin_sock, state, side, stop.clone())?);
    let outlets = (access_log, tracing);
    Ok(Running { proxy_addr, admin_addr, live, metrics, controller, joined, shadow, outlets, stop, threads })
}

/// The SQLite file, or with `--etcd` the cluster's shared state.
fn open_store(
    cfg: &ServeConfig,
    admin: SocketAddr,
    tls: Option<&AdminTls>,
) -> Result<(Store, Option<Joined>), StartError> {
    let Some(cc) = &cfg.cluster else {
        let store = Store::open(&cfg.state, cfg.reset_state).map_err(|e| StartError::Io(e.to_string()))?;
        return Ok((store, None));
    };
    let advertise = cc.advertise.unwrap_or(admin).to_string();
    let link = match tls {
        Some(t) => PeerLink::https(Arc::clone(&t.peers)),
        None => PeerLink::plain(),
    };
    let (store, joined) =
        cluster::join(cc, &advertise, &cfg.state, link).map_err(|e| StartError::Io(e.to_string()))?;
    Ok((store, Some(joined)))
}

/// The TLS configs, made before anything else starts: a bad CA file or
/// certificate pair refuses the start (exit 2) with the file and the reason.
/// Returns the rotations that keep the files read: the listener's pair and
/// the upstreams' CA file, each when set.
fn start_tls(cfg: &ServeConfig) -> Result<(proxy::Tls, Vec<Arc<Rotation>>), StartError> {
    let ut = &cfg.upstream_tls;
    let (upstreams, trust) = tls::client::config(ut.ca_file.as_deref(), ut.insecure_skip_verify)?;
    let ca = trust.map(|t| Rotation::start(t).map_err(StartError::Config)).transpose()?;
    if ut.insecure_skip_verify {
        tracing::warn!(
            "upstreams.insecure_skip_verify = true: the certificates of https upstreams are NOT verified; anyone on the path can impersonate them"
        );
    }
    let rotations: Vec<_> = ca.into_iter().collect();
    let Some(files) = &cfg.tls else { return Ok((proxy::Tls { upstreams, listener: None }, rotations)) };
    let (listener, rotation) = listener_tls(files, "proxy", cfg.proxy.http2)?;
    tracing::info!(cert = %files.cert.display(), "the proxy listener serves TLS");
    let rotations = rotations.into_iter().chain([rotation]).collect();
    Ok((proxy::Tls { upstreams, listener: Some(listener) }, rotations))
}

/// A listener's server config, its pair loaded and kept read by the rotation.
fn listener_tls(
    files: &TlsFiles,
    listener: &'static str,
    http2: bool,
) -> Result<(Arc<ServerConfig>, Arc<Rotation>), StartError> {
    let pair = ListenerPair::new(&files.cert, &files.key, listener);
    let server = tls::listener::config(pair.slot(), http2)?;
    let rotation = Rotation::start(pair).map_err(StartError::Config)?;
    Ok((server, rotation))
}

/// The admin API's TLS, when `[admin_tls]` is set.
struct AdminTls {
    /// The listener's config, its certificate in `rotation`'s slot.
    server: Arc<ServerConfig>,
    rotation: Arc<Rotation>,
    /// How replicas verify each other's admin certificate.
    peers: Arc<ClientConfig>,
}

/// The admin listener's pair, loaded before anything starts: a bad pair or
/// peers' CA file refuses the start (exit 2) naming the file.
fn start_admin_tls(cfg: &ServeConfig) -> Result<Option<AdminTls>, StartError> {
    let Some(t) = &cfg.admin_tls else { return Ok(None) };
    // HTTP/1.1 only: the admin API's clients (CLI, browsers, peers) need no more.
    let (server, rotation) = listener_tls(&t.files, "admin", false)?;
    let peers = tls::client::verifying(t.ca_file.as_deref(), "CA file (admin_tls.ca_file)")?;
    tracing::info!(cert = %t.files.cert.display(), "the admin API serves TLS");
    Ok(Some(AdminTls { server, rotation, peers: Arc::new(peers) }))
}

/// What the admin thread runs beside the API besides the pollers of the
/// config: the upstreams' TLS client, the watchers of the certificates and
/// the CA file, and the admin listener's TLS config.
struct Sidecar {
    upstream_tls: Arc<ClientConfig>,
    rotations: Vec<Arc<Rotation>>,
    admin_tls: Option<Arc<ServerConfig>>,
}

fn table(cfg: &ServeConfig) -> RoutingTable {
    RoutingTable {
        rollout: cfg.rollout.clone(),
        share: cfg.share,
        excludes: cfg.excludes.clone(),
        has_canary: cfg.canary.is_some(),
        canary_blocked: false,
        shadow: false,
    }
}

/// What the data plane is told of the configuration.
fn settings(
    cfg: &ServeConfig,
    user_secret: UserKeySecret,
    (access_log, tracing): (Option<Arc<AccessLog>>, Option<Arc<Tracing>>),
    shadow: Arc<canary_proxy::shadow::Shadow>,
) -> Settings {
    Settings {
        listen: cfg.listen,
        proxy: cfg.proxy.clone(),
        user_key: cfg.user_key.clone(),
        version_header: cfg.version_header,
        upgraded_on_rollback: cfg.upgraded_on_rollback,
        routes: cfg.routes.clone(),
        grpc_errors: cfg.grpc_errors,
        user_secret,
        access_log,
        tracing,
        shadow: Some(shadow),
    }
}

/// The access log's writer, when one is configured; a file that cannot be
/// opened is refused at start, before anything is served.
fn start_access_log(cfg: &ServeConfig) -> Result<Option<Arc<AccessLog>>, StartError> {
    let Some(opts) = &cfg.access_log else { return Ok(None) };
    let shown = opts.path.as_ref().map_or_else(|| "stdout".to_string(), |p| p.display().to_string());
    AccessLog::start(opts.clone()).map(Some).map_err(|e| {
        StartError::Config(format!(
            "access_log.path: cannot open {shown} for appending: {e} (create its directory, or fix its permissions)"
        ))
    })
}

fn upstreams(cfg: &ServeConfig) -> Upstreams {
    Upstreams { stable: cfg.stable.clone(), canary: cfg.canary.clone() }
}

fn spawn_admin(
    sock: std::net::TcpListener,
    state: AdminState,
    side: Sidecar,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, StartError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::Io(format!("cannot start the admin runtime: {e}")))?;
    // Made here, before canary reports itself ready: from then on a SIGHUP
    // reloads the config instead of ending the process (its default action).
    let hup = {
        let _in_rt = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| StartError::Io(format!("cannot listen for SIGHUP: {e}")))?
    };
    // Likewise SIGUSR1 reopens the access log (logrotate's postrotate), as
    // for nginx, rather than ending the process.
    let usr1 = {
        let _in_rt = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
            .map_err(|e| StartError::Io(format!("cannot listen for SIGUSR1: {e}")))?
    };
    std::thread::Builder::new()
        .name("canary-admin".into())
        .spawn(move || rt.block_on(run_admin(sock, state, side, stop, (hup, usr1))))
        .map_err(|e| StartError::Io(format!("cannot start the admin thread: {e}")))
}

async fn run_admin(
    sock: std::net::TcpListener,
    state: AdminState,
    side: Sidecar,
    stop: CancellationToken,
    (hup, usr1): (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
) {
    let listener = match tokio::net::TcpListener::from_std(sock) {
        Ok(l) => l,
        Err(e) => return tracing::error!(error = %e, "cannot register the admin listener"),
    };
    let res = controller::lock(&state.controller).resources.clone();
    let client = controller::probe::client(&side.upstream_tls);
    let (live, cluster) = (&state.live, &state.cluster);
    let poller =
        tokio::spawn(controller::resources::poll(Arc::clone(live), res, client.clone(), cluster.clone()));
    let health = controller::lock(&state.controller).health.clone();
    let health_poller =
        tokio::spawn(controller::health::poll(Arc::clone(live), health, client.clone(), cluster.clone()));
    let rotators: Vec<_> =
        side.rotations.iter().map(|r| tokio::spawn(Arc::clone(r).watch(Arc::clone(&state.live)))).collect();
    let checks = spawn_analysis(&state);
    let fleet = state.cluster.clone().map(|c| {
        let token = state.cfg.admin_token.clone().or_else(|| state.cfg.viewer_token.clone());
        tokio::spawn(crate::cluster::fleet::collect(c, Arc::clone(&state.metrics), token))
    });
    let watcher = state
        .cfg
        .flags
        .clone()
        .map(|p| tokio::spawn(dynamic::watch(p, Arc::clone(&state.live), Arc::clone(&state.flags))));
    let reopener = tokio::spawn(reopen_on(usr1, state.access_log.clone()));
    let reloader = tokio::spawn(reload::watch(
        hup,
        (*state.cfg).clone(),
        Arc::clone(&state.controller),
        Arc::clone(&state.live),
        side.rotations,
    ));
    let app = admin::router(state);
    let stop = stop.cancelled_owned();
    let served = match side.admin_tls {
        Some(tls) => {
            let listener = crate::tls::admin::TlsListener::new(listener, tls);
            axum::serve(listener, app).with_graceful_shutdown(stop).await
        }
        None => axum::serve(listener, app).with_graceful_shutdown(stop).await,
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "admin API stopped");
    }
    poller.abort();
    health_poller.abort();
    checks.iter().for_each(|c| c.abort());
    reloader.abort();
    reopener.abort();
    rotators.iter().for_each(|r| r.abort());
    for w in [watcher, fleet].into_iter().flatten() {
        w.abort();
    }
}

/// Reopens the access log at each SIGUSR1 (with none configured, the
/// signal is taken and does nothing).
async fn reopen_on(mut usr1: tokio::signal::unix::Signal, log: Option<Arc<AccessLog>>) {
    while usr1.recv().await.is_some() {
        match &log {
            Some(l) => {
                tracing::info!("SIGUSR1: reopening the access log");
                l.reopen();
            }
            None => tracing::info!("SIGUSR1: no access log is written, nothing to reopen"),
        }
    }
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and joins every thread.
    pub fn shutdown(self) {
        self.stop.cancel();
        if let Some(j) = &self.joined {
            j.resign();
        }
        // The ops worker ends when its last sender is gone; it finishes what
        // was queued (each hook bounded by its timeout) first.
        controller::lock(&self.controller).outbox = None;
        for t in self.threads {
            let _ = t.join();
        }
        // The workers are done: what their last requests left is written.
        let (log, spans) = &self.outlets;
        log.iter().for_each(|l| l.close());
        spans.iter().for_each(|t| t.close());
    }
}

/// Starts a team's own checks (`[analysis]`), asking the controller which
/// rollout, if any, they judge.
fn spawn_analysis(state: &AdminState) -> Vec<tokio::task::JoinHandle<()>> {
    let c = Arc::clone(&state.controller);
    let name = state.cfg.rollout.clone();
    let current: crate::analysis::Current = Arc::new(move || controller::lock(&c).analysis_context(&name));
    let out = controller::lock(&state.controller).analysis.clone();
    crate::analysis::spawn(state.cfg.analysis.clone(), current, out)
}

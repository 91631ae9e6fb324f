//! `canary serve` in the foreground: load and validate the config, start
//! everything, print the bound addresses, and stop gracefully on SIGTERM or
//! Ctrl-C (in-flight requests are finished first).

use super::ServeArgs;
use crate::exit::{Exit, fail};
use crate::{config, server};

/// Runs the server until a stop signal.
pub fn run(args: &ServeArgs) -> Exit {
    let cfg = match config::load(args.config.as_deref(), &args.overrides) {
        Ok(c) => c,
        Err(e) => return fail(Exit::BadInput, "serve", e),
    };
    let running = match server::start(cfg) {
        Ok(r) => r,
        Err(e @ (server::StartError::Config(_) | server::StartError::Tls(_))) => {
            return fail(Exit::BadInput, "serve", e);
        }
        Err(e @ server::StartError::Io(_)) => return fail(Exit::Failed, "serve", e),
    };
    // Scripts and tests read this line to learn the bound addresses.
    crate::say!("canary: proxy listening on {}, admin API on {}", running.proxy_addr, running.admin_addr);
    wait_for_stop_signal();
    tracing::info!("stopping: finishing in-flight requests");
    running.shutdown();
    Exit::Done
}

fn wait_for_stop_signal() {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return tracing::error!(error = %e, "cannot wait for signals"),
    };
    rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) =
                (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
            else {
                return;
            };
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    });
}

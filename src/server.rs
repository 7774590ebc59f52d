//! Builds the Pingora server from a validated config: process settings, the proxy service
//! on every listener, the admin API on its own, and the background tasks (health checks,
//! split control, reload on SIGHUP, log reopening on SIGUSR1); then runs it.

use crate::admin::AdminApp;
use crate::config::Config;
use crate::proxy::draining::Draining;
use crate::proxy::Gatehouse;
use crate::reload::Reloader;
use crate::routing::split::control::SplitController;
use crate::signals::OnSignal;
use crate::snapshot::Snapshot;
use crate::upstream::health::HealthChecker;
use pingora::server::configuration::Opt;
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::SignalKind;

/// How the process was asked to start.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Detach and run in the background.
    pub daemon: bool,
    /// Take the listening sockets over from a running old process.
    pub upgrade: bool,
}

/// How long idle keep-alive connections stay open for a last request when the process
/// stops: most of the grace period, leaving a second for the rest of the shutdown.
fn drain_period(grace: Duration) -> Duration {
    grace.saturating_sub(Duration::from_secs(1)).max(grace / 2)
}

/// Starts serving `config`, read from `path` (re-read on reload). Returns only on a
/// startup error; otherwise the process ends inside Pingora.
pub fn run(config: Config, path: &Path, options: RunOptions) -> Result<(), String> {
    let mut snapshot = Snapshot::build(&config).map_err(|e| e.to_string())?;
    snapshot
        .open_access_log(None)
        .map_err(|e| format!("cannot open the access log: {e}"))?;

    let opt = Opt {
        upgrade: options.upgrade,
        daemon: options.daemon,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, config.server.to_pingora());
    // As a service, after the daemon fork: it takes the sockets over from an old process
    // (`-u`) and then tells a waiting daemon launcher that this process is ready.
    let bootstrap = server.bootstrap_as_a_service();

    let live = snapshot.live();
    let proxy = pingora::proxy::http_proxy(&server.configuration, Gatehouse::new(live.clone()));
    let drain = drain_period(config.server.grace_period.get());
    let mut service = Service::new("gatehouse".to_string(), Draining::new(proxy, drain));
    for listener in &config.listeners {
        service.add_tcp(&listener.address.to_string());
    }
    // Listeners start once bootstrap has the inherited sockets (or found none to inherit).
    server.add_service(service).add_dependency(&bootstrap);

    let reloader = Arc::new(Reloader::new(path.to_path_buf(), live.clone()));
    if let Some(admin) = &config.admin {
        let app = AdminApp::new(live.clone(), reloader.clone(), &admin.token_env);
        let mut service = Service::new("admin".to_string(), app);
        service.add_tcp(&admin.address.to_string());
        server.add_service(service).add_dependency(&bootstrap);
    }
    server.add_service(background_service(
        "health checks",
        HealthChecker::new(live.clone()),
    ));
    server.add_service(background_service(
        "split control",
        SplitController::new(live),
    ));
    let reload = OnSignal::new(
        SignalKind::hangup(),
        "SIGHUP: reloading the config",
        move || {
            // A rejected file is logged by the reloader; the running config stays.
            let _ = reloader.reload();
        },
    );
    server.add_service(background_service("reload on SIGHUP", reload));
    let reopen = OnSignal::new(
        SignalKind::user_defined1(),
        "SIGUSR1: reopening access logs",
        crate::access_log::request_reopen,
    );
    server.add_service(background_service("reopen logs on SIGUSR1", reopen));
    log::info!(
        "gatehouse {} serving {} route(s) on {}{}",
        env!("CARGO_PKG_VERSION"),
        config.routes.len(),
        config
            .listeners
            .iter()
            .map(|l| format!("{} ({})", l.address, l.name))
            .collect::<Vec<_>>()
            .join(", "),
        config
            .admin
            .as_ref()
            .map(|a| format!("; admin API on {}", a.address))
            .unwrap_or_default()
    );
    server.run_forever();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_leaves_a_second_of_the_grace_period() {
        assert_eq!(drain_period(Duration::from_secs(5)), Duration::from_secs(4));
        assert_eq!(
            drain_period(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(drain_period(Duration::ZERO), Duration::ZERO);
    }
}

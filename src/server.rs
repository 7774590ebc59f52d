//! Builds the Pingora server from a validated config: process settings, the proxy service
//! on every listener, and the health-check task; then runs it.

use crate::config::Config;
use crate::proxy::Gatehouse;
use crate::reload::{ReloadOnSignal, Reloader};
use crate::routing::split::control::SplitController;
use crate::snapshot::Snapshot;
use crate::upstream::health::HealthChecker;
use pingora::server::configuration::Opt;
use pingora::server::Server;
use pingora::services::background::background_service;
use std::path::Path;
use std::sync::Arc;

/// How the process was asked to start.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Detach and run in the background.
    pub daemon: bool,
    /// Take the listening sockets over from a running old process.
    pub upgrade: bool,
}

/// Starts serving `config`, read from `path` (re-read on reload); returns only if Pingora
/// exits.
pub fn run(config: Config, path: &Path, options: RunOptions) {
    let opt = Opt {
        upgrade: options.upgrade,
        daemon: options.daemon,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, config.server.to_pingora());
    server.bootstrap();

    let live = Snapshot::build(&config).live();
    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        Gatehouse::new(live.clone()),
        "gatehouse",
    );
    for listener in &config.listeners {
        proxy.add_tcp(&listener.address.to_string());
    }
    server.add_service(proxy);
    server.add_service(background_service(
        "health checks",
        HealthChecker::new(live.clone()),
    ));
    server.add_service(background_service(
        "split control",
        SplitController::new(live.clone()),
    ));
    let reloader = Arc::new(Reloader::new(path.to_path_buf(), live));
    server.add_service(background_service(
        "reload on SIGHUP",
        ReloadOnSignal::new(reloader),
    ));
    log::info!(
        "gatehouse {} serving {} route(s) on {}",
        env!("CARGO_PKG_VERSION"),
        config.routes.len(),
        config
            .listeners
            .iter()
            .map(|l| format!("{} ({})", l.address, l.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    server.run_forever();
}

//! Unix signals that act on the running proxy without stopping it: SIGHUP reloads the
//! config, SIGUSR1 reopens the access logs. (SIGQUIT, SIGTERM and SIGINT belong to
//! Pingora: upgrade, graceful stop, fast stop.)

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{signal, SignalKind};

/// Runs `action` each time `kind` arrives, until shutdown.
pub struct OnSignal {
    kind: SignalKind,
    /// Logged when the signal arrives, e.g. "SIGHUP: reloading the config".
    name: &'static str,
    action: Box<dyn Fn() + Send + Sync>,
}

impl OnSignal {
    pub fn new(
        kind: SignalKind,
        name: &'static str,
        action: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        OnSignal {
            kind,
            name,
            action: Box::new(action),
        }
    }
}

#[async_trait]
impl BackgroundService for OnSignal {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut signals = match signal(self.kind) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot listen for {}: {e}", self.name);
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                received = signals.recv() => {
                    if received.is_none() {
                        return;
                    }
                    log::info!("{}", self.name);
                    (self.action)();
                }
            }
        }
    }
}

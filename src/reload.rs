//! Hot reload: re-read the YAML file on SIGHUP (or `POST /reload` on the admin API) and
//! swap the new config in with one atomic `Arc` swap.
//!
//! An invalid file is rejected with the same messages as `gatehouse -t`, logged, and the
//! running config stays. Requests in flight finish on the config they started with.
//! Backends and splits that did not change keep their state (see `snapshot`). Listeners
//! and process settings cannot change without new sockets: such a change is reported and
//! left to a graceful upgrade (`gatehouse -u`).

use crate::config::{self, ConfigError};
use crate::snapshot::{Live, Snapshot};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// What a successful reload did.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub version: u64,
    /// Changes that were not applied because they need an upgrade.
    pub needs_upgrade: Vec<String>,
}

/// Re-reads the config file and swaps it in.
pub struct Reloader {
    path: PathBuf,
    live: Live,
    /// One reload at a time.
    lock: Mutex<()>,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
}

impl Reloader {
    pub fn new(path: PathBuf, live: Live) -> Self {
        Reloader {
            path,
            live,
            lock: Mutex::new(()),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// Counts and logs a refused reload; the running config stays.
    fn rejected(&self, e: ConfigError) -> ConfigError {
        self.failed.fetch_add(1, Relaxed);
        crate::metrics::metrics()
            .reloads
            .with_label_values(&["failed"])
            .inc();
        log::error!("reload rejected, the running config stays: {e}");
        e
    }

    pub fn reload(&self) -> Result<Reloaded, ConfigError> {
        let _one_at_a_time = match self.lock.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let config = config::load(&self.path).map_err(|e| self.rejected(e))?;
        let old = self.live.load_full();
        let mut needs_upgrade = Vec::new();
        let listeners = |c: &config::Config| {
            c.listeners
                .iter()
                .map(|l| (l.name.clone(), l.address))
                .collect::<Vec<_>>()
        };
        if listeners(&config) != listeners(&old.config) {
            needs_upgrade.push("listeners".to_string());
        }
        if config.server != old.config.server {
            needs_upgrade.push("server".to_string());
        }
        let mut next = Snapshot::build_after(&config, Some(&old)).map_err(|e| self.rejected(e))?;
        if !needs_upgrade.is_empty() {
            // Keep what is bound and running; the rest of the file applies now.
            next.config.listeners = old.config.listeners.clone();
            next.config.server = old.config.server.clone();
            log::warn!(
                "reload: changes to {} need new sockets or a new process and were not applied; use a graceful upgrade (gatehouse -u, see README)",
                needs_upgrade.join(" and ")
            );
        }
        if let Err(source) = next.open_access_log(Some(&old)) {
            let path = config.access_log.map(|l| l.path).unwrap_or_default();
            return Err(self.rejected(ConfigError::AccessLog { path, source }));
        }
        let version = next.version;
        self.live.store(Arc::new(next));
        self.succeeded.fetch_add(1, Relaxed);
        crate::metrics::metrics()
            .reloads
            .with_label_values(&["ok"])
            .inc();
        log::info!(
            "reload: config version {version} is live ({})",
            self.path.display()
        );
        Ok(Reloaded {
            version,
            needs_upgrade,
        })
    }
}

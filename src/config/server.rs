//! `server:` — the Pingora process settings, kept in the one file and handed to Pingora's
//! `ServerConf` in code, so operators never see a second file.

use super::errors::Problems;
use super::values::Duration;
use pingora::server::configuration::ServerConf;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Worker threads of the proxy service.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Where a daemon writes its pid.
    #[serde(default = "default_pid_file")]
    pub pid_file: String,
    /// The socket over which a new process takes the listeners of the old one (`-u`).
    #[serde(default = "default_upgrade_sock")]
    pub upgrade_sock: String,
    /// Where a daemon writes its log (stderr when unset).
    #[serde(default)]
    pub error_log: Option<String>,
    /// Drop privileges to this user / group after binding (daemon mode).
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// After SIGQUIT or SIGTERM: how long the old process keeps accepting before it stops.
    #[serde(default)]
    pub grace_period: Option<Duration>,
    /// Then: how long in-flight requests get to finish before the process exits.
    #[serde(default)]
    pub graceful_shutdown_timeout: Option<Duration>,
    /// Idle upstream connections kept for reuse, per worker thread.
    #[serde(default = "default_keepalive_pool")]
    pub upstream_keepalive_pool_size: usize,
    /// Let idle worker threads steal work from busy ones.
    #[serde(default = "default_true")]
    pub work_stealing: bool,
}

fn default_threads() -> usize {
    1
}
fn default_pid_file() -> String {
    "/tmp/gatehouse.pid".into()
}
fn default_upgrade_sock() -> String {
    "/tmp/gatehouse-upgrade.sock".into()
}
fn default_keepalive_pool() -> usize {
    128
}
fn default_true() -> bool {
    true
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            threads: default_threads(),
            pid_file: default_pid_file(),
            upgrade_sock: default_upgrade_sock(),
            error_log: None,
            user: None,
            group: None,
            grace_period: None,
            graceful_shutdown_timeout: None,
            upstream_keepalive_pool_size: default_keepalive_pool(),
            work_stealing: true,
        }
    }
}

impl ServerSection {
    pub fn validate(&self, problems: &mut Problems) {
        if !(1..=1024).contains(&self.threads) {
            problems.add(
                "server.threads",
                format!("must be 1..=1024 (got {})", self.threads),
            );
        }
        if self.pid_file.is_empty() {
            problems.add("server.pid_file", "must not be empty");
        }
        if self.upgrade_sock.is_empty() {
            problems.add("server.upgrade_sock", "must not be empty");
        }
    }

    /// The Pingora settings these stand for.
    pub fn to_pingora(&self) -> ServerConf {
        ServerConf {
            threads: self.threads,
            pid_file: self.pid_file.clone(),
            upgrade_sock: self.upgrade_sock.clone(),
            error_log: self.error_log.clone(),
            user: self.user.clone(),
            group: self.group.clone(),
            grace_period_seconds: self.grace_period.map(|d| d.get().as_secs()),
            graceful_shutdown_timeout_seconds: self
                .graceful_shutdown_timeout
                .map(|d| d.get().as_secs()),
            upstream_keepalive_pool_size: self.upstream_keepalive_pool_size,
            work_stealing: self.work_stealing,
            ..ServerConf::default()
        }
    }
}

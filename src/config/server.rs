//! `server:` — the Pingora process settings, kept in the one file and handed to Pingora's
//! `ServerConf` in code, so operators never see a second file.

use super::errors::Problems;
use super::values::Duration;
use pingora::server::configuration::ServerConf;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// After SIGQUIT (upgrade) or SIGTERM: how long the old process goes on serving before
    /// it shuts down. Pingora waits this long even when idle; its own default is 5 minutes.
    #[serde(default = "default_grace_period")]
    pub grace_period: Duration,
    /// Then: how long in-flight requests get to finish before the process exits.
    #[serde(default = "default_graceful_shutdown_timeout")]
    pub graceful_shutdown_timeout: Duration,
    /// Idle upstream connections kept for reuse, per worker thread.
    #[serde(default = "default_keepalive_pool")]
    pub upstream_keepalive_pool_size: usize,
    /// Let idle worker threads steal work from busy ones (Pingora's default). Off saves
    /// 2-5% CPU per request in `make bench-load`, but Pingora 0.9's per-thread runtimes
    /// then lose some upstream connection reuse with 2 or more threads (see
    /// benches/README.md), so it stays on.
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
fn default_grace_period() -> Duration {
    Duration::from_secs(5)
}
fn default_graceful_shutdown_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_true() -> bool {
    true
}
fn default_keepalive_pool() -> usize {
    128
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
            grace_period: default_grace_period(),
            graceful_shutdown_timeout: default_graceful_shutdown_timeout(),
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
            grace_period_seconds: Some(self.grace_period.get().as_secs()),
            graceful_shutdown_timeout_seconds: Some(self.graceful_shutdown_timeout.get().as_secs()),
            upstream_keepalive_pool_size: self.upstream_keepalive_pool_size,
            work_stealing: self.work_stealing,
            // A daemon's launcher exits only once the new process serves, so that a
            // graceful upgrade (systemd ExecReload) completes when the handoff is done.
            daemon_wait_for_ready: true,
            daemon_ready_timeout_seconds: std::num::NonZeroU64::new(60),
            ..ServerConf::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pingora_gets_our_defaults_not_its_own() {
        let conf = ServerSection::default().to_pingora();
        // Pingora alone would wait 5 minutes after SIGTERM.
        assert_eq!(conf.grace_period_seconds, Some(5));
        assert_eq!(conf.graceful_shutdown_timeout_seconds, Some(5));
        assert_eq!(conf.pid_file, "/tmp/gatehouse.pid");
        assert!(conf.work_stealing);
    }

    #[test]
    fn durations_are_handed_over_in_seconds() {
        let section: ServerSection = serde_yaml::from_str(
            "{ threads: 4, grace_period: 30s, graceful_shutdown_timeout: 1m }",
        )
        .expect("valid");
        let conf = section.to_pingora();
        assert_eq!(conf.threads, 4);
        assert_eq!(conf.grace_period_seconds, Some(30));
        assert_eq!(conf.graceful_shutdown_timeout_seconds, Some(60));
    }
}

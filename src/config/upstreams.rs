//! `upstreams:` — named pools of backends: balancing, health checks (active and passive),
//! timeouts and retries.

use super::errors::Problems;
use super::values::{Address, Duration, HeaderName};
use serde::Deserialize;
use std::collections::HashSet;

/// The largest weight a backend may have; weights are relative integers.
pub const MAX_WEIGHT: u32 = 1000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    pub backends: Vec<BackendSection>,
    #[serde(default)]
    pub balance: Balance,
    /// With `balance: hash`: where the key comes from.
    #[serde(default)]
    pub hash_key: Option<HashKeySection>,
    #[serde(default)]
    pub health: Option<HealthSection>,
    #[serde(default)]
    pub passive: PassiveSection,
    #[serde(default)]
    pub timeouts: TimeoutsSection,
    /// How many more backends to try when connecting to one fails.
    #[serde(default = "default_retries")]
    pub retries: usize,
}

fn default_retries() -> usize {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    pub address: Address,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Smooth weighted round robin.
    #[default]
    RoundRobin,
    /// Fewest requests in flight, relative to weight.
    LeastConn,
    /// Consistent hash of the client IP.
    IpHash,
    /// Consistent hash of a header or cookie named by `hash_key`.
    Hash,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashKeySection {
    #[serde(default)]
    pub header: Option<HeaderName>,
    #[serde(default)]
    pub cookie: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// An HTTP check; without it the check is a TCP connect.
    #[serde(default)]
    pub http: Option<HttpCheckSection>,
    #[serde(default = "default_interval")]
    pub interval: Duration,
    #[serde(default = "default_check_timeout")]
    pub timeout: Duration,
    /// Consecutive successes that bring a down backend back.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures that take a backend out.
    #[serde(default = "default_fall")]
    pub fall: u32,
}

fn default_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_check_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheckSection {
    pub path: String,
    #[serde(default = "default_expect")]
    pub expect: u16,
    /// Host header of the check request (default: `localhost`).
    #[serde(default)]
    pub host: Option<String>,
}

fn default_expect() -> u16 {
    200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassiveSection {
    /// Consecutive failed requests (connect errors, timeouts) that take a backend out;
    /// 0 turns passive health off.
    #[serde(default = "default_max_fails")]
    pub max_fails: u32,
    /// How long it stays out before it is tried again.
    #[serde(default = "default_cooldown")]
    pub cooldown: Duration,
}

fn default_max_fails() -> u32 {
    3
}
fn default_cooldown() -> Duration {
    Duration::from_secs(10)
}

impl Default for PassiveSection {
    fn default() -> Self {
        PassiveSection {
            max_fails: default_max_fails(),
            cooldown: default_cooldown(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSection {
    #[serde(default = "default_connect")]
    pub connect: Duration,
    #[serde(default = "default_read")]
    pub read: Duration,
    #[serde(default = "default_write")]
    pub write: Duration,
    /// How long an unused upstream connection stays in the pool.
    #[serde(default = "default_idle")]
    pub idle: Duration,
}

fn default_connect() -> Duration {
    Duration::from_secs(2)
}
fn default_read() -> Duration {
    Duration::from_secs(60)
}
fn default_write() -> Duration {
    Duration::from_secs(60)
}
fn default_idle() -> Duration {
    Duration::from_secs(60)
}

impl Default for TimeoutsSection {
    fn default() -> Self {
        TimeoutsSection {
            connect: default_connect(),
            read: default_read(),
            write: default_write(),
            idle: default_idle(),
        }
    }
}

impl UpstreamSection {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.backends.is_empty() {
            problems.add(
                format!("{path}.backends"),
                "an upstream needs at least one backend, e.g. `- { address: \"127.0.0.1:8000\" }`",
            );
        }
        let mut seen = HashSet::new();
        for (i, backend) in self.backends.iter().enumerate() {
            if !(1..=MAX_WEIGHT).contains(&backend.weight) {
                problems.add(
                    format!("{path}.backends[{i}].weight"),
                    format!(
                        "must be 1..={MAX_WEIGHT} (got {}); remove the backend to stop sending it traffic",
                        backend.weight
                    ),
                );
            }
            if !seen.insert(backend.address) {
                problems.add(
                    format!("{path}.backends[{i}].address"),
                    format!(
                        "duplicate backend {}; give it a higher weight instead",
                        backend.address
                    ),
                );
            }
        }
        match (&self.balance, &self.hash_key) {
            (Balance::Hash, None) => problems.add(
                format!("{path}.balance"),
                "`balance: hash` needs `hash_key: { header: NAME }` or `hash_key: { cookie: NAME }`",
            ),
            (Balance::Hash, Some(key)) => {
                if key.header.is_some() == key.cookie.is_some() {
                    problems.add(
                        format!("{path}.hash_key"),
                        "give exactly one of `header` or `cookie`",
                    );
                }
                if key.cookie.as_deref() == Some("") {
                    problems.add(format!("{path}.hash_key.cookie"), "must not be empty");
                }
            }
            (_, Some(_)) => problems.add(
                format!("{path}.hash_key"),
                "only used with `balance: hash`; remove it or set `balance: hash`",
            ),
            _ => {}
        }
        if let Some(health) = &self.health {
            health.validate(&format!("{path}.health"), problems);
        }
        if self.passive.max_fails > 0 && self.passive.cooldown.get().is_zero() {
            problems.add(format!("{path}.passive.cooldown"), "must be more than 0s");
        }
        let t = &self.timeouts;
        for (key, value) in [
            ("connect", t.connect),
            ("read", t.read),
            ("write", t.write),
            ("idle", t.idle),
        ] {
            if value.get().is_zero() {
                problems.add(format!("{path}.timeouts.{key}"), "must be more than 0s");
            }
        }
        if self.retries > 10 {
            problems.add(
                format!("{path}.retries"),
                format!("must be 0..=10 (got {})", self.retries),
            );
        }
    }
}

impl HealthSection {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.interval.get() < std::time::Duration::from_millis(10) {
            problems.add(format!("{path}.interval"), "must be at least 10ms");
        }
        if self.timeout.get().is_zero() {
            problems.add(format!("{path}.timeout"), "must be more than 0s");
        }
        if self.rise == 0 {
            problems.add(format!("{path}.rise"), "must be at least 1");
        }
        if self.fall == 0 {
            problems.add(format!("{path}.fall"), "must be at least 1");
        }
        if let Some(http) = &self.http {
            if !http.path.starts_with('/') {
                problems.add(
                    format!("{path}.http.path"),
                    format!("must start with / (got {:?})", http.path),
                );
            }
            if !(100..=599).contains(&http.expect) {
                problems.add(
                    format!("{path}.http.expect"),
                    format!("must be an HTTP status 100..=599 (got {})", http.expect),
                );
            }
        }
    }
}

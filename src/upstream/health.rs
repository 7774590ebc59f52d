//! Active health checks: a TCP connect or an HTTP request to every backend of every
//! upstream that asks for it, on its interval, with rise/fall thresholds.
//!
//! The probes themselves are Pingora's (`TcpHealthCheck`, `HttpHealthCheck`); the schedule
//! and the thresholds are ours, so that health state lives on our `Backend` next to the
//! passive state and in-flight count that balancing reads. One background task checks the
//! upstreams of the live config, so a config swap changes what it checks on its next round.

use super::backend::{Backend, HealthChange};
use super::Upstream;
use crate::config::upstreams::HealthSection;
use crate::snapshot::Live;
use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How one upstream's backends are checked.
pub struct Probe {
    check: Box<dyn HealthCheck + Send + Sync>,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    description: String,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("check", &self.description)
            .field("interval", &self.interval)
            .finish()
    }
}

impl Probe {
    pub fn from_config(section: &HealthSection, upstream: &str) -> Self {
        let timeout = section.timeout.get();
        let (check, description): (Box<dyn HealthCheck + Send + Sync>, String) = match &section.http
        {
            Some(http) => {
                let host = http.host.clone().unwrap_or_else(|| "localhost".to_string());
                let mut check = HttpHealthCheck::new(&host, false);
                match RequestHeader::build("GET", http.path.as_bytes(), None) {
                    Ok(mut req) => {
                        if req.insert_header("Host", host.as_str()).is_ok() {
                            check.req = req;
                        }
                    }
                    Err(e) => log::error!(
                        "upstream {upstream}: health check path {:?} unusable ({e}); checking /",
                        http.path
                    ),
                }
                let expect = http.expect;
                check.validator = Some(Box::new(move |resp| {
                    if resp.status.as_u16() == expect {
                        Ok(())
                    } else {
                        pingora::Error::e_explain(
                            pingora::ErrorType::CustomCode(
                                "unexpected health check status",
                                resp.status.as_u16(),
                            ),
                            format!("expected {expect}"),
                        )
                    }
                }));
                check.peer_template.options.connection_timeout = Some(timeout);
                check.peer_template.options.read_timeout = Some(timeout);
                (
                    Box::new(check),
                    format!("GET {} expecting {}", http.path, http.expect),
                )
            }
            None => {
                let mut check = TcpHealthCheck::new();
                check.peer_template.options.connection_timeout = Some(timeout);
                (check, "TCP connect".to_string())
            }
        };
        Probe {
            check,
            interval: section.interval.get(),
            timeout,
            rise: section.rise,
            fall: section.fall,
            description,
        }
    }

    /// Checks one backend once; a check that outlives the timeout fails.
    async fn check(&self, backend: &Backend) -> Result<(), String> {
        let target = pingora::lb::Backend {
            addr: PeerAddr::Inet(backend.addr),
            weight: 1,
            ext: Default::default(),
        };
        match tokio::time::timeout(self.timeout, self.check.check(&target)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}

/// Checks every backend of `upstream` once, concurrently, and logs what changed.
async fn check_upstream(upstream: &Upstream, probe: &Probe) {
    let checks = upstream.backends.iter().map(|backend| async move {
        let result = probe.check(backend).await;
        let change = backend.record_probe(result.is_ok(), probe.rise, probe.fall);
        match (change, result) {
            (HealthChange::WentDown, Err(why)) => log::warn!(
                "upstream {}: backend {} is down ({}: {why})",
                upstream.name,
                backend.addr,
                probe.description
            ),
            (HealthChange::CameUp, _) => log::info!(
                "upstream {}: backend {} is up again",
                upstream.name,
                backend.addr
            ),
            _ => {}
        }
    });
    futures::future::join_all(checks).await;
}

/// The background task that runs the probes of the live config.
pub struct HealthChecker {
    live: Live,
}

impl HealthChecker {
    pub fn new(live: Live) -> Self {
        HealthChecker { live }
    }
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Next check time per upstream name.
        let mut due: HashMap<String, Instant> = HashMap::new();
        loop {
            let snapshot = Arc::clone(&self.live.load());
            let now = Instant::now();
            let mut wake = now + Duration::from_secs(1);
            let mut rounds = Vec::new();
            for upstream in snapshot.upstreams.iter() {
                let Some(probe) = &upstream.probe else {
                    continue;
                };
                let when = due.entry(upstream.name.clone()).or_insert(now);
                if *when <= now {
                    rounds.push(check_upstream(upstream, probe));
                    *when = now + probe.interval;
                }
                wake = wake.min(*when);
            }
            futures::future::join_all(rounds).await;
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }
}

//! The runtime view of one config file: routes, upstreams and policies, built once from a
//! validated [`Config`] and shared read-only by every request.
//!
//! The live snapshot sits behind an atomically swapped `Arc` ([`Live`]): each request takes
//! its own `Arc` when it starts, so it sees one config from start to end even if a new one
//! is swapped in meanwhile. A snapshot built to replace another keeps what did not change:
//! backends (with their health, passive record and in-flight count) and splits (with their
//! weights, ramp and rollback windows).

use crate::access_log::AccessLog;
use crate::config::{Config, ConfigError};
use crate::forwarding::Forwarding;
use crate::metrics::RouteMetrics;
use crate::rewrite::HeaderRewrite;
use crate::routing::split::Split;
use crate::routing::{Route, Router};
use crate::upstream::UpstreamSet;
use crate::waf::profile::WafProfile;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Instant;

/// The config in force, swappable without blocking requests.
pub type Live = Arc<ArcSwap<Snapshot>>;

#[derive(Debug)]
pub struct Snapshot {
    /// 1 for the config the process started with, +1 per successful reload.
    pub version: u64,
    pub router: Router,
    pub upstreams: UpstreamSet,
    pub forwarding: Forwarding,
    /// Taken off every upstream response.
    pub hide_headers: HeaderRewrite,
    pub max_request_body: u64,
    /// The config this was built from (for reloads and status).
    pub config: Config,
    /// Set by [`Snapshot::open_access_log`].
    pub access_log: Option<Arc<AccessLog>>,
}

impl Snapshot {
    /// Builds from a validated config. Every route's upstream exists (validation checked).
    /// Fails only when a WAF profile's rule files cannot be read or parsed.
    pub fn build(config: &Config) -> Result<Self, ConfigError> {
        Self::build_after(config, None)
    }

    /// Builds the successor of `previous`, keeping its unchanged backends and splits.
    /// WAF profiles are compiled anew, so edited rule files take effect on reload.
    pub fn build_after(config: &Config, previous: Option<&Snapshot>) -> Result<Self, ConfigError> {
        let wafs = compile_waf_profiles(config)?;
        for profile in &wafs {
            for problem in &profile.report().problems {
                log::warn!("waf profile {}: {problem}", profile.name);
            }
        }
        let upstreams = UpstreamSet::from_config(&config.upstreams, previous.map(|p| &p.upstreams));
        let now = Instant::now();
        let routes = config
            .routes
            .iter()
            .filter_map(|section| {
                let upstream = upstreams.index_of(&section.upstream)?;
                let split = section.split.as_ref().and_then(|s| {
                    let kept = previous
                        .and_then(|p| p.router.named(&section.name))
                        .and_then(|r| r.split.clone())
                        .filter(|old| old.unchanged_by(s, &upstreams));
                    kept.or_else(|| {
                        Split::from_config(&section.name, s, &section.upstream, &upstreams, now)
                            .map(Arc::new)
                    })
                });
                let mut targets = vec![(upstream, section.upstream.as_str())];
                for variant in split.iter().flat_map(|s| s.variants.iter()) {
                    if !targets.iter().any(|(i, _)| *i == variant.upstream) {
                        targets.push((variant.upstream, variant.name.as_str()));
                    }
                }
                let mut metrics = RouteMetrics::new(&section.name, &targets);
                if section.waf.is_some() {
                    metrics = metrics.with_waf(&section.name);
                }
                let mut route = Route::from_config(section, upstream, split, metrics);
                route.waf = section
                    .waf
                    .as_ref()
                    .and_then(|name| wafs.iter().find(|p| &p.name == name).cloned());
                Some(route)
            })
            .collect();
        Ok(Snapshot {
            version: previous.map_or(1, |p| p.version + 1),
            router: Router::new(routes),
            upstreams,
            forwarding: Forwarding::new(config.trusted_proxies.iter().map(|c| c.0).collect()),
            hide_headers: HeaderRewrite::removing(config.hide_headers.iter().map(|h| h.0.clone())),
            max_request_body: config.max_request_body.0,
            config: config.clone(),
            access_log: None,
        })
    }

    /// Opens the configured access log, or keeps `previous`'s when its settings did not
    /// change (its writer goes on; a changed one is replaced and the old flushed).
    pub fn open_access_log(&mut self, previous: Option<&Snapshot>) -> std::io::Result<()> {
        let Some(section) = &self.config.access_log else {
            self.access_log = None;
            return Ok(());
        };
        let kept = previous
            .and_then(|p| p.access_log.clone())
            .filter(|log| log.section == *section);
        self.access_log = match kept {
            Some(log) => Some(log),
            None => Some(Arc::new(AccessLog::open(section)?)),
        };
        Ok(())
    }

    pub fn live(self) -> Live {
        Arc::new(ArcSwap::from_pointee(self))
    }
}

/// Compiles every WAF profile the config defines. What the engine cannot run is in each
/// profile's report (by rule id and file line); it is loaded without it, or without that
/// part.
pub fn compile_waf_profiles(config: &Config) -> Result<Vec<Arc<WafProfile>>, ConfigError> {
    let mut out = Vec::new();
    let mut compiled = Vec::new();
    for (name, section) in &config.waf {
        let profile =
            WafProfile::compile_shared(name, section, &mut compiled).map_err(ConfigError::Waf)?;
        out.push(Arc::new(profile));
    }
    Ok(out)
}

//! `routes[].split:` — weighted canary and A/B routing: variants and weights, stickiness,
//! tester overrides, and the automatic rollback and ramp of a canary.

use super::errors::Problems;
use super::values::{Cidr, Duration, HeaderName, Percent};
use serde::Deserialize;
use std::collections::HashSet;

/// Either the canary form (`canary` + `weight` percent; the route's `upstream` is the
/// baseline) or the general form (`variants`, relative integer weights).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSection {
    #[serde(default)]
    pub canary: Option<String>,
    /// Percent of traffic to the canary, 0..=100.
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub variants: Option<Vec<VariantSection>>,
    #[serde(default)]
    pub sticky: Option<StickySection>,
    #[serde(default, rename = "override")]
    pub force: Option<OverrideSection>,
    /// A response header naming the variant served (off unless set).
    #[serde(default)]
    pub expose_header: Option<HeaderName>,
    #[serde(default)]
    pub rollback: Option<RollbackSection>,
    #[serde(default)]
    pub ramp: Option<RampSection>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSection {
    pub upstream: String,
    /// Relative weight, 0..=10000.
    pub weight: u32,
}

/// Exactly one of the three.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickySection {
    #[serde(default)]
    pub cookie: Option<CookieSection>,
    #[serde(default)]
    pub header: Option<HeaderName>,
    #[serde(default)]
    pub client_ip: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieSection {
    #[serde(default = "default_cookie_name")]
    pub name: String,
    #[serde(default = "default_max_age")]
    pub max_age: Duration,
    #[serde(default)]
    pub secure: bool,
    #[serde(default = "default_true")]
    pub http_only: bool,
    #[serde(default)]
    pub same_site: SameSite,
    #[serde(default = "default_path")]
    pub path: String,
}

fn default_cookie_name() -> String {
    "gh_variant".into()
}
fn default_max_age() -> Duration {
    Duration::from_secs(30 * 86_400)
}
fn default_true() -> bool {
    true
}
fn default_path() -> String {
    "/".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SameSite {
    Strict,
    #[default]
    Lax,
    None,
}

/// Where a tester may force a variant: value `always`/`never` (canary form) or a variant's
/// upstream name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSection {
    #[serde(default)]
    pub header: Option<HeaderName>,
    #[serde(default)]
    pub cookie: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    /// Only clients in these networks may override; omit to let anyone.
    #[serde(default)]
    pub from: Option<Vec<Cidr>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyMeasure {
    #[default]
    P90,
    Mean,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackSection {
    /// The sliding window both sides are compared over.
    #[serde(default = "default_window")]
    pub window: Duration,
    /// Requests each side needs in the window before any verdict.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// Roll back when the canary's error rate exceeds the baseline's by more than this.
    #[serde(default = "default_error_margin")]
    pub max_error_rate_increase: Percent,
    /// Roll back when the canary's latency exceeds the baseline's by this factor.
    #[serde(default = "default_latency_ratio")]
    pub max_latency_ratio: f64,
    #[serde(default)]
    pub latency: LatencyMeasure,
}

fn default_window() -> Duration {
    Duration::from_secs(60)
}
fn default_min_requests() -> u64 {
    100
}
fn default_error_margin() -> Percent {
    Percent(5.0)
}
fn default_latency_ratio() -> f64 {
    1.5
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RampSection {
    /// Canary weights in percent, rising; the first is used from the start.
    pub steps: Vec<u32>,
    /// How long each step holds (healthy) before the next.
    pub hold: Duration,
}

impl SplitSection {
    pub fn validate(
        &self,
        path: &str,
        route_upstream: &str,
        upstreams: &HashSet<&str>,
        problems: &mut Problems,
    ) {
        let check_upstream = |key: String, name: &str, problems: &mut Problems| {
            if !upstreams.contains(name) {
                problems.add(key, format!("no upstream named {name:?}"));
            }
        };
        match (&self.canary, &self.variants) {
            (Some(canary), None) => {
                check_upstream(format!("{path}.canary"), canary, problems);
                if canary == route_upstream {
                    problems.add(
                        format!("{path}.canary"),
                        "the canary must differ from the route's upstream (the baseline)",
                    );
                }
                match self.weight {
                    None => problems.add(
                        format!("{path}.canary"),
                        "give the canary's share as `weight: PERCENT` (0..=100)",
                    ),
                    Some(w) if w > 100 => problems.add(
                        format!("{path}.weight"),
                        format!("must be a percentage 0..=100 (got {w})"),
                    ),
                    Some(_) => {}
                }
            }
            (None, Some(variants)) => {
                if self.weight.is_some() {
                    problems.add(
                        format!("{path}.weight"),
                        "`weight` goes with `canary`; with `variants` each variant has its own",
                    );
                }
                if variants.len() < 2 {
                    problems.add(format!("{path}.variants"), "a split needs at least two variants");
                }
                let mut seen = HashSet::new();
                for (i, v) in variants.iter().enumerate() {
                    check_upstream(format!("{path}.variants[{i}].upstream"), &v.upstream, problems);
                    if !seen.insert(v.upstream.as_str()) {
                        problems.add(
                            format!("{path}.variants[{i}].upstream"),
                            format!("{:?} is listed twice", v.upstream),
                        );
                    }
                    if v.weight > 10_000 {
                        problems.add(
                            format!("{path}.variants[{i}].weight"),
                            format!("must be 0..=10000 (got {})", v.weight),
                        );
                    }
                }
                if variants.iter().all(|v| v.weight == 0) {
                    problems.add(
                        format!("{path}.variants"),
                        "at least one variant needs a weight above 0",
                    );
                }
                if self.rollback.is_some() || self.ramp.is_some() {
                    problems.add(
                        format!("{path}.variants"),
                        "rollback and ramp watch a canary against its baseline: use `canary` + `weight`",
                    );
                }
            }
            _ => problems.add(
                path,
                "give either `canary: UPSTREAM` with `weight: PERCENT`, or `variants: [{ upstream, weight }, ...]`",
            ),
        }
        if let Some(sticky) = &self.sticky {
            let given = usize::from(sticky.cookie.is_some())
                + usize::from(sticky.header.is_some())
                + usize::from(sticky.client_ip);
            if given != 1 {
                problems.add(
                    format!("{path}.sticky"),
                    "give exactly one of `cookie`, `header` or `client_ip: true`",
                );
            }
            if let Some(cookie) = &sticky.cookie {
                if !is_cookie_token(&cookie.name) {
                    problems.add(
                        format!("{path}.sticky.cookie.name"),
                        format!("{:?} is not a valid cookie name", cookie.name),
                    );
                }
                if cookie.same_site == SameSite::None && !cookie.secure {
                    problems.add(
                        format!("{path}.sticky.cookie.same_site"),
                        "browsers drop `SameSite=None` cookies without `secure: true`",
                    );
                }
                if !cookie.path.starts_with('/') || cookie.path.contains([';', ' ']) {
                    problems.add(
                        format!("{path}.sticky.cookie.path"),
                        format!("must be a path such as \"/\" (got {:?})", cookie.path),
                    );
                }
            }
        }
        if let Some(force) = &self.force {
            if force.header.is_none() && force.cookie.is_none() && force.query.is_none() {
                problems.add(
                    format!("{path}.override"),
                    "give at least one of `header`, `cookie` or `query`",
                );
            }
        }
        if let Some(rollback) = &self.rollback {
            let p = format!("{path}.rollback");
            if rollback.window.get() < std::time::Duration::from_millis(100) {
                problems.add(format!("{p}.window"), "must be at least 100ms");
            }
            if rollback.min_requests == 0 {
                problems.add(format!("{p}.min_requests"), "must be at least 1");
            }
            if rollback.max_latency_ratio.is_nan() || rollback.max_latency_ratio < 1.0 {
                problems.add(
                    format!("{p}.max_latency_ratio"),
                    format!("must be 1.0 or more (got {})", rollback.max_latency_ratio),
                );
            }
        }
        if let Some(ramp) = &self.ramp {
            let p = format!("{path}.ramp");
            if ramp.steps.is_empty() {
                problems.add(
                    format!("{p}.steps"),
                    "give at least one step, e.g. [5, 25, 50, 100]",
                );
            }
            if ramp.steps.windows(2).any(|w| w[0] >= w[1]) {
                problems.add(format!("{p}.steps"), "steps must rise");
            }
            if ramp.steps.iter().any(|s| *s > 100) {
                problems.add(format!("{p}.steps"), "steps are percentages 0..=100");
            }
            if ramp.hold.get().is_zero() {
                problems.add(format!("{p}.hold"), "must be more than 0s");
            }
        }
    }
}

/// RFC 6265 cookie-name: a token.
fn is_cookie_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

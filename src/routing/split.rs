//! Weighted splits between upstreams: canary releases and A/B/C tests.
//!
//! Every request falls into one of 10,000 buckets: from its sticky key (a cookie Gatehouse
//! sets on first assignment, a header such as a user id, or the client IP), or at random
//! without stickiness. Variants own consecutive ranges of buckets in proportion to their
//! weights, the canary's range first, so that ramping a canary from 10% to 20% moves users
//! only from the baseline to the canary, never back. Testers can force a variant by header,
//! cookie or query parameter, optionally only from trusted networks.

pub mod control;
pub mod window;

use crate::config::split::{SameSite, SplitSection};
use crate::metrics::metrics;
use crate::upstream::UpstreamSet;
use arc_swap::ArcSwap;
use control::Control;
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use prometheus::IntCounter;
use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use window::Window;

/// Buckets a request can fall into; weights are mapped onto them.
pub const BUCKETS: u32 = 10_000;

/// One side of a split.
#[derive(Debug)]
pub struct Variant {
    /// The upstream's name, also the variant's name in overrides, headers and metrics.
    pub name: String,
    pub upstream: usize,
    /// Requests assigned here (a Prometheus counter).
    pub assigned: IntCounter,
}

#[derive(Debug)]
enum Stickiness {
    None,
    Cookie { name: String, attributes: String },
    Header(HeaderName),
    ClientIp,
}

#[derive(Debug)]
struct Overrides {
    header: Option<HeaderName>,
    cookie: Option<String>,
    query: Option<String>,
    /// None: anyone may override.
    from: Option<Vec<IpNet>>,
}

/// The canary form's two variants, by index.
#[derive(Debug, Clone, Copy)]
pub struct CanaryPair {
    pub canary: usize,
    pub baseline: usize,
}

/// What a split decided for one request.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub variant: usize,
    /// A `Set-Cookie` value when this was the client's first assignment.
    pub set_cookie: Option<HeaderValue>,
}

/// What a split looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct SplitRequest<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    /// The client as the proxy sees it (after trusted-proxy resolution).
    pub client_ip: Option<IpAddr>,
}

pub struct Split {
    /// The route this split belongs to.
    pub route: String,
    /// In bucket-range order (the canary first in the canary form).
    pub variants: Vec<Variant>,
    weights: ArcSwap<Vec<u32>>,
    pub canary: Option<CanaryPair>,
    stickiness: Stickiness,
    overrides: Option<Overrides>,
    pub expose_header: Option<HeaderName>,
    windows: Vec<Window>,
    pub control: Option<Control>,
    /// The section this was built from, to tell whether a reload changed it.
    section: SplitSection,
}

impl std::fmt::Debug for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Split")
            .field("variants", &self.variants)
            .field("weights", &self.weights())
            .finish()
    }
}

impl Split {
    /// Builds from a validated section; `route_upstream` is the baseline of the canary
    /// form. `now` starts the rollback window and the ramp.
    pub fn from_config(
        route: &str,
        section: &SplitSection,
        route_upstream: &str,
        upstreams: &UpstreamSet,
        now: Instant,
    ) -> Option<Split> {
        let variant = |name: &str| {
            Some(Variant {
                name: name.to_string(),
                upstream: upstreams.index_of(name)?,
                assigned: metrics()
                    .split_assignments
                    .with_label_values(&[route, name]),
            })
        };
        let (variants, weights, canary) = match (&section.canary, &section.variants) {
            (Some(canary), _) => {
                let w = section.weight.unwrap_or(0).min(100);
                (
                    vec![variant(canary)?, variant(route_upstream)?],
                    vec![w, 100 - w],
                    Some(CanaryPair {
                        canary: 0,
                        baseline: 1,
                    }),
                )
            }
            (None, Some(list)) => (
                list.iter()
                    .map(|v| variant(&v.upstream))
                    .collect::<Option<Vec<_>>>()?,
                list.iter().map(|v| v.weight).collect(),
                None,
            ),
            (None, None) => return None,
        };
        let stickiness = match &section.sticky {
            None => Stickiness::None,
            Some(s) => match (&s.cookie, &s.header, s.client_ip) {
                (Some(c), _, _) => Stickiness::Cookie {
                    name: c.name.clone(),
                    attributes: cookie_attributes(c),
                },
                (None, Some(h), _) => Stickiness::Header(h.0.clone()),
                (None, None, true) => Stickiness::ClientIp,
                (None, None, false) => Stickiness::None,
            },
        };
        let overrides = section.force.as_ref().map(|o| Overrides {
            header: o.header.as_ref().map(|h| h.0.clone()),
            cookie: o.cookie.clone(),
            query: o.query.clone(),
            from: o
                .from
                .as_ref()
                .map(|list| list.iter().map(|c| c.0).collect()),
        });
        let window = section
            .rollback
            .as_ref()
            .map_or(Duration::from_secs(60), |r| r.window.get());
        let split = Split {
            route: route.to_string(),
            windows: variants.iter().map(|_| Window::new(window, now)).collect(),
            variants,
            weights: ArcSwap::from_pointee(weights),
            canary,
            stickiness,
            overrides,
            expose_header: section.expose_header.as_ref().map(|h| h.0.clone()),
            control: Control::from_config(section, now),
            section: section.clone(),
        };
        if let (Some(control), Some(_)) = (&split.control, split.canary) {
            if let Some(first) = control.initial_weight() {
                split.set_canary_weight(first);
            }
        }
        Some(split)
    }

    /// Whether a reloaded config may keep this split (and its weights, ramp and windows):
    /// same section, same upstreams.
    pub fn unchanged_by(&self, section: &SplitSection, upstreams: &UpstreamSet) -> bool {
        self.section == *section
            && self
                .variants
                .iter()
                .all(|v| upstreams.index_of(&v.name) == Some(v.upstream))
    }

    /// Current weights, in variant order.
    pub fn weights(&self) -> Vec<u32> {
        self.weights.load().as_ref().clone()
    }

    /// Sets every variant's weight (in variant order). Returns false when the count is
    /// wrong or no weight is above 0.
    pub fn set_weights(&self, weights: Vec<u32>) -> bool {
        if weights.len() != self.variants.len() || weights.iter().all(|w| *w == 0) {
            return false;
        }
        self.weights.store(Arc::new(weights));
        true
    }

    /// Sets the canary's share in percent (canary form only); new assignments follow at
    /// once. Returns false for a split without a canary.
    pub fn set_canary_weight(&self, percent: u32) -> bool {
        let Some(pair) = self.canary else {
            return false;
        };
        let p = percent.min(100);
        let mut weights = vec![0; self.variants.len()];
        weights[pair.canary] = p;
        weights[pair.baseline] = 100 - p;
        self.weights.store(Arc::new(weights));
        true
    }

    /// The canary's current share in percent, if this is a canary split.
    pub fn canary_weight(&self) -> Option<u32> {
        let pair = self.canary?;
        let weights = self.weights.load();
        let total: u32 = weights.iter().sum();
        (total > 0).then(|| weights[pair.canary] * 100 / total)
    }

    /// Chooses the variant for a request.
    pub fn assign(&self, req: &SplitRequest<'_>) -> Assignment {
        if let Some(variant) = self.forced(req) {
            self.variants[variant].assigned.inc();
            return Assignment {
                variant,
                set_cookie: None,
            };
        }
        let (bucket, set_cookie) = self.bucket(req);
        let variant = self.variant_for(bucket);
        self.variants[variant].assigned.inc();
        Assignment {
            variant,
            set_cookie,
        }
    }

    fn variant_for(&self, bucket: u32) -> usize {
        let weights = self.weights.load();
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        if total == 0 {
            return self.canary.map_or(0, |p| p.baseline);
        }
        let mut upper = 0u64;
        for (i, w) in weights.iter().enumerate() {
            upper += u64::from(*w);
            // Variant i owns buckets [lower, upper * BUCKETS / total).
            if u64::from(bucket) < upper * u64::from(BUCKETS) / total {
                return i;
            }
        }
        weights.len().saturating_sub(1)
    }

    fn bucket(&self, req: &SplitRequest<'_>) -> (u32, Option<HeaderValue>) {
        match &self.stickiness {
            Stickiness::None => (fastrand::u32(0..BUCKETS), None),
            Stickiness::Header(name) => match req.headers.get(name) {
                Some(v) if !v.is_empty() => (hash_bucket(v.as_bytes()), None),
                _ => (fastrand::u32(0..BUCKETS), None),
            },
            Stickiness::ClientIp => match req.client_ip {
                Some(IpAddr::V4(ip)) => (hash_bucket(&ip.octets()), None),
                Some(IpAddr::V6(ip)) => (hash_bucket(&ip.octets()), None),
                None => (fastrand::u32(0..BUCKETS), None),
            },
            Stickiness::Cookie { name, attributes } => {
                let existing = crate::upstream::cookie_value(req.headers, name)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|b| *b < BUCKETS);
                match existing {
                    Some(bucket) => (bucket, None),
                    None => {
                        let bucket = fastrand::u32(0..BUCKETS);
                        let cookie =
                            HeaderValue::from_str(&format!("{name}={bucket}{attributes}")).ok();
                        (bucket, cookie)
                    }
                }
            }
        }
    }

    fn forced(&self, req: &SplitRequest<'_>) -> Option<usize> {
        let o = self.overrides.as_ref()?;
        if let Some(from) = &o.from {
            let ip = req.client_ip?;
            if !from.iter().any(|net| net.contains(&ip)) {
                return None;
            }
        }
        let from_header = o
            .header
            .as_ref()
            .and_then(|h| req.headers.get(h))
            .map(|v| v.as_bytes());
        let from_cookie = o
            .cookie
            .as_deref()
            .and_then(|c| crate::upstream::cookie_value(req.headers, c));
        let from_query = o.query.as_deref().and_then(|q| query_value(req.query?, q));
        [from_header, from_cookie, from_query]
            .into_iter()
            .flatten()
            .find_map(|value| self.variant_named(value))
    }

    /// `always` / `never` in the canary form, or a variant's upstream name.
    fn variant_named(&self, value: &[u8]) -> Option<usize> {
        if let Some(pair) = self.canary {
            if value.eq_ignore_ascii_case(b"always") {
                return Some(pair.canary);
            }
            if value.eq_ignore_ascii_case(b"never") {
                return Some(pair.baseline);
            }
        }
        self.variants
            .iter()
            .position(|v| v.name.as_bytes() == value)
    }

    /// Feeds the rollback window of a variant with one finished request.
    pub fn record(&self, variant: usize, now: Instant, error: bool, latency: Duration) {
        if self.control.is_some() {
            if let Some(window) = self.windows.get(variant) {
                window.record(now, error, latency);
            }
        }
    }

    pub fn window(&self, variant: usize) -> Option<&Window> {
        self.windows.get(variant)
    }
}

fn cookie_attributes(c: &crate::config::split::CookieSection) -> String {
    let mut out = format!("; Max-Age={}; Path={}", c.max_age.get().as_secs(), c.path);
    if c.secure {
        out.push_str("; Secure");
    }
    if c.http_only {
        out.push_str("; HttpOnly");
    }
    out.push_str(match c.same_site {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::None => "; SameSite=None",
    });
    out
}

/// A stable bucket for a sticky key (FNV-1a: the same on every Gatehouse build).
fn hash_bucket(key: &[u8]) -> u32 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(key);
    u32::try_from(hasher.finish() % u64::from(BUCKETS)).unwrap_or(0)
}

/// The raw value of `name` in a query string (no decoding: override values are tokens).
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a [u8]> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_bytes())
}

#[cfg(test)]
mod tests;

//! Prometheus metrics, served as text on the admin listener's `/metrics`.
//!
//! Labels are names from the config (route, upstream, backend address, split variant),
//! never raw paths, so their number is bounded by the config. Per-request counters are
//! resolved to handles when a snapshot is built, so a request pays for atomic increments,
//! not label lookups. Gauges (health, in-flight, split weights, config version) are read
//! from the live snapshot at scrape time.

use crate::snapshot::Snapshot;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::LazyLock;

/// Status classes a request is counted under; `none`: no response was sent.
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    retries: IntCounterVec,
    pub split_assignments: IntCounterVec,
    pub split_rollbacks: IntCounterVec,
    pub reloads: IntCounterVec,
    pub waf_decisions: IntCounterVec,
    pub waf_rules: IntCounterVec,
    config_version: IntGauge,
    backend_up: IntGaugeVec,
    backend_healthy: IntGaugeVec,
    backend_in_flight: IntGaugeVec,
    split_weight: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(vec.clone()))
        .expect("metric registered once");
    vec
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let vec = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(vec.clone()))
        .expect("metric registered once");
    vec
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let latency = HistogramVec::new(
        HistogramOpts::new(
            "gatehouse_request_duration_seconds",
            "Time from the request head to the end of the response, by route.",
        )
        .buckets(vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]),
        &["route"],
    )
    .expect("valid metric definition");
    registry
        .register(Box::new(latency.clone()))
        .expect("metric registered once");
    let config_version = IntGauge::new(
        "gatehouse_config_version",
        "Version of the live config: 1 at start, +1 per successful reload.",
    )
    .expect("valid metric definition");
    registry
        .register(Box::new(config_version.clone()))
        .expect("metric registered once");
    Metrics {
        requests: counter(
            &registry,
            "gatehouse_requests_total",
            "Requests by route, upstream and status class (route and upstream `-`: no route matched).",
            &["route", "upstream", "class"],
        ),
        retries: counter(
            &registry,
            "gatehouse_upstream_retries_total",
            "Requests sent to another backend after one failed, by upstream.",
            &["upstream"],
        ),
        split_assignments: counter(
            &registry,
            "gatehouse_split_assignments_total",
            "Requests a split assigned to each variant.",
            &["route", "variant"],
        ),
        split_rollbacks: counter(
            &registry,
            "gatehouse_split_rollbacks_total",
            "Automatic canary rollbacks.",
            &["route"],
        ),
        reloads: counter(
            &registry,
            "gatehouse_config_reloads_total",
            "Config reloads by result (ok, failed).",
            &["result"],
        ),
        waf_decisions: counter(
            &registry,
            "gatehouse_waf_decisions_total",
            "WAF decisions by route and verdict (allow, block, detect, too_large).",
            &["route", "verdict"],
        ),
        waf_rules: counter(
            &registry,
            "gatehouse_waf_rule_matches_total",
            "Logged WAF rules that matched, by route and rule id.",
            &["route", "rule"],
        ),
        backend_up: gauge(
            &registry,
            "gatehouse_backend_up",
            "1 when a backend takes new requests (active and passive health both pass).",
            &["upstream", "backend"],
        ),
        backend_healthy: gauge(
            &registry,
            "gatehouse_backend_healthy",
            "1 when a backend passes its active health checks.",
            &["upstream", "backend"],
        ),
        backend_in_flight: gauge(
            &registry,
            "gatehouse_backend_in_flight",
            "Requests in flight to a backend.",
            &["upstream", "backend"],
        ),
        split_weight: gauge(
            &registry,
            "gatehouse_split_weight",
            "Current weight of each split variant.",
            &["route", "variant"],
        ),
        latency,
        config_version,
        registry,
    }
});

pub fn metrics() -> &'static Metrics {
    &METRICS
}

fn class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        500..=599 => 4,
        _ => 5,
    }
}

/// Per-request handles for one route, resolved when the snapshot is built.
#[derive(Debug)]
pub struct RouteMetrics {
    /// (upstream index, counters by status class)
    by_upstream: Vec<(usize, [IntCounter; 6])>,
    latency: Histogram,
    /// WAF decisions by verdict ([`WAF_VERDICTS`] order), for routes with a WAF profile.
    waf: Option<[IntCounter; 6]>,
}

/// The `verdict` label values of `gatehouse_waf_decisions_total`, in index order.
/// `response_block` / `response_detect`: the response-phase rules stopped (or would
/// have stopped) a response.
pub const WAF_VERDICTS: [&str; 6] = [
    "allow",
    "block",
    "detect",
    "too_large",
    "response_block",
    "response_detect",
];

impl RouteMetrics {
    /// `upstreams`: (index, name) of every upstream the route can send to.
    pub fn new(route: &str, upstreams: &[(usize, &str)]) -> Self {
        let m = metrics();
        RouteMetrics {
            by_upstream: upstreams
                .iter()
                .map(|(i, name)| {
                    (
                        *i,
                        CLASSES.map(|class| m.requests.with_label_values(&[route, name, class])),
                    )
                })
                .collect(),
            latency: m.latency.with_label_values(&[route]),
            waf: None,
        }
    }

    /// Adds the WAF decision counters (only routes with a profile get these series).
    pub fn with_waf(mut self, route: &str) -> Self {
        let m = metrics();
        self.waf = Some(WAF_VERDICTS.map(|v| m.waf_decisions.with_label_values(&[route, v])));
        self
    }

    /// Counts a WAF decision; `verdict` indexes [`WAF_VERDICTS`].
    pub fn record_waf(&self, verdict: usize) {
        if let Some(counter) = self.waf.as_ref().and_then(|w| w.get(verdict)) {
            counter.inc();
        }
    }

    pub fn record(&self, upstream: Option<usize>, status: u16, seconds: f64) {
        let counters = upstream
            .and_then(|u| self.by_upstream.iter().find(|(i, _)| *i == u))
            .or_else(|| self.by_upstream.first());
        if let Some((_, counters)) = counters {
            counters[class_index(status)].inc();
        }
        self.latency.observe(seconds);
    }
}

/// A request no route matched.
pub fn record_unmatched(status: u16) {
    metrics()
        .requests
        .with_label_values(&["-", "-", CLASSES[class_index(status)]])
        .inc();
}

pub fn record_retry(upstream: &str) {
    metrics().retries.with_label_values(&[upstream]).inc();
}

/// The Prometheus text exposition of every metric, gauges read from `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let m = metrics();
    m.config_version
        .set(i64::try_from(snapshot.version).unwrap_or(i64::MAX));
    for gauge in [
        &m.backend_up,
        &m.backend_healthy,
        &m.backend_in_flight,
        &m.split_weight,
    ] {
        gauge.reset();
    }
    let now = crate::upstream::backend::now_ms();
    for upstream in snapshot.upstreams.iter() {
        for backend in &upstream.backends {
            let labels = [upstream.name.as_str(), &backend.addr.to_string()];
            m.backend_up
                .with_label_values(&labels)
                .set(i64::from(backend.is_available(now)));
            m.backend_healthy
                .with_label_values(&labels)
                .set(i64::from(backend.is_healthy()));
            m.backend_in_flight
                .with_label_values(&labels)
                .set(i64::try_from(backend.in_flight()).unwrap_or(i64::MAX));
        }
    }
    for (route, split) in snapshot.router.splits() {
        for (variant, weight) in split.variants.iter().zip(split.weights()) {
            m.split_weight
                .with_label_values(&[route, &variant.name])
                .set(i64::from(weight));
        }
    }
    let mut out = Vec::new();
    if TextEncoder::new()
        .encode(&m.registry.gather(), &mut out)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

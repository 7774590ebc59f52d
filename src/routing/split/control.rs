//! Automatic rollback and ramp of a canary.
//!
//! Each split with `rollback` or `ramp` is judged on its sliding windows: when the canary
//! has enough requests and is worse than the baseline (error rate above the baseline's by
//! more than the margin, or latency above it by more than the ratio), its weight goes to 0
//! and stays there until an operator sets it again. A healthy canary climbs the ramp's
//! steps, one per hold time. Decisions take the time as a parameter; the background task
//! feeds it the clock.

use super::window::Summary;
use super::Split;
use crate::config::split::{LatencyMeasure, SplitSection};
use crate::snapshot::Live;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct RollbackPolicy {
    pub window: Duration,
    pub min_requests: u64,
    /// As a fraction: 0.05 is five percentage points.
    pub max_error_rate_increase: f64,
    pub max_latency_ratio: f64,
    pub latency: LatencyMeasure,
}

#[derive(Debug, Clone)]
pub struct RampPolicy {
    pub steps: Vec<u32>,
    pub hold: Duration,
}

/// Where a controlled canary stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// On step `step` of the ramp since `since`.
    Ramping {
        step: usize,
        since: Instant,
    },
    /// At its weight, watched for rollback.
    Steady,
    RolledBack {
        reason: String,
    },
}

/// What one evaluation changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    RolledBack { reason: String },
    Stepped { to: u32 },
}

/// How the canary compares with the baseline over the window.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    NotEnoughData,
    Healthy,
    Worse(String),
}

#[derive(Debug)]
pub struct Control {
    pub rollback: Option<RollbackPolicy>,
    pub ramp: Option<RampPolicy>,
    phase: Mutex<Phase>,
    pub rollbacks: AtomicU64,
}

impl Control {
    pub fn from_config(section: &SplitSection, now: Instant) -> Option<Control> {
        if section.rollback.is_none() && section.ramp.is_none() {
            return None;
        }
        let ramp = section.ramp.as_ref().map(|r| RampPolicy {
            steps: r.steps.clone(),
            hold: r.hold.get(),
        });
        Some(Control {
            rollback: section.rollback.as_ref().map(|r| RollbackPolicy {
                window: r.window.get(),
                min_requests: r.min_requests,
                max_error_rate_increase: r.max_error_rate_increase.fraction(),
                max_latency_ratio: r.max_latency_ratio,
                latency: r.latency,
            }),
            phase: Mutex::new(match &ramp {
                Some(r) if r.steps.len() > 1 => Phase::Ramping {
                    step: 0,
                    since: now,
                },
                _ => Phase::Steady,
            }),
            ramp,
            rollbacks: AtomicU64::new(0),
        })
    }

    /// The canary weight to start from: the ramp's first step.
    pub fn initial_weight(&self) -> Option<u32> {
        self.ramp.as_ref()?.steps.first().copied()
    }

    pub fn phase(&self) -> Phase {
        match self.phase.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// An operator set the weight: the canary is watched again from here, and the ramp
    /// (if any) stops.
    pub fn reset(&self) {
        if let Ok(mut phase) = self.phase.lock() {
            *phase = Phase::Steady;
        }
    }
}

/// Compares canary and baseline summaries under `policy`.
pub fn judge(policy: &RollbackPolicy, baseline: &Summary, canary: &Summary) -> Verdict {
    if canary.requests < policy.min_requests || baseline.requests < policy.min_requests {
        return Verdict::NotEnoughData;
    }
    let increase = canary.error_rate() - baseline.error_rate();
    if increase > policy.max_error_rate_increase {
        return Verdict::Worse(format!(
            "error rate {:.1}% against the baseline's {:.1}% (allowed +{:.1} points)",
            canary.error_rate() * 100.0,
            baseline.error_rate() * 100.0,
            policy.max_error_rate_increase * 100.0
        ));
    }
    let (name, c, b) = match policy.latency {
        LatencyMeasure::P90 => ("p90", canary.p90_us, baseline.p90_us),
        LatencyMeasure::Mean => ("mean", canary.mean_us, baseline.mean_us),
    };
    if b > 0.0 && c > b * policy.max_latency_ratio {
        return Verdict::Worse(format!(
            "{name} latency {:.1}ms against the baseline's {:.1}ms (allowed x{})",
            c / 1000.0,
            b / 1000.0,
            policy.max_latency_ratio
        ));
    }
    Verdict::Healthy
}

/// Judges a controlled canary split at `now` and applies the outcome.
pub fn evaluate(split: &Split, now: Instant) -> Option<Event> {
    let control = split.control.as_ref()?;
    let pair = split.canary?;
    let mut phase = match control.phase.lock() {
        Ok(p) => p,
        Err(poisoned) => poisoned.into_inner(),
    };
    if matches!(*phase, Phase::RolledBack { .. }) {
        return None;
    }
    let verdict = match (
        &control.rollback,
        split.window(pair.baseline),
        split.window(pair.canary),
    ) {
        (Some(policy), Some(b), Some(c)) => judge(policy, &b.summary(now), &c.summary(now)),
        _ => Verdict::Healthy,
    };
    if let Verdict::Worse(reason) = verdict {
        split.set_canary_weight(0);
        control.rollbacks.fetch_add(1, Relaxed);
        crate::metrics::metrics()
            .split_rollbacks
            .with_label_values(&[&split.route])
            .inc();
        *phase = Phase::RolledBack {
            reason: reason.clone(),
        };
        return Some(Event::RolledBack { reason });
    }
    let (Phase::Ramping { step, since }, Some(ramp)) = (phase.clone(), &control.ramp) else {
        return None;
    };
    // With a rollback policy, a step needs evidence that the canary is healthy.
    let proven = control.rollback.is_none() || verdict == Verdict::Healthy;
    if now.saturating_duration_since(since) < ramp.hold || !proven {
        return None;
    }
    let next = step + 1;
    let to = *ramp.steps.get(next)?;
    split.set_canary_weight(to);
    *phase = if next + 1 < ramp.steps.len() {
        Phase::Ramping {
            step: next,
            since: now,
        }
    } else {
        Phase::Steady
    };
    Some(Event::Stepped { to })
}

/// The background task that evaluates every controlled split of the live config.
pub struct SplitController {
    live: Live,
}

impl SplitController {
    pub fn new(live: Live) -> Self {
        SplitController { live }
    }

    /// How often to evaluate: a tenth of the shortest window or hold, between 50ms and 1s.
    fn period(live: &Live) -> Duration {
        let snapshot = live.load();
        snapshot
            .router
            .splits()
            .filter_map(|(_, split)| split.control.as_ref())
            .flat_map(|c| {
                let window = c.rollback.map(|r| r.window / 10);
                let hold = c.ramp.as_ref().map(|r| r.hold / 10);
                [window, hold]
            })
            .flatten()
            .min()
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

#[async_trait]
impl BackgroundService for SplitController {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let snapshot = Arc::clone(&self.live.load());
            let now = Instant::now();
            for (route, split) in snapshot.router.splits() {
                match evaluate(split, now) {
                    Some(Event::RolledBack { reason }) => {
                        log::warn!("route {route}: canary rolled back to weight 0: {reason}")
                    }
                    Some(Event::Stepped { to }) => {
                        log::info!("route {route}: canary ramped to {to}%")
                    }
                    None => {}
                }
            }
            let period = Self::period(&self.live);
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(requests: u64, errors: u64, p90_ms: f64) -> Summary {
        Summary {
            requests,
            errors,
            mean_us: p90_ms * 700.0,
            p90_us: p90_ms * 1000.0,
        }
    }

    const POLICY: RollbackPolicy = RollbackPolicy {
        window: Duration::from_secs(10),
        min_requests: 50,
        max_error_rate_increase: 0.05,
        max_latency_ratio: 1.5,
        latency: LatencyMeasure::P90,
    };

    #[test]
    fn too_few_requests_decide_nothing() {
        assert_eq!(
            judge(&POLICY, &summary(1000, 0, 10.0), &summary(49, 49, 10.0)),
            Verdict::NotEnoughData
        );
        assert_eq!(
            judge(&POLICY, &summary(49, 0, 10.0), &summary(100, 100, 10.0)),
            Verdict::NotEnoughData
        );
    }

    #[test]
    fn errors_beyond_the_margin_are_worse() {
        assert!(matches!(
            judge(&POLICY, &summary(100, 1, 10.0), &summary(100, 7, 10.0)),
            Verdict::Worse(_)
        ));
        assert_eq!(
            judge(&POLICY, &summary(100, 1, 10.0), &summary(100, 5, 10.0)),
            Verdict::Healthy
        );
    }

    #[test]
    fn latency_beyond_the_ratio_is_worse() {
        assert!(matches!(
            judge(&POLICY, &summary(100, 0, 10.0), &summary(100, 0, 16.0)),
            Verdict::Worse(_)
        ));
        assert_eq!(
            judge(&POLICY, &summary(100, 0, 10.0), &summary(100, 0, 14.0)),
            Verdict::Healthy
        );
        let mean = RollbackPolicy {
            latency: LatencyMeasure::Mean,
            ..POLICY
        };
        assert!(matches!(
            judge(&mean, &summary(100, 0, 10.0), &summary(100, 0, 16.0)),
            Verdict::Worse(_)
        ));
    }
}

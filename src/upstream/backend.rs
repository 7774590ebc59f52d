//! One backend address and its live state: requests in flight, the verdict of active health
//! checks, and passive health (consecutive failures of real requests).
//!
//! The state sits in atomics read on every request; only the health checker writes the
//! active verdict, and the proxy writes the rest.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Milliseconds on a monotonic clock, for passive-health deadlines. Never 0, so 0 can mean
/// "no deadline".
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
}

/// When real requests take a backend out, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct PassivePolicy {
    /// 0: passive health is off.
    pub max_fails: u32,
    pub cooldown: Duration,
}

/// What an active check result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthChange {
    Unchanged,
    WentDown,
    CameUp,
}

#[derive(Debug, Default)]
struct ProbeStreak {
    successes: u32,
    failures: u32,
}

#[derive(Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    pub weight: u32,
    in_flight: AtomicUsize,
    /// Verdict of active health checks; true until a check says otherwise.
    healthy: AtomicBool,
    probes: Mutex<ProbeStreak>,
    consecutive_fails: AtomicU32,
    /// `now_ms()` until which passive health keeps the backend out; 0 when it is in.
    out_until_ms: AtomicU64,
}

impl Backend {
    pub fn new(addr: SocketAddr, weight: u32) -> Self {
        Backend {
            addr,
            weight,
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            probes: Mutex::new(ProbeStreak::default()),
            consecutive_fails: AtomicU32::new(0),
            out_until_ms: AtomicU64::new(0),
        }
    }

    /// Whether new requests may go here at time `now` (from [`now_ms`]).
    pub fn is_available(&self, now: u64) -> bool {
        self.healthy.load(Relaxed) && self.out_until_ms.load(Relaxed) <= now
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Relaxed)
    }

    /// A real request to this backend failed (connect error, timeout). Returns true when
    /// this failure takes it out. After the cooldown it is tried again; one more failure
    /// then takes it straight back out, as the count has not been reset by a success.
    pub fn record_failure(&self, policy: &PassivePolicy, now: u64) -> bool {
        if policy.max_fails == 0 {
            return false;
        }
        let fails = self
            .consecutive_fails
            .fetch_add(1, Relaxed)
            .saturating_add(1);
        if fails >= policy.max_fails {
            let cooldown = u64::try_from(policy.cooldown.as_millis()).unwrap_or(u64::MAX);
            let previous = self
                .out_until_ms
                .swap(now.saturating_add(cooldown), Relaxed);
            return previous <= now;
        }
        false
    }

    /// A real request got a response: passive health forgets earlier failures.
    pub fn record_success(&self) {
        if self.consecutive_fails.load(Relaxed) != 0 {
            self.consecutive_fails.store(0, Relaxed);
            self.out_until_ms.store(0, Relaxed);
        }
    }

    /// One active check result; `rise` successes in a row bring the backend up, `fall`
    /// failures in a row take it down.
    pub fn record_probe(&self, ok: bool, rise: u32, fall: u32) -> HealthChange {
        let mut streak = match self.probes.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let healthy = self.healthy.load(Relaxed);
        if ok {
            streak.failures = 0;
            streak.successes = streak.successes.saturating_add(1);
            if !healthy && streak.successes >= rise {
                self.healthy.store(true, Relaxed);
                // A backend that passes its checks again starts with a clean passive record.
                self.consecutive_fails.store(0, Relaxed);
                self.out_until_ms.store(0, Relaxed);
                return HealthChange::CameUp;
            }
        } else {
            streak.successes = 0;
            streak.failures = streak.failures.saturating_add(1);
            if healthy && streak.failures >= fall {
                self.healthy.store(false, Relaxed);
                return HealthChange::WentDown;
            }
        }
        HealthChange::Unchanged
    }
}

/// Counts a request in flight on a backend for as long as it lives.
#[derive(Debug)]
pub struct InFlight(Arc<Backend>);

impl InFlight {
    pub fn start(backend: Arc<Backend>) -> Self {
        backend.in_flight.fetch_add(1, Relaxed);
        InFlight(backend)
    }

    pub fn backend(&self) -> &Arc<Backend> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> Backend {
        Backend::new(([127, 0, 0, 1], 1).into(), 1)
    }

    const POLICY: PassivePolicy = PassivePolicy {
        max_fails: 3,
        cooldown: Duration::from_secs(10),
    };

    #[test]
    fn passive_takes_out_after_max_fails_in_a_row() {
        let b = backend();
        assert!(!b.record_failure(&POLICY, 1_000));
        assert!(!b.record_failure(&POLICY, 1_000));
        assert!(b.is_available(1_000));
        assert!(b.record_failure(&POLICY, 1_000));
        assert!(!b.is_available(1_001));
        assert!(!b.is_available(10_999));
        assert!(b.is_available(11_000), "tried again after the cooldown");
        assert!(
            b.record_failure(&POLICY, 11_000),
            "one more failure: out again"
        );
        assert!(!b.is_available(11_001));
    }

    #[test]
    fn a_success_resets_passive_health() {
        let b = backend();
        b.record_failure(&POLICY, 1);
        b.record_failure(&POLICY, 1);
        b.record_success();
        assert!(!b.record_failure(&POLICY, 1));
        assert!(b.is_available(2));
    }

    #[test]
    fn passive_off_never_takes_out() {
        let b = backend();
        let off = PassivePolicy {
            max_fails: 0,
            ..POLICY
        };
        for _ in 0..10 {
            assert!(!b.record_failure(&off, 1));
        }
        assert!(b.is_available(1));
    }

    #[test]
    fn probes_need_fall_failures_and_rise_successes() {
        let b = backend();
        assert_eq!(b.record_probe(false, 2, 3), HealthChange::Unchanged);
        assert_eq!(b.record_probe(false, 2, 3), HealthChange::Unchanged);
        assert_eq!(b.record_probe(true, 2, 3), HealthChange::Unchanged);
        assert_eq!(b.record_probe(false, 2, 3), HealthChange::Unchanged);
        assert_eq!(b.record_probe(false, 2, 3), HealthChange::Unchanged);
        assert_eq!(b.record_probe(false, 2, 3), HealthChange::WentDown);
        assert!(!b.is_available(1));
        assert_eq!(b.record_probe(true, 2, 3), HealthChange::Unchanged);
        assert_eq!(b.record_probe(true, 2, 3), HealthChange::CameUp);
        assert!(b.is_available(1));
    }

    #[test]
    fn in_flight_counts_while_the_guard_lives() {
        let b = Arc::new(backend());
        let first = InFlight::start(b.clone());
        let second = InFlight::start(b.clone());
        assert_eq!(b.in_flight(), 2);
        drop(first);
        assert_eq!(b.in_flight(), 1);
        drop(second);
        assert_eq!(b.in_flight(), 0);
    }
}

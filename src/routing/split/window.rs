//! Outcomes of one split variant over a sliding window: requests, errors, and a latency
//! histogram good enough for a mean and a p90 (quarter-octave buckets, within about 10%).
//!
//! The window is a ring of time slots; a slot older than the window is reset on its next
//! use. Time is a parameter, so tests drive it without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const SLOTS: usize = 10;
/// Quarter-octave buckets of microseconds: bucket i starts at 2^(i/4) us; 128 buckets
/// reach past 4,000 seconds.
const BUCKETS: usize = 128;

#[derive(Clone)]
struct Slot {
    epoch: u64,
    requests: u64,
    errors: u64,
    latency_sum_us: u64,
    histogram: [u32; BUCKETS],
}

impl Slot {
    fn empty(epoch: u64) -> Self {
        Slot {
            epoch,
            requests: 0,
            errors: 0,
            latency_sum_us: 0,
            histogram: [0; BUCKETS],
        }
    }
}

/// Totals over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub errors: u64,
    pub mean_us: f64,
    pub p90_us: f64,
}

impl Summary {
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

pub struct Window {
    origin: Instant,
    slot_len: Duration,
    slots: Mutex<Vec<Slot>>,
}

impl Window {
    pub fn new(window: Duration, origin: Instant) -> Self {
        let slot_len = (window / SLOTS as u32).max(Duration::from_millis(1));
        Window {
            origin,
            slot_len,
            slots: Mutex::new(vec![Slot::empty(u64::MAX); SLOTS]),
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        u64::try_from(elapsed.as_nanos() / self.slot_len.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    pub fn record(&self, now: Instant, error: bool, latency: Duration) {
        let epoch = self.epoch(now);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let index = usize::try_from(epoch % SLOTS as u64).unwrap_or(0);
        let slot = &mut slots[index];
        if slot.epoch != epoch {
            *slot = Slot::empty(epoch);
        }
        slot.requests += 1;
        slot.errors += u64::from(error);
        slot.latency_sum_us = slot.latency_sum_us.saturating_add(us);
        slot.histogram[bucket_of(us)] += 1;
    }

    pub fn summary(&self, now: Instant) -> Summary {
        let current = self.epoch(now);
        let oldest = current.saturating_sub(SLOTS as u64 - 1);
        let slots = match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut requests = 0;
        let mut errors = 0;
        let mut sum = 0u64;
        let mut histogram = [0u64; BUCKETS];
        for slot in slots
            .iter()
            .filter(|s| s.epoch >= oldest && s.epoch <= current)
        {
            requests += slot.requests;
            errors += slot.errors;
            sum = sum.saturating_add(slot.latency_sum_us);
            for (total, count) in histogram.iter_mut().zip(slot.histogram.iter()) {
                *total += u64::from(*count);
            }
        }
        Summary {
            requests,
            errors,
            mean_us: if requests == 0 {
                0.0
            } else {
                sum as f64 / requests as f64
            },
            p90_us: percentile(&histogram, requests, 0.9),
        }
    }
}

fn bucket_of(us: u64) -> usize {
    if us <= 1 {
        return 0;
    }
    let index = ((us as f64).log2() * 4.0).floor() as usize;
    index.min(BUCKETS - 1)
}

/// The middle of the bucket holding the `q` quantile.
fn percentile(histogram: &[u64; BUCKETS], total: u64, q: f64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let rank = ((total as f64) * q).ceil() as u64;
    let mut seen = 0;
    for (i, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank.max(1) {
            return 2f64.powf((i as f64 + 0.5) / 4.0);
        }
    }
    2f64.powf(BUCKETS as f64 / 4.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_within_the_window_and_forgets_older_ones() {
        let t0 = Instant::now();
        let w = Window::new(Duration::from_secs(10), t0);
        for i in 0..10 {
            w.record(
                t0 + Duration::from_secs(i),
                i % 2 == 0,
                Duration::from_millis(10),
            );
        }
        let s = w.summary(t0 + Duration::from_secs(9));
        assert_eq!((s.requests, s.errors), (10, 5));
        // Five seconds later, the first five slots have left the window.
        let s = w.summary(t0 + Duration::from_secs(14));
        assert_eq!(s.requests, 5);
        let s = w.summary(t0 + Duration::from_secs(30));
        assert_eq!(s.requests, 0);
        assert_eq!(s.error_rate(), 0.0);
    }

    #[test]
    fn a_reused_slot_starts_empty() {
        let t0 = Instant::now();
        let w = Window::new(Duration::from_secs(10), t0);
        w.record(t0, true, Duration::from_millis(1));
        w.record(
            t0 + Duration::from_secs(10),
            false,
            Duration::from_millis(1),
        );
        let s = w.summary(t0 + Duration::from_secs(10));
        assert_eq!((s.requests, s.errors), (1, 0));
    }

    #[test]
    fn mean_and_p90_are_close() {
        let t0 = Instant::now();
        let w = Window::new(Duration::from_secs(10), t0);
        for ms in 1..=100 {
            w.record(t0, false, Duration::from_millis(ms));
        }
        let s = w.summary(t0);
        assert!((s.mean_us - 50_500.0).abs() < 1.0, "{s:?}");
        assert!((s.p90_us - 90_000.0).abs() / 90_000.0 < 0.12, "{s:?}");
    }
}

//! Choosing a backend: weighted round robin, least connections, client-IP hash and
//! consistent hash on a header or cookie.
//!
//! Every algorithm takes a `usable` test (health, passive health, backends that already
//! failed this request) and walks on to the next candidate when its first choice is not
//! usable, so one bad backend never fails a request that another could serve.

use super::backend::Backend;
use pingora_ketama::{Bucket, Continuum};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// Points walked on the hash ring before falling back to a scan.
const RING_WALK_LIMIT: usize = 4096;

#[derive(Debug)]
pub enum Balancer {
    RoundRobin(RoundRobin),
    LeastConn(LeastConn),
    /// Client IP or header/cookie value hashed onto a ketama ring.
    ConsistentHash(Ring),
}

impl Balancer {
    /// `key` is the hash key for `ConsistentHash` (ignored by the others); without one, a
    /// hashing balancer falls back to round robin.
    pub fn pick(
        &self,
        backends: &[Arc<Backend>],
        key: Option<&[u8]>,
        usable: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        match self {
            Balancer::RoundRobin(rr) => rr.pick(usable),
            Balancer::LeastConn(lc) => lc.pick(backends, usable),
            Balancer::ConsistentHash(ring) => match key {
                Some(key) => ring.pick(key, usable),
                None => ring.fallback.pick(usable),
            },
        }
    }
}

/// Smooth weighted round robin (as nginx does it), computed once into a sequence so that a
/// pick is one atomic increment: weights 3:1 give `a a b a`, repeated.
#[derive(Debug)]
pub struct RoundRobin {
    sequence: Vec<usize>,
    next: AtomicUsize,
}

impl RoundRobin {
    pub fn new(weights: &[u32]) -> Self {
        let divisor = weights.iter().copied().fold(0, gcd).max(1);
        let weights: Vec<i64> = weights.iter().map(|w| i64::from(w / divisor)).collect();
        let total: i64 = weights.iter().sum();
        let mut current = vec![0i64; weights.len()];
        let mut sequence = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            let best = current
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
                .map(|(i, _)| i)
                .unwrap_or(0);
            current[best] -= total;
            sequence.push(best);
        }
        RoundRobin {
            sequence,
            next: AtomicUsize::new(0),
        }
    }

    pub fn pick(&self, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let len = self.sequence.len();
        if len == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Relaxed);
        (0..len)
            .map(|step| self.sequence[(start + step) % len])
            .find(|&i| usable(i))
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Fewest requests in flight relative to weight; ties rotate so equal backends share.
#[derive(Debug, Default)]
pub struct LeastConn {
    next: AtomicUsize,
}

impl LeastConn {
    pub fn pick(&self, backends: &[Arc<Backend>], usable: impl Fn(usize) -> bool) -> Option<usize> {
        let n = backends.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Relaxed);
        let mut best: Option<(usize, u64, u64)> = None; // (index, in_flight, weight)
        for step in 0..n {
            let i = (start + step) % n;
            if !usable(i) {
                continue;
            }
            let load = backends[i].in_flight() as u64;
            let weight = u64::from(backends[i].weight.max(1));
            // load_i / weight_i < load_b / weight_b, without division.
            let better = match best {
                None => true,
                Some((_, best_load, best_weight)) => load * best_weight < best_load * weight,
            };
            if better {
                best = Some((i, load, weight));
            }
        }
        best.map(|(i, _, _)| i)
    }
}

/// A ketama ring (the same points nginx and memcached clients use), walked clockwise from
/// the key's point until a usable backend comes up.
pub struct Ring {
    continuum: Continuum,
    index_of: HashMap<SocketAddr, usize>,
    /// For requests without a key.
    fallback: RoundRobin,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("backends", &self.index_of.len())
            .finish()
    }
}

impl Ring {
    pub fn new(backends: &[(SocketAddr, u32)]) -> Self {
        let buckets: Vec<Bucket> = backends
            .iter()
            .map(|(addr, weight)| Bucket::new(*addr, *weight))
            .collect();
        let weights: Vec<u32> = backends.iter().map(|(_, w)| *w).collect();
        Ring {
            continuum: Continuum::new(&buckets),
            index_of: backends
                .iter()
                .enumerate()
                .map(|(i, (addr, _))| (*addr, i))
                .collect(),
            fallback: RoundRobin::new(&weights),
        }
    }

    pub fn pick(&self, key: &[u8], usable: impl Fn(usize) -> bool) -> Option<usize> {
        let walked = self
            .continuum
            .node_iter(key)
            .take(RING_WALK_LIMIT)
            .filter_map(|addr| self.index_of.get(addr).copied())
            .find(|&i| usable(i));
        walked.or_else(|| (0..self.index_of.len()).find(|&i| usable(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::backend::InFlight;

    fn addr(port: u16) -> SocketAddr {
        ([127, 0, 0, 1], port).into()
    }

    #[test]
    fn weighted_round_robin_is_exact_and_smooth() {
        let rr = RoundRobin::new(&[3, 1]);
        let picks: Vec<usize> = (0..8).filter_map(|_| rr.pick(|_| true)).collect();
        assert_eq!(picks, vec![0, 0, 1, 0, 0, 0, 1, 0]);
        let rr = RoundRobin::new(&[3, 1]);
        let mut counts = [0; 2];
        for _ in 0..1000 {
            counts[rr.pick(|_| true).expect("a pick")] += 1;
        }
        assert_eq!(counts, [750, 250]);
    }

    #[test]
    fn round_robin_skips_unusable_backends() {
        let rr = RoundRobin::new(&[1, 1, 1]);
        for _ in 0..30 {
            assert_ne!(rr.pick(|i| i != 1), Some(1));
        }
        assert_eq!(rr.pick(|_| false), None);
    }

    #[test]
    fn least_conn_prefers_the_idle_backend() {
        let backends: Vec<Arc<Backend>> =
            (0..3).map(|i| Arc::new(Backend::new(addr(i), 1))).collect();
        let _busy: Vec<InFlight> = (0..5)
            .map(|_| InFlight::start(backends[0].clone()))
            .collect();
        let _one = InFlight::start(backends[1].clone());
        let lc = LeastConn::default();
        for _ in 0..10 {
            assert_eq!(lc.pick(&backends, |_| true), Some(2));
        }
        assert_eq!(lc.pick(&backends, |i| i != 2), Some(1));
    }

    #[test]
    fn least_conn_accounts_for_weight() {
        let backends = vec![
            Arc::new(Backend::new(addr(1), 4)),
            Arc::new(Backend::new(addr(2), 1)),
        ];
        let _a: Vec<InFlight> = (0..3)
            .map(|_| InFlight::start(backends[0].clone()))
            .collect();
        let _b = InFlight::start(backends[1].clone());
        // 3/4 < 1/1
        assert_eq!(LeastConn::default().pick(&backends, |_| true), Some(0));
    }

    #[test]
    fn hashing_is_sticky_and_fails_over() {
        let ring = Ring::new(&[(addr(1), 1), (addr(2), 1), (addr(3), 1)]);
        let first = ring.pick(b"user-42", |_| true).expect("a pick");
        for _ in 0..10 {
            assert_eq!(ring.pick(b"user-42", |_| true), Some(first));
        }
        let other = ring.pick(b"user-42", |i| i != first).expect("failover");
        assert_ne!(other, first);
        // Keys spread over the backends.
        let mut seen = std::collections::HashSet::new();
        for k in 0..100 {
            seen.insert(ring.pick(format!("k{k}").as_bytes(), |_| true));
        }
        assert_eq!(seen.len(), 3);
    }
}

//! Named pools of backends: choosing one for a request (balancing, health, retries) and
//! building the Pingora peer that connects to it over pooled keep-alive connections.

pub mod backend;
pub mod balance;
pub mod health;

use crate::config::upstreams::{Balance, UpstreamSection};
use backend::{now_ms, Backend, PassivePolicy};
use balance::{Balancer, LeastConn, Ring, RoundRobin};
use health::Probe;
use http::{HeaderMap, HeaderName};
use pingora::upstreams::peer::HttpPeer;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where a hashing balancer takes its key from.
#[derive(Debug, Clone)]
pub enum HashSource {
    ClientIp,
    Header(HeaderName),
    Cookie(String),
}

/// The parts of a request that balancing may look at.
#[derive(Debug, Clone, Copy)]
pub struct Selector<'a> {
    pub client_ip: Option<IpAddr>,
    pub headers: &'a HeaderMap,
    /// Backends that already failed this request.
    pub exclude: &'a [usize],
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub write: Duration,
    pub idle: Duration,
}

#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    pub backends: Vec<Arc<Backend>>,
    balancer: Balancer,
    hash_source: Option<HashSource>,
    pub probe: Option<Probe>,
    pub passive: PassivePolicy,
    timeouts: Timeouts,
    /// More backends to try after a failed connect.
    pub retries: usize,
}

impl Upstream {
    /// Builds from config; a backend with the same address and weight in `previous` (the
    /// same upstream in the config being replaced) is kept, state and all.
    pub fn from_config(name: &str, section: &UpstreamSection, previous: Option<&Upstream>) -> Self {
        let backends: Vec<Arc<Backend>> = section
            .backends
            .iter()
            .map(|b| {
                previous
                    .and_then(|p| {
                        p.backends
                            .iter()
                            .find(|old| old.addr == b.address.0 && old.weight == b.weight)
                    })
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Backend::new(b.address.0, b.weight)))
            })
            .collect();
        let weights: Vec<u32> = backends.iter().map(|b| b.weight).collect();
        let ring = || {
            let points: Vec<_> = backends.iter().map(|b| (b.addr, b.weight)).collect();
            Balancer::ConsistentHash(Ring::new(&points))
        };
        let (balancer, hash_source) = match section.balance {
            Balance::RoundRobin => (Balancer::RoundRobin(RoundRobin::new(&weights)), None),
            Balance::LeastConn => (Balancer::LeastConn(LeastConn::default()), None),
            Balance::IpHash => (ring(), Some(HashSource::ClientIp)),
            Balance::Hash => {
                let key = section.hash_key.as_ref();
                let source = match (
                    key.and_then(|k| k.header.clone()),
                    key.and_then(|k| k.cookie.clone()),
                ) {
                    (Some(h), _) => HashSource::Header(h.0),
                    (None, Some(c)) => HashSource::Cookie(c),
                    // Validation requires one; without it, hash the client.
                    (None, None) => HashSource::ClientIp,
                };
                (ring(), Some(source))
            }
        };
        let t = &section.timeouts;
        Upstream {
            name: name.to_string(),
            backends,
            balancer,
            hash_source,
            probe: section.health.as_ref().map(|h| Probe::from_config(h, name)),
            passive: PassivePolicy {
                max_fails: section.passive.max_fails,
                cooldown: section.passive.cooldown.get(),
            },
            timeouts: Timeouts {
                connect: t.connect.get(),
                read: t.read.get(),
                write: t.write.get(),
                idle: t.idle.get(),
            },
            retries: section.retries,
        }
    }

    /// The backend for a request, or `None` when no backend is usable.
    pub fn select(&self, selector: &Selector<'_>) -> Option<usize> {
        let now = now_ms();
        let usable = |i: usize| {
            !selector.exclude.contains(&i)
                && self.backends.get(i).is_some_and(|b| b.is_available(now))
        };
        let key = self.hash_key(selector);
        self.balancer.pick(&self.backends, key.as_deref(), usable)
    }

    /// Whether a backend outside `exclude` is usable now (is a retry worth it).
    pub fn has_usable(&self, exclude: &[usize]) -> bool {
        let now = now_ms();
        self.backends
            .iter()
            .enumerate()
            .any(|(i, b)| !exclude.contains(&i) && b.is_available(now))
    }

    fn hash_key(&self, selector: &Selector<'_>) -> Option<Vec<u8>> {
        match self.hash_source.as_ref()? {
            HashSource::ClientIp => selector.client_ip.map(|ip| match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            }),
            HashSource::Header(name) => selector
                .headers
                .get(name)
                .map(|v| v.as_bytes().to_vec())
                .filter(|v| !v.is_empty()),
            HashSource::Cookie(name) => cookie_value(selector.headers, name).map(|v| v.to_vec()),
        }
    }

    /// How to reach backend `index`: its address, timeouts and pool idle time. Pingora keys
    /// its connection pool on the peer, so requests to one backend share connections.
    pub fn peer(&self, index: usize) -> Option<HttpPeer> {
        let backend = self.backends.get(index)?;
        let mut peer = HttpPeer::new(backend.addr, false, String::new());
        let t = &self.timeouts;
        peer.options.connection_timeout = Some(t.connect);
        peer.options.read_timeout = Some(t.read);
        peer.options.write_timeout = Some(t.write);
        peer.options.idle_timeout = Some(t.idle);
        Some(peer)
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii_start();
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq].trim_ascii() == name.as_bytes()).then(|| pair[eq + 1..].trim_ascii())
        })
        .filter(|v| !v.is_empty())
}

/// All upstreams of one config, looked up by index (routes hold indices).
#[derive(Debug, Default)]
pub struct UpstreamSet {
    upstreams: Vec<Upstream>,
    by_name: HashMap<String, usize>,
}

impl UpstreamSet {
    /// Builds from config, keeping the unchanged backends of `previous`.
    pub fn from_config(
        sections: &[(String, UpstreamSection)],
        previous: Option<&UpstreamSet>,
    ) -> Self {
        let upstreams: Vec<Upstream> = sections
            .iter()
            .map(|(name, section)| {
                let old = previous.and_then(|p| p.index_of(name).and_then(|i| p.get(i)));
                Upstream::from_config(name, section, old)
            })
            .collect();
        let by_name = upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.clone(), i))
            .collect();
        UpstreamSet { upstreams, by_name }
    }

    pub fn get(&self, index: usize) -> Option<&Upstream> {
        self.upstreams.get(index)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Upstream> {
        self.upstreams.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        map
    }

    #[test]
    fn cookie_values_are_found_among_others() {
        let h = headers(&[("cookie", "a=1; sid=xyz ; b=2"), ("cookie", "c=3")]);
        assert_eq!(cookie_value(&h, "sid"), Some(&b"xyz"[..]));
        assert_eq!(cookie_value(&h, "c"), Some(&b"3"[..]));
        assert_eq!(cookie_value(&h, "s"), None);
        assert_eq!(cookie_value(&headers(&[("cookie", "sid=")]), "sid"), None);
    }

    fn upstream(yaml: &str) -> Upstream {
        let section: UpstreamSection = serde_yaml::from_str(yaml).expect("valid upstream");
        Upstream::from_config("u", &section, None)
    }

    #[test]
    fn header_hash_keeps_a_key_on_one_backend() {
        let u = upstream(
            r#"{ backends: [ {address: "127.0.0.1:1"}, {address: "127.0.0.1:2"}, {address: "127.0.0.1:3"} ],
                 balance: hash, hash_key: { header: X-User } }"#,
        );
        let h = headers(&[("x-user", "alice")]);
        let sel = Selector {
            client_ip: None,
            headers: &h,
            exclude: &[],
        };
        let first = u.select(&sel);
        for _ in 0..20 {
            assert_eq!(u.select(&sel), first);
        }
        let excluded = [first.expect("a backend")];
        let sel = Selector {
            exclude: &excluded,
            ..sel
        };
        assert_ne!(u.select(&sel), first, "a failed backend is skipped");
    }

    #[test]
    fn peers_carry_the_timeouts() {
        let u = upstream(
            r#"{ backends: [ {address: "127.0.0.1:1"} ], timeouts: { connect: 1s, read: 2s, write: 3s, idle: 4s } }"#,
        );
        let peer = u.peer(0).expect("peer");
        assert_eq!(
            peer.options.connection_timeout,
            Some(Duration::from_secs(1))
        );
        assert_eq!(peer.options.read_timeout, Some(Duration::from_secs(2)));
        assert_eq!(peer.options.write_timeout, Some(Duration::from_secs(3)));
        assert_eq!(peer.options.idle_timeout, Some(Duration::from_secs(4)));
        assert!(u.peer(1).is_none());
    }
}

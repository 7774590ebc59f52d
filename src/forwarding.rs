//! What the origin learns about the client: `X-Forwarded-For` / `-Proto` / `-Host` and
//! `X-Real-IP`.
//!
//! Forwarded headers from a client are believed only when the client's address is in
//! `trusted_proxies` (a load balancer or CDN in front of us). Then the chain is appended to
//! and the real client is the rightmost address that is not itself a trusted proxy (as
//! nginx's `real_ip_recursive` does). From anyone else they are replaced, so a client
//! cannot forge its address.

use http::header::HOST;
use http::HeaderValue;
use ipnet::IpNet;
use pingora::http::RequestHeader;
use std::net::IpAddr;

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
pub const X_REAL_IP: &str = "x-real-ip";

#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    trusted: Vec<IpNet>,
}

impl Forwarding {
    pub fn new(trusted: Vec<IpNet>) -> Self {
        Forwarding { trusted }
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client's address as the origin should see it, given the connection's peer.
    pub fn client_ip(&self, peer: IpAddr, req: &RequestHeader) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let chain = forwarded_chain(req);
        let mut leftmost = peer;
        for hop in chain.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.is_trusted(ip) => leftmost = ip,
                Ok(ip) => return ip,
                // A hop we cannot read ends the part of the chain we can believe.
                Err(_) => return leftmost,
            }
        }
        leftmost
    }

    /// Sets the forwarding headers on the request going upstream. `peer` is the address
    /// of the connection (None on a Unix socket), `client` what [`Forwarding::client_ip`]
    /// made of it; `scheme` is how the client reached us.
    pub fn apply(
        &self,
        req: &mut RequestHeader,
        peer: Option<IpAddr>,
        client: Option<IpAddr>,
        scheme: &'static str,
    ) -> pingora::Result<()> {
        let trusted = peer.is_some_and(|ip| self.is_trusted(ip));
        if let Some(peer) = peer {
            let peer_value = ip_value(peer);
            let xff = if trusted {
                let chain = forwarded_chain(req);
                if chain.is_empty() {
                    peer_value.clone()
                } else {
                    let joined = format!("{}, {}", chain.join(", "), canonical(peer));
                    HeaderValue::try_from(joined).unwrap_or_else(|_| peer_value.clone())
                }
            } else {
                peer_value.clone()
            };
            let real_ip = match client.map(canonical) {
                Some(ip) if ip != canonical(peer) => ip_value(ip),
                _ => peer_value,
            };
            req.insert_header(X_FORWARDED_FOR, xff)?;
            req.insert_header(X_REAL_IP, real_ip)?;
        } else {
            req.remove_header(X_FORWARDED_FOR);
            req.remove_header(X_REAL_IP);
        }
        if !(trusted && req.headers.contains_key(X_FORWARDED_PROTO)) {
            req.insert_header(X_FORWARDED_PROTO, HeaderValue::from_static(scheme))?;
        }
        if !(trusted && req.headers.contains_key(X_FORWARDED_HOST)) {
            let host: Option<HeaderValue> = req
                .headers
                .get(HOST)
                .cloned()
                .or_else(|| req.uri.authority().and_then(|a| a.as_str().parse().ok()));
            match host {
                Some(host) => {
                    req.insert_header(X_FORWARDED_HOST, host)?;
                }
                None => {
                    req.remove_header(X_FORWARDED_HOST);
                }
            }
        }
        Ok(())
    }
}

/// An address as a header value (an IP's text is always a valid value).
fn ip_value(ip: IpAddr) -> HeaderValue {
    HeaderValue::try_from(canonical(ip).to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The addresses listed in every `X-Forwarded-For` header, in order.
fn forwarded_chain(req: &RequestHeader) -> Vec<&str> {
    req.headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect()
}

/// `::ffff:10.0.0.1` is `10.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&'static str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).expect("head");
        req.insert_header("host", "shop.example.com").expect("host");
        for (k, v) in headers {
            req.append_header(*k, *v).expect("header");
        }
        req
    }

    fn header<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
        req.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn forwarding(trusted: &[&str]) -> Forwarding {
        Forwarding::new(trusted.iter().map(|t| t.parse().expect("cidr")).collect())
    }

    #[test]
    fn untrusted_client_headers_are_replaced() {
        let fw = forwarding(&["10.0.0.0/8"]);
        let mut req = request(&[
            (X_FORWARDED_FOR, "6.6.6.6"),
            (X_FORWARDED_PROTO, "https"),
            (X_FORWARDED_HOST, "evil.example"),
        ]);
        let peer: IpAddr = "203.0.113.9".parse().expect("ip");
        let client = fw.client_ip(peer, &req);
        fw.apply(&mut req, Some(peer), Some(client), "http")
            .expect("apply");
        assert_eq!(header(&req, X_FORWARDED_FOR), Some("203.0.113.9"));
        assert_eq!(header(&req, X_REAL_IP), Some("203.0.113.9"));
        assert_eq!(header(&req, X_FORWARDED_PROTO), Some("http"));
        assert_eq!(header(&req, X_FORWARDED_HOST), Some("shop.example.com"));
    }

    #[test]
    fn trusted_proxy_chain_is_appended_and_real_ip_found() {
        let fw = forwarding(&["10.0.0.0/8"]);
        let mut req = request(&[
            (X_FORWARDED_FOR, "6.6.6.6, 198.51.100.7"),
            (X_FORWARDED_FOR, "10.1.1.1"),
            (X_FORWARDED_PROTO, "https"),
        ]);
        let peer: IpAddr = "10.0.0.2".parse().expect("ip");
        let client = fw.client_ip(peer, &req);
        fw.apply(&mut req, Some(peer), Some(client), "http")
            .expect("apply");
        assert_eq!(
            header(&req, X_FORWARDED_FOR),
            Some("6.6.6.6, 198.51.100.7, 10.1.1.1, 10.0.0.2")
        );
        // 10.1.1.1 is a trusted hop; 198.51.100.7 is the first address we cannot vouch for.
        assert_eq!(header(&req, X_REAL_IP), Some("198.51.100.7"));
        assert_eq!(header(&req, X_FORWARDED_PROTO), Some("https"));
    }

    #[test]
    fn mapped_v6_peers_count_as_v4() {
        let fw = forwarding(&["127.0.0.1/32"]);
        assert!(fw.is_trusted("::ffff:127.0.0.1".parse().expect("ip")));
    }
}

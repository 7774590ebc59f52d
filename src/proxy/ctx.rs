//! The per-request context, grouped by concern.

use crate::routing::Route;
use crate::snapshot::Snapshot;
use crate::upstream::backend::InFlight;
use crate::upstream::Upstream;
use crate::waf::response_guard::ResponseWatch;
use http::HeaderValue;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

pub struct RequestCtx {
    /// The config this request runs on from start to end.
    pub snapshot: Arc<Snapshot>,
    pub request_id: HeaderValue,
    /// The connection's peer address (None on a Unix socket).
    pub peer_ip: Option<IpAddr>,
    /// The client: the peer, or behind trusted proxies the address they forwarded.
    pub client_ip: Option<IpAddr>,
    /// Position of the matched route in the router.
    pub route: Option<usize>,
    /// The split variant this request was assigned, if its route splits.
    pub variant: Option<SplitChoice>,
    /// The upstream serving this request: the route's, or its split variant's.
    pub upstream_index: Option<usize>,
    pub upstream: UpstreamAttempts,
    pub started: Instant,
    /// Request body bytes seen so far.
    pub body_bytes: u64,
    /// The WAF transaction carried on to the response, when the profile inspects them.
    pub waf_response: Option<Box<ResponseWatch>>,
    /// The response-phase rules stopped the response (an expected end, not an error).
    pub waf_stopped_response: bool,
}

/// A split's decision for this request.
pub struct SplitChoice {
    pub variant: usize,
    /// Sent with the response on a client's first assignment.
    pub set_cookie: Option<HeaderValue>,
}

/// The backends tried for this request.
#[derive(Default)]
pub struct UpstreamAttempts {
    /// The backend currently in use, counted in flight while held.
    pub current: Option<(usize, InFlight)>,
    /// Backends that failed to connect; not tried again for this request.
    pub failed: Vec<usize>,
    /// Connect attempts made so far.
    pub attempts: usize,
    /// The backend of the latest attempt, kept for the access log after a failure.
    pub last: Option<std::net::SocketAddr>,
}

impl RequestCtx {
    pub fn new(snapshot: Arc<Snapshot>) -> Self {
        RequestCtx {
            snapshot,
            request_id: HeaderValue::from_static("-"),
            peer_ip: None,
            client_ip: None,
            route: None,
            variant: None,
            upstream_index: None,
            upstream: UpstreamAttempts::default(),
            started: Instant::now(),
            body_bytes: 0,
            waf_response: None,
            waf_stopped_response: false,
        }
    }

    pub fn route(&self) -> Option<&Route> {
        self.snapshot.router.route(self.route?)
    }

    pub fn upstream(&self) -> Option<&Upstream> {
        self.snapshot.upstreams.get(self.upstream_index?)
    }
}

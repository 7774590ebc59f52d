//! The per-request context, grouped by concern.

use crate::routing::Route;
use crate::snapshot::Snapshot;
use crate::upstream::backend::InFlight;
use crate::upstream::Upstream;
use http::HeaderValue;
use std::net::IpAddr;
use std::sync::Arc;

pub struct RequestCtx {
    /// The config this request runs on from start to end.
    pub snapshot: Arc<Snapshot>,
    pub request_id: HeaderValue,
    /// The connection's peer address (None on a Unix socket).
    pub peer_ip: Option<IpAddr>,
    /// Position of the matched route in the router.
    pub route: Option<usize>,
    pub upstream: UpstreamAttempts,
    /// Request body bytes seen so far.
    pub body_bytes: u64,
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
}

impl RequestCtx {
    pub fn new(snapshot: Arc<Snapshot>) -> Self {
        RequestCtx {
            snapshot,
            request_id: HeaderValue::from_static("-"),
            peer_ip: None,
            route: None,
            upstream: UpstreamAttempts::default(),
            body_bytes: 0,
        }
    }

    pub fn route(&self) -> Option<&Route> {
        self.snapshot.router.route(self.route?)
    }

    pub fn upstream(&self) -> Option<&Upstream> {
        self.snapshot.upstreams.get(self.route()?.upstream)
    }
}

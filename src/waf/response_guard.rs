//! The WAF on the response, for profiles with `inspect_response: true`: the request's
//! transaction (its TX variables, anomaly scores, removals) carries on into phase 3 at
//! the response head and phase 4 at the end of the body.
//!
//! Pingora commits the response head once `response_filter` returns: it is buffered and
//! goes out with the first body bytes (or when the connection ends), and it can no longer
//! be replaced. So a response becomes a clean 403 when the rules stop it at its head, or
//! when its body was read in the same batch as its head (the body filter runs before the
//! head is committed). Otherwise the body is held back (up to the profile's limit) and
//! released only after phase 4; a response stopped on its body then ends as the committed
//! head with no body and a closed connection (measured: the client gets the 200 head only
//! when the body is judged, then end of stream; never the leaked bytes). When the body is not inspected (a media type not listed, a
//! compressed body, HEAD, 204, 304), phase 4 runs at the head with an empty
//! RESPONSE_BODY, so CRS's outbound score check (959100) can still answer 403.

use super::engine::Transaction;
use super::guard::Decision;
use super::profile::ResponsePolicy;
use super::transaction::ResponseHead;
use super::RuleSet;
use crate::config::waf::WafMode;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use std::sync::Arc;

/// Carries a request's transaction to its response.
pub struct ResponseWatch {
    tx: Transaction<Arc<RuleSet>>,
    mode: WafMode,
    policy: Arc<ResponsePolicy>,
    /// Fired rules already reported with an earlier decision; None once an interruption
    /// was reported (the phases after it do not run, so there is nothing more to say).
    reported: Option<usize>,
    /// The body held back so far, while it is being held.
    held: Option<Vec<u8>>,
}

impl ResponseWatch {
    pub fn new(tx: Transaction<Arc<RuleSet>>, mode: WafMode, policy: Arc<ResponsePolicy>) -> Self {
        let reported = Some(tx.fired().len());
        ResponseWatch {
            tx,
            mode,
            policy,
            reported,
            held: None,
        }
    }

    /// Phase 3 on the response head (and phase 4 too when the body will not be
    /// inspected). A decision comes back when rules fired or the response is stopped.
    pub fn on_head(&mut self, head_request: bool, response: &ResponseHeader) -> Option<Decision> {
        let header = |name: http::HeaderName| response.headers.get(name).map(|v| v.as_bytes());
        let status = response.status.as_u16();
        let has_body = !head_request && !matches!(status, 100..=199 | 204 | 304);
        let encoded = header(http::header::CONTENT_ENCODING)
            .is_some_and(|e| !e.eq_ignore_ascii_case(b"identity"));
        let hold = has_body
            && !encoded
            && self
                .policy
                .inspects_body(header(http::header::CONTENT_TYPE));
        let head = ResponseHead {
            status,
            protocol: super::guard::protocol_name(response.version).to_string(),
            headers: response
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        };
        let stopped = self.tx.process_response_headers(head).is_some();
        if !stopped && !hold {
            self.tx.process_response_body(b"");
        }
        if !stopped && hold {
            self.held = Some(Vec::new());
        }
        self.decision()
    }

    /// Holds body chunks back until the body ends or the limit is reached, then runs
    /// phase 4 and releases what was held (unless the response is stopped).
    pub fn on_body(&mut self, body: &mut Option<Bytes>, end_of_stream: bool) -> Option<Decision> {
        let held = self.held.as_mut()?;
        if let Some(chunk) = body.take() {
            held.extend_from_slice(&chunk);
        }
        if !end_of_stream && held.len() < self.policy.body_limit {
            return None;
        }
        let held = self.held.take().unwrap_or_default();
        let inspected = &held[..held.len().min(self.policy.body_limit)];
        let stopped = self.tx.process_response_body(inspected).is_some();
        let release = !(stopped && self.mode == WafMode::Block);
        if release && !held.is_empty() {
            *body = Some(Bytes::from(held));
        }
        self.decision()
    }

    /// The decision on what the last phase found, when there is something to report
    /// (an interruption is reported once: the phases after it do not run).
    fn decision(&mut self) -> Option<Decision> {
        let decision = Decision::of(&self.tx, self.mode, self.reported?, true);
        let stopped = self.tx.interruption().is_some();
        self.reported = (!stopped).then(|| self.tx.fired().len());
        (stopped || !decision.fired.is_empty()).then_some(decision)
    }
}

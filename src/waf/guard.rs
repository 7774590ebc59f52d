//! The WAF on a live request: builds the engine's view of a Pingora request, runs the
//! request-header phase, holds the body back (up to the profile's limit) and runs the
//! body phase, all before any byte goes upstream. Pingora replays the held body to the
//! origin from its retry buffer, so a blocked request never reaches it at all. The
//! response phases are [`super::response_guard`]'s.

use super::engine::{Fired, Transaction};
use super::profile::WafProfile;
use super::response_guard::ResponseWatch;
use super::transaction::RequestHeadRef;
use crate::config::waf::{OverLimit, WafMode};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use std::net::IpAddr;

/// What the WAF decided for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WafVerdict {
    Allow,
    /// Refused: answer `status` (403 unless the rule says otherwise). For a response,
    /// the origin's response is replaced, or cut when its head was already committed.
    Block {
        rule: u32,
        status: u16,
    },
    /// Detection mode: the rule would have blocked; the request goes on.
    Detect {
        rule: u32,
    },
    /// The body is larger than the profile's limit and the profile rejects such bodies.
    TooLarge,
}

pub struct Decision {
    pub verdict: WafVerdict,
    /// Logged rules that matched (empty for a clean request).
    pub fired: Vec<Fired>,
    /// A decision on the response (phases 3 and 4), not on the request.
    pub on_response: bool,
}

impl Decision {
    /// Index of the verdict in [`crate::metrics::WAF_VERDICTS`].
    pub fn verdict_index(&self) -> usize {
        match (&self.verdict, self.on_response) {
            (WafVerdict::Allow, _) => 0,
            (WafVerdict::Block { .. }, false) => 1,
            (WafVerdict::Detect { .. }, false) => 2,
            (WafVerdict::TooLarge, _) => 3,
            (WafVerdict::Block { .. }, true) => 4,
            (WafVerdict::Detect { .. }, true) => 5,
        }
    }

    /// The decision a transaction has come to, with the logged rules fired from
    /// `fired_from` on (those before were reported with an earlier decision).
    pub fn of<R>(tx: &Transaction<R>, mode: WafMode, fired_from: usize, on_response: bool) -> Self
    where
        R: std::ops::Deref<Target = super::RuleSet> + Clone,
    {
        let fired = tx
            .fired()
            .iter()
            .skip(fired_from)
            .filter(|f| f.logged)
            .cloned()
            .collect();
        let verdict = match (tx.interruption(), mode) {
            (Some(i), WafMode::Block) => WafVerdict::Block {
                rule: i.rule_id,
                status: i.status,
            },
            (Some(i), _) => WafVerdict::Detect { rule: i.rule_id },
            (None, _) => WafVerdict::Allow,
        };
        Decision {
            verdict,
            fired,
            on_response,
        }
    }

    pub fn label(&self) -> &'static str {
        crate::metrics::WAF_VERDICTS[self.verdict_index()]
    }
}

/// The engine's view of a request head, borrowed from Pingora's (`remote_addr` is the
/// client address written out).
pub fn request_head<'a>(
    req: &'a RequestHeader,
    remote_addr: &'a str,
    unique_id: &'a str,
) -> RequestHeadRef<'a> {
    RequestHeadRef {
        method: req.method.as_str(),
        uri: req.raw_path(),
        protocol: protocol_name(req.version),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes()))
            .collect(),
        remote_addr,
        remote_port: 0,
        server_port: 0,
        unique_id,
    }
}

/// `HTTP/1.1` and friends, as REQUEST_PROTOCOL and RESPONSE_PROTOCOL hold them.
pub fn protocol_name(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn has_body(req: &RequestHeader) -> bool {
    let length = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || req.headers.contains_key(http::header::TRANSFER_ENCODING)
}

/// Runs `profile` on the request. Reads (and holds) the body when there is one. When the
/// profile inspects responses and the request goes on, the transaction comes back to
/// watch the response.
pub async fn inspect(
    profile: &WafProfile,
    session: &mut Session,
    client: Option<IpAddr>,
    unique_id: &str,
) -> pingora::Result<(Decision, Option<ResponseWatch>)> {
    let remote_addr = client.map(|ip| ip.to_string()).unwrap_or_default();
    let head = request_head(session.req_header(), &remote_addr, unique_id);
    let mut tx = Transaction::of_head(std::sync::Arc::clone(&profile.rules), &head);
    tx.process_request_headers();
    if tx.interruption().is_none() {
        let mut body = Vec::new();
        if has_body(session.req_header()) {
            session.enable_retry_buffering();
            let mut complete = false;
            while body.len() <= profile.body_limit {
                match session.read_request_body().await? {
                    Some(chunk) => body.extend_from_slice(&chunk),
                    None => {
                        complete = true;
                        break;
                    }
                }
            }
            // Past the limit, or past what Pingora can replay: the body cannot be held.
            let replayable = !session.as_ref().retry_buffer_truncated();
            if !complete || !replayable {
                let inspect_prefix = profile.over_limit == OverLimit::InspectPrefix && replayable;
                if !inspect_prefix {
                    let decision = Decision {
                        verdict: WafVerdict::TooLarge,
                        fired: Vec::new(),
                        on_response: false,
                    };
                    return Ok((decision, None));
                }
                body.truncate(profile.body_limit);
            }
        }
        tx.process_request_body(&body);
    }
    let decision = Decision::of(&tx, profile.mode, 0, false);
    // (In detect mode a request the rules would have stopped has ended its transaction:
    // its response is not inspected.)
    let watch = match (&decision.verdict, &profile.response) {
        (WafVerdict::Allow, Some(policy)) => Some(ResponseWatch::new(
            tx,
            profile.mode,
            std::sync::Arc::clone(policy),
        )),
        _ => None,
    };
    Ok((decision, watch))
}

/// Logs a decision (rule ids, messages, matched data cut to 200 bytes) and counts the
/// rules that matched (the decision itself is counted by the route's metrics).
pub fn record(route: &str, request_id: &str, decision: &Decision) {
    let metrics = crate::metrics::metrics();
    for f in &decision.fired {
        metrics
            .waf_rules
            .with_label_values(&[route, &f.id.to_string()])
            .inc();
    }
    if decision.fired.is_empty() && decision.verdict == WafVerdict::Allow {
        return;
    }
    let rules: Vec<String> = decision
        .fired
        .iter()
        .map(|f| format!("{} \"{}\" [{}]", f.id, f.msg, truncate(&f.data, 200)))
        .collect();
    let line = format!(
        "waf {} route={route} request_id={request_id} rules: {}",
        decision.label(),
        rules.join("; ")
    );
    match decision.verdict {
        WafVerdict::Block { .. } | WafVerdict::TooLarge => log::warn!("{line}"),
        _ => log::info!("{line}"),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

//! The WAF on a live request: builds the engine's view of a Pingora request, runs the
//! request-header phase, holds the body back (up to the profile's limit) and runs the
//! body phase, all before any byte goes upstream. Pingora replays the held body to the
//! origin from its retry buffer, so a blocked request never reaches it at all.

use super::engine::{Fired, Transaction};
use super::profile::WafProfile;
use super::transaction::RequestHead;
use crate::config::waf::{OverLimit, WafMode};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use std::net::IpAddr;

/// What the WAF decided for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WafVerdict {
    Allow,
    /// Refused: answer `status` (403 unless the rule says otherwise).
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
}

impl Decision {
    /// Index of the verdict in [`crate::metrics::WAF_VERDICTS`].
    pub fn verdict_index(&self) -> usize {
        match self.verdict {
            WafVerdict::Allow => 0,
            WafVerdict::Block { .. } => 1,
            WafVerdict::Detect { .. } => 2,
            WafVerdict::TooLarge => 3,
        }
    }

    pub fn label(&self) -> &'static str {
        crate::metrics::WAF_VERDICTS[self.verdict_index()]
    }
}

/// The engine's view of a request head.
pub fn request_head(req: &RequestHeader, client: Option<IpAddr>, unique_id: &str) -> RequestHead {
    let protocol = match req.version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    };
    RequestHead {
        method: req.method.as_str().to_string(),
        uri: req.raw_path().to_vec(),
        protocol: protocol.to_string(),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
        remote_addr: client.map(|ip| ip.to_string()).unwrap_or_default(),
        remote_port: 0,
        server_port: 0,
        unique_id: unique_id.to_string(),
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

/// Runs `profile` on the request. Reads (and holds) the body when there is one.
pub async fn inspect(
    profile: &WafProfile,
    session: &mut Session,
    client: Option<IpAddr>,
    unique_id: &str,
) -> pingora::Result<Decision> {
    let head = request_head(session.req_header(), client, unique_id);
    let mut tx = Transaction::new(&profile.rules, head);
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
                    return Ok(Decision {
                        verdict: WafVerdict::TooLarge,
                        fired: Vec::new(),
                    });
                }
                body.truncate(profile.body_limit);
            }
        }
        tx.process_request_body(&body);
    }
    let fired: Vec<Fired> = tx.fired().iter().filter(|f| f.logged).cloned().collect();
    let verdict = match (tx.interruption(), profile.mode) {
        (Some(i), WafMode::Block) => WafVerdict::Block {
            rule: i.rule_id,
            status: i.status,
        },
        (Some(i), _) => WafVerdict::Detect { rule: i.rule_id },
        (None, _) => WafVerdict::Allow,
    };
    Ok(Decision { verdict, fired })
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

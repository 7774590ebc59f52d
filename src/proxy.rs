//! The Pingora `ProxyHttp` implementation: each hook is a few lines that hand the work to
//! the module that owns the concern.

pub mod ctx;
pub mod draining;
pub mod error_response;

use crate::access_log;
use crate::config::waf::WafMode;
use crate::metrics;
use crate::request_id;
use crate::routing::split::SplitRequest;
use crate::routing::{RequestInfo, Route};
use crate::snapshot::Live;
use crate::upstream::backend::{now_ms, InFlight};
use crate::upstream::Selector;
use crate::waf::guard::{self, WafVerdict};
use async_trait::async_trait;
use bytes::Bytes;
use ctx::{RequestCtx, SplitChoice};
use pingora::http::ResponseHeader;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType, Result, RetryType};
use std::sync::Arc;
use std::time::Instant;

/// The proxy service; holds only the live config.
pub struct Gatehouse {
    live: Live,
}

impl Gatehouse {
    pub fn new(live: Live) -> Self {
        Gatehouse { live }
    }
}

/// Feeds passive health with the failure of the current backend, excludes it for the rest
/// of this request, and says whether another backend may be tried.
fn record_failure_and_move_on(ctx: &mut RequestCtx) -> bool {
    let Some((index, in_flight)) = ctx.upstream.current.take() else {
        return false;
    };
    let snapshot = Arc::clone(&ctx.snapshot);
    let Some(upstream) = ctx.upstream_index.and_then(|i| snapshot.upstreams.get(i)) else {
        return false;
    };
    let backend = in_flight.backend();
    if backend.record_failure(&upstream.passive, now_ms()) {
        log::warn!(
            "upstream {}: backend {} taken out for {:?} after {} failed requests in a row",
            upstream.name,
            backend.addr,
            upstream.passive.cooldown,
            upstream.passive.max_fails
        );
    }
    ctx.upstream.failed.push(index);
    let retry =
        ctx.upstream.attempts <= upstream.retries && upstream.has_usable(&ctx.upstream.failed);
    if retry {
        metrics::record_retry(&upstream.name);
    }
    retry
}

/// Runs the route's WAF profile on the request (head and held body); the status to
/// refuse it with, if the WAF decided so. A profile that inspects responses leaves its
/// watch in `ctx`.
async fn waf_refusal(
    route: &Route,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<Option<u16>> {
    let Some(profile) = route.waf.as_ref().filter(|p| p.mode != WafMode::Off) else {
        return Ok(None);
    };
    let request_id = String::from_utf8_lossy(ctx.request_id.as_bytes()).into_owned();
    let (decision, watch) = guard::inspect(profile, session, ctx.client_ip, &request_id).await?;
    ctx.waf_response = watch.map(Box::new);
    record_waf(route, &request_id, &decision);
    Ok(match decision.verdict {
        WafVerdict::Block { status, .. } => Some(status),
        WafVerdict::TooLarge => Some(413),
        WafVerdict::Allow | WafVerdict::Detect { .. } => None,
    })
}

fn record_waf(route: &Route, request_id: &str, decision: &guard::Decision) {
    route.metrics.record_waf(decision.verdict_index());
    guard::record(&route.name, request_id, decision);
}

/// Reports a decision of the response-phase rules; an error when they stop the response
/// (the WAF's own log line says why, so Pingora's error log is suppressed for it).
fn waf_response_outcome(ctx: &mut RequestCtx, decision: Option<guard::Decision>) -> Result<()> {
    let Some(decision) = decision else {
        return Ok(());
    };
    let refused = match decision.verdict {
        WafVerdict::Block { status, .. } => Some(status),
        _ => None,
    };
    ctx.waf_stopped_response |= refused.is_some();
    if let Some(route) = ctx.route() {
        let request_id = String::from_utf8_lossy(ctx.request_id.as_bytes());
        record_waf(route, &request_id, &decision);
    }
    match refused {
        Some(status) => Err(http_status(status, "response refused by the WAF")),
        None => Ok(()),
    }
}

fn http_status(code: u16, why: &'static str) -> Box<Error> {
    Error::explain(ErrorType::HTTPStatus(code), why)
}

#[async_trait]
impl ProxyHttp for Gatehouse {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.live.load_full())
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let req = session.req_header();
        ctx.request_id = request_id::accept_or_make(req.headers.get(request_id::HEADER));
        ctx.peer_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.client_ip = ctx
            .peer_ip
            .map(|peer| ctx.snapshot.forwarding.client_ip(peer, req));
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri.host())
            .unwrap_or("");
        let info = RequestInfo {
            host,
            path: req.uri.path(),
            method: &req.method,
            headers: &req.headers,
        };
        ctx.route = ctx
            .snapshot
            .router
            .find(&info)
            .map(|(position, _)| position);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        // Held apart from `ctx`, so the route stays at hand across the WAF's awaits.
        let snapshot = Arc::clone(&ctx.snapshot);
        let Some(route) = ctx.route.and_then(|i| snapshot.router.route(i)) else {
            error_response::respond(session, 404, &ctx.request_id).await;
            return Ok(true);
        };
        // Before the split: a rejected request is neither assigned nor judged.
        let declared = session
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > ctx.snapshot.max_request_body) {
            error_response::respond(session, 413, &ctx.request_id).await;
            return Ok(true);
        }
        if let Some(status) = waf_refusal(route, session, ctx).await? {
            error_response::respond(session, status, &ctx.request_id).await;
            return Ok(true);
        }
        let (upstream_index, variant) = match &route.split {
            None => (route.upstream, None),
            Some(split) => {
                let req = session.req_header();
                let assignment = split.assign(&SplitRequest {
                    headers: &req.headers,
                    query: req.uri.query(),
                    client_ip: ctx.client_ip,
                });
                (
                    split.variants[assignment.variant].upstream,
                    Some(SplitChoice {
                        variant: assignment.variant,
                        set_cookie: assignment.set_cookie,
                    }),
                )
            }
        };
        ctx.upstream_index = Some(upstream_index);
        ctx.variant = variant;
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        // Release the backend of a previous attempt before choosing the next.
        ctx.upstream.current = None;
        let snapshot = Arc::clone(&ctx.snapshot);
        let upstream = ctx
            .upstream_index
            .and_then(|i| snapshot.upstreams.get(i))
            .ok_or_else(|| http_status(404, "no route"))?;
        let selector = Selector {
            client_ip: ctx.client_ip,
            headers: &session.req_header().headers,
            exclude: &ctx.upstream.failed,
        };
        let index = upstream
            .select(&selector)
            .ok_or_else(|| http_status(503, "no healthy backend"))?;
        let peer = upstream
            .peer(index)
            .ok_or_else(|| http_status(503, "no healthy backend"))?;
        let backend = Arc::clone(&upstream.backends[index]);
        ctx.upstream.last = Some(backend.addr);
        ctx.upstream.current = Some((index, InFlight::start(backend)));
        ctx.upstream.attempts += 1;
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // A request that never reached a backend can always go to another one.
        let retry = record_failure_and_move_on(ctx);
        e.set_retry(retry);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("peer {peer}"));
        let replayable = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        let nothing_sent = session.as_ref().response_written().is_none();
        let stale_pooled_connection = client_reused && matches!(e.retry, RetryType::ReusedOnly);
        if stale_pooled_connection {
            // The backend closed an idle keep-alive connection as we reused it: not its
            // fault; Pingora's rule retries a replayable request on a fresh connection.
            e.set_retry(replayable);
        } else if e.esource() == &ErrorSource::Upstream {
            // As nginx's `proxy_next_upstream error timeout`: the failure counts against the
            // backend, and an idempotent request it failed before answering goes to another.
            let can_move_on = record_failure_and_move_on(ctx);
            e.set_retry(can_move_on && replayable && nothing_sent);
        } else {
            e.set_retry(false);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut pingora::http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let _ = session;
        ctx.snapshot
            .forwarding
            .apply(upstream_request, ctx.peer_ip, ctx.client_ip, "http")?;
        upstream_request.insert_header(request_id::HEADER, ctx.request_id.clone())?;
        if let Some(route) = ctx.route() {
            route.request_headers.apply(upstream_request)?;
        }
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(chunk) = body {
            ctx.body_bytes += chunk.len() as u64;
            if ctx.body_bytes > ctx.snapshot.max_request_body {
                return Err(http_status(
                    413,
                    "request body larger than max_request_body",
                ));
            }
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some((_, in_flight)) = &ctx.upstream.current {
            in_flight.backend().record_success();
        }
        ctx.snapshot.hide_headers.apply(upstream_response)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(watch) = ctx.waf_response.as_mut() {
            let head_request = session.req_header().method == http::Method::HEAD;
            let decision = watch.on_head(head_request, upstream_response);
            waf_response_outcome(ctx, decision)?;
        }
        if let Some(route) = ctx.route() {
            route.response_headers.apply(upstream_response)?;
            if let (Some(split), Some(choice)) = (&route.split, &ctx.variant) {
                if let Some(cookie) = &choice.set_cookie {
                    upstream_response.append_header(http::header::SET_COOKIE, cookie.clone())?;
                }
                if let Some(name) = &split.expose_header {
                    let variant = &split.variants[choice.variant].name;
                    upstream_response.insert_header(name.clone(), variant.as_str())?;
                }
            }
        }
        upstream_response.insert_header(request_id::HEADER, ctx.request_id.clone())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(watch) = ctx.waf_response.as_mut() {
            let decision = watch.on_body(body, end_of_stream);
            waf_response_outcome(ctx, decision)?;
        }
        Ok(None)
    }

    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, _error: &Error) -> bool {
        ctx.waf_stopped_response
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let status = error_response::status_for(e);
        // After the response head was committed (a response the WAF stopped on its body),
        // nothing more can be said: the connection closes.
        if status > 0 && session.as_ref().response_written().is_none() {
            error_response::respond(session, status, &ctx.request_id).await;
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        ctx.upstream.current = None;
        let backend = ctx.upstream.last;
        let status = session
            .as_ref()
            .response_written()
            .map_or(0, |r| r.status.as_u16());
        let now = Instant::now();
        let elapsed = now - ctx.started;
        if let Some(log) = &ctx.snapshot.access_log {
            log.write(&access_entry(session, ctx, status, elapsed, backend));
        }
        let Some(route) = ctx.route() else {
            metrics::record_unmatched(status);
            return;
        };
        route
            .metrics
            .record(ctx.upstream_index, status, elapsed.as_secs_f64());
        if let (Some(split), Some(choice)) = (&route.split, &ctx.variant) {
            let failed = status >= 500 || e.is_some_and(|e| e.esource() == &ErrorSource::Upstream);
            split.record(choice.variant, now, failed, elapsed);
        }
    }
}

/// The access log line of a finished request.
fn access_entry<'a>(
    session: &'a Session,
    ctx: &'a RequestCtx,
    status: u16,
    duration: std::time::Duration,
    backend: Option<std::net::SocketAddr>,
) -> access_log::Entry<'a> {
    let req = session.req_header();
    let header =
        |name: http::header::HeaderName| req.headers.get(name).and_then(|v| v.to_str().ok());
    access_log::Entry {
        client: ctx.client_ip,
        method: req.method.as_str(),
        uri: req.uri.path_and_query().map_or("/", |p| p.as_str()),
        protocol: match req.version {
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        },
        status,
        bytes: session.as_ref().body_bytes_sent(),
        duration,
        route: ctx.route().map(|r| r.name.as_str()),
        upstream: ctx.upstream().map(|u| u.name.as_str()),
        backend,
        request_id: ctx.request_id.to_str().unwrap_or("-"),
        referer: header(http::header::REFERER),
        user_agent: header(http::header::USER_AGENT),
    }
}

//! The admin API, on its own listener (loopback by default), never on the public port.
//!
//! Reads are open to whoever can reach the listener: `GET /health`, `GET /status` (JSON),
//! `GET /metrics` (Prometheus text). Calls that change state need
//! `Authorization: Bearer <token>`, the token coming from the environment variable named
//! by `admin.token_env`; without it they are refused: `POST /reload`, and
//! `PUT /splits/<route>` with `{"weight": 20}` (canary form) or
//! `{"weights": {"upstream-a": 50, "upstream-b": 50}}` (variants form).

use crate::metrics;
use crate::reload::Reloader;
use crate::routing::split::control::Phase;
use crate::snapshot::{Live, Snapshot};
use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// The largest request body the admin API reads.
const MAX_BODY: usize = 64 * 1024;

pub struct AdminApp {
    live: Live,
    reloader: Arc<Reloader>,
    /// None: mutating calls are refused.
    token: Option<String>,
    token_env: String,
}

impl AdminApp {
    /// Reads the token from `token_env` now; it is not re-read on reload.
    pub fn new(live: Live, reloader: Arc<Reloader>, token_env: &str) -> Self {
        let token = std::env::var(token_env).ok().filter(|t| !t.is_empty());
        if token.is_none() {
            log::warn!("admin API: {token_env} is not set; calls that change state are refused");
        }
        AdminApp {
            live,
            reloader,
            token,
            token_env: token_env.to_string(),
        }
    }

    /// The refusal to send, or None when the caller may change state.
    fn denial(&self, session: &ServerSession) -> Option<Response<Vec<u8>>> {
        let Some(token) = &self.token else {
            return Some(json_response(
                StatusCode::FORBIDDEN,
                &json!({ "error": format!("state changes are off: set {} to a token", self.token_env) }),
            ));
        };
        let given = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if constant_time_eq(given.as_bytes(), token.as_bytes()) {
            None
        } else {
            let mut resp = json_response(
                StatusCode::UNAUTHORIZED,
                &json!({ "error": "a valid `Authorization: Bearer <token>` is required" }),
            );
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            Some(resp)
        }
    }

    fn reload(&self) -> Response<Vec<u8>> {
        match self.reloader.reload() {
            Ok(done) => json_response(
                StatusCode::OK,
                &json!({ "version": done.version, "needs_upgrade": done.needs_upgrade }),
            ),
            Err(e) => json_response(
                StatusCode::BAD_REQUEST,
                &json!({
                    "error": "the config file is invalid; the running config stays",
                    "problems": e.problems().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                    "message": e.to_string(),
                }),
            ),
        }
    }

    fn set_split(&self, route: &str, body: &[u8]) -> Response<Vec<u8>> {
        let snapshot = self.live.load_full();
        let Some(split) = snapshot.router.named(route).and_then(|r| r.split.clone()) else {
            return json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": format!("no route {route:?} with a split") }),
            );
        };
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return bad_request("the body must be JSON: {\"weight\": 20} or {\"weights\": {...}}");
        };
        let applied = if let Some(weight) = request.get("weight") {
            match weight.as_u64().and_then(|w| u32::try_from(w).ok()) {
                Some(w) if w <= 100 && split.canary.is_some() => split.set_canary_weight(w),
                Some(_) if split.canary.is_none() => {
                    return bad_request("this split has variants: send {\"weights\": {...}}")
                }
                _ => return bad_request("`weight` is the canary's percent, 0..=100"),
            }
        } else if let Some(map) = request.get("weights").and_then(Value::as_object) {
            let weights: Option<Vec<u32>> = split
                .variants
                .iter()
                .map(|v| {
                    map.get(&v.name)
                        .and_then(Value::as_u64)
                        .and_then(|w| u32::try_from(w).ok())
                        .filter(|w| *w <= 10_000)
                })
                .collect();
            match weights {
                Some(w) if map.len() == split.variants.len() => split.set_weights(w),
                _ => {
                    return bad_request(
                        "`weights` needs every variant's upstream name with a weight 0..=10000",
                    )
                }
            }
        } else {
            return bad_request(
                "send {\"weight\": PERCENT} or {\"weights\": {UPSTREAM: WEIGHT, ...}}",
            );
        };
        if !applied {
            return bad_request("at least one weight must be above 0");
        }
        if let Some(control) = &split.control {
            control.reset();
        }
        log::info!("admin: split of route {route} set to {:?}", split.weights());
        json_response(StatusCode::OK, &split_status(route, &split))
    }
}

fn bad_request(message: &str) -> Response<Vec<u8>> {
    json_response(StatusCode::BAD_REQUEST, &json!({ "error": message }))
}

fn json_response(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    let mut text = body.to_string().into_bytes();
    text.push(b'\n');
    response(status, "application/json", text)
}

fn response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_default()
}

/// Compares without revealing, by timing, how much of the token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn split_status(route: &str, split: &crate::routing::split::Split) -> Value {
    let phase = split.control.as_ref().map(|c| match c.phase() {
        Phase::Ramping { step, .. } => json!({ "state": "ramping", "step": step }),
        Phase::Steady => json!({ "state": "steady" }),
        Phase::RolledBack { reason } => json!({ "state": "rolled_back", "reason": reason }),
    });
    json!({
        "route": route,
        "variants": split.variants.iter().zip(split.weights()).map(|(v, w)| json!({
            "upstream": v.name,
            "weight": w,
            "assigned": v.assigned.get(),
        })).collect::<Vec<_>>(),
        "canary_weight": split.canary_weight(),
        "control": phase,
        "rollbacks": split.control.as_ref().map(|c| c.rollbacks.load(Relaxed)),
    })
}

/// The `/status` document.
pub fn status(snapshot: &Snapshot, reloader: &Reloader) -> Value {
    let now = crate::upstream::backend::now_ms();
    json!({
        "version": snapshot.version,
        "listeners": snapshot.config.listeners.iter().map(|l| json!({
            "name": l.name, "address": l.address.to_string(),
        })).collect::<Vec<_>>(),
        "upstreams": snapshot.upstreams.iter().map(|u| json!({
            "name": u.name,
            "backends": u.backends.iter().map(|b| json!({
                "address": b.addr.to_string(),
                "weight": b.weight,
                "healthy": b.is_healthy(),
                "available": b.is_available(now),
                "in_flight": b.in_flight(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "splits": snapshot.router.splits().map(|(route, split)| split_status(route, split)).collect::<Vec<_>>(),
        "reloads": { "ok": reloader.succeeded.load(Relaxed), "failed": reloader.failed.load(Relaxed) },
    })
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (Method::GET, ["health"]) => json_response(StatusCode::OK, &json!({ "status": "ok" })),
            (Method::GET, ["status"]) => {
                json_response(StatusCode::OK, &status(&self.live.load(), &self.reloader))
            }
            (Method::GET, ["metrics"]) => response(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                metrics::render(&self.live.load()).into_bytes(),
            ),
            (Method::POST, ["reload"]) => match self.denial(session) {
                None => self.reload(),
                Some(denied) => denied,
            },
            (Method::PUT | Method::POST, ["splits", route]) => {
                if let Some(denied) = self.denial(session) {
                    return denied;
                }
                let route = route.to_string();
                let mut body = Vec::new();
                loop {
                    match session.read_request_body().await {
                        Ok(Some(chunk)) => {
                            body.extend_from_slice(&chunk);
                            if body.len() > MAX_BODY {
                                return json_response(
                                    StatusCode::PAYLOAD_TOO_LARGE,
                                    &json!({ "error": "body too large" }),
                                );
                            }
                        }
                        Ok(None) => break,
                        Err(_) => return bad_request("could not read the body"),
                    }
                }
                self.set_split(&route, &body)
            }
            (_, ["health" | "status" | "metrics" | "reload"] | ["splits", _]) => json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({ "error": "method not allowed" }),
            ),
            _ => json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": "not found", "endpoints": [
                    "GET /health", "GET /status", "GET /metrics", "POST /reload", "PUT /splits/<route>"
                ] }),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}

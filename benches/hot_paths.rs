//! Criterion benches of the per-request work Gatehouse adds on top of Pingora, built with
//! the same constructors the proxy uses: route lookup over 30 and 300 routes, forwarding
//! headers, header rewrites, request ids, backend selection and split assignment.

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::config;
use gatehouse::request_id;
use gatehouse::routing::split::SplitRequest;
use gatehouse::routing::RequestInfo;
use gatehouse::snapshot::Snapshot;
use gatehouse::upstream::Selector;
use http::{HeaderMap, Method};
use pingora::http::RequestHeader;
use std::hint::black_box;

/// A config with `n` routes: hosts `site{i}.example.com`, each with an exact, a prefix and
/// a regex route, like a real multi-site edge.
fn config_with_routes(n: usize) -> Snapshot {
    let mut routes = String::new();
    for i in 0..n / 3 {
        routes.push_str(&format!(
            "  - {{ name: exact-{i}, upstream: app, match: {{ host: site{i}.example.com, path: {{ exact: /login }} }} }}\n"
        ));
        routes.push_str(&format!(
            "  - {{ name: prefix-{i}, upstream: app, match: {{ host: site{i}.example.com, path: {{ prefix: /api/v1/ }} }}, request_headers: {{ set: {{ X-Site: s{i} }} }} }}\n"
        ));
        routes.push_str(&format!(
            "  - {{ name: regex-{i}, upstream: app, match: {{ host: \"*.site{i}.example.com\", path: {{ regex: \"^/static/[a-z]+/\" }} }} }}\n"
        ));
    }
    let text = format!(
        "listeners: [ {{ name: p, address: \"127.0.0.1:8080\" }} ]\ntrusted_proxies: [10.0.0.0/8]\nupstreams:\n  app:\n    backends: [ {{ address: \"127.0.0.1:9001\", weight: 3 }}, {{ address: \"127.0.0.1:9002\" }} ]\nroutes:\n{routes}"
    );
    let config = config::parse(&text, "bench.yaml").expect("bench config");
    Snapshot::build(&config).expect("snapshot builds")
}

fn route_lookup(c: &mut Criterion) {
    let headers = HeaderMap::new();
    for n in [30, 300] {
        let snapshot = config_with_routes(n);
        assert_eq!(snapshot.router.len(), n);
        let last_site = n / 3 - 1;
        let host = format!("site{last_site}.example.com");
        let info = RequestInfo {
            host: &host,
            path: "/api/v1/users/42",
            method: &Method::GET,
            headers: &headers,
        };
        assert!(snapshot.router.find(&info).is_some());
        c.bench_function(&format!("route lookup, {n} routes, last site"), |b| {
            b.iter(|| black_box(snapshot.router.find(black_box(&info))))
        });
    }
}

fn request() -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/api/v1/users/42?x=1", None).expect("head");
    for (k, v) in [
        ("host", "site9.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        ),
        ("accept", "text/html,application/xhtml+xml"),
        ("x-forwarded-for", "203.0.113.7"),
        ("cookie", "session=abc123; theme=dark"),
    ] {
        req.insert_header(k, v).expect("header");
    }
    req
}

fn per_request_headers(c: &mut Criterion) {
    let snapshot = config_with_routes(30);
    let template = request();
    c.bench_function("forwarding headers (untrusted client)", |b| {
        b.iter_batched_ref(
            || template.clone(),
            |req| {
                let peer = "198.51.100.3".parse().expect("ip");
                let client = snapshot.forwarding.client_ip(peer, req);
                snapshot
                    .forwarding
                    .apply(req, Some(peer), Some(client), "http")
            },
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("forwarding headers (trusted proxy)", |b| {
        b.iter_batched_ref(
            || template.clone(),
            |req| {
                let peer = "10.1.2.3".parse().expect("ip");
                let client = snapshot.forwarding.client_ip(peer, req);
                snapshot
                    .forwarding
                    .apply(req, Some(peer), Some(client), "http")
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let headers = template.headers.clone();
    let info = RequestInfo {
        host: "site9.example.com",
        path: "/api/v1/users/42",
        method: &Method::GET,
        headers: &headers,
    };
    let (_, route) = snapshot.router.find(&info).expect("route");
    c.bench_function("route request header rewrite", |b| {
        b.iter_batched_ref(
            || template.clone(),
            |req| route.request_headers.apply(req),
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("request id (none sent: made)", |b| {
        b.iter(|| black_box(request_id::accept_or_make(None)))
    });
}

fn backend_selection(c: &mut Criterion) {
    let snapshot = config_with_routes(30);
    let upstream = snapshot.upstreams.get(0).expect("upstream");
    let headers = HeaderMap::new();
    let selector = Selector {
        client_ip: Some("198.51.100.3".parse().expect("ip")),
        headers: &headers,
        exclude: &[],
    };
    c.bench_function("backend selection, weighted round robin", |b| {
        b.iter(|| black_box(upstream.select(black_box(&selector))))
    });
}

fn split_pick(c: &mut Criterion) {
    let text = "listeners: [ { name: p, address: \"127.0.0.1:8080\" } ]\nupstreams:\n  stable: { backends: [ { address: \"127.0.0.1:9001\" } ] }\n  canary: { backends: [ { address: \"127.0.0.1:9002\" } ] }\nroutes:\n  - name: app\n    upstream: stable\n    split: { canary: canary, weight: 10, sticky: { cookie: { name: gh_variant } } }\n";
    let config = config::parse(text, "bench.yaml").expect("bench config");
    let snapshot = Snapshot::build(&config).expect("snapshot builds");
    let (_, split) = snapshot.router.splits().next().expect("a split");
    let mut returning = HeaderMap::new();
    returning.insert(
        "cookie",
        "theme=dark; gh_variant=4242".parse().expect("cookie"),
    );
    let request = SplitRequest {
        headers: &returning,
        query: None,
        client_ip: None,
    };
    c.bench_function("split pick, sticky cookie (returning client)", |b| {
        b.iter(|| black_box(split.assign(black_box(&request))))
    });
    let new_client = HeaderMap::new();
    let request = SplitRequest {
        headers: &new_client,
        query: None,
        client_ip: None,
    };
    c.bench_function("split pick, first visit (sets the cookie)", |b| {
        b.iter(|| black_box(split.assign(black_box(&request))))
    });
}

criterion_group!(
    benches,
    route_lookup,
    per_request_headers,
    backend_selection,
    split_pick
);
criterion_main!(benches);

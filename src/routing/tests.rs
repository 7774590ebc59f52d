use super::*;
use crate::metrics::RouteMetrics;

/// Builds a router from YAML route sections (all pointing at upstream 0).
fn router(yaml: &str) -> Router {
    let sections: Vec<RouteSection> = serde_yaml::from_str(yaml).expect("valid routes");
    Router::new(
        sections
            .iter()
            .map(|s| Route::from_config(s, 0, None, RouteMetrics::new(&s.name, &[(0, "u")])))
            .collect(),
    )
}

fn pick<'a>(
    router: &'a Router,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<&'a str> {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    let info = RequestInfo {
        host,
        path,
        method: &method,
        headers: &map,
    };
    router.find(&info).map(|(_, r)| r.name.as_str())
}

#[test]
fn exact_host_beats_wildcard_beats_any() {
    let r = router(
        r#"
- { name: any, upstream: u }
- { name: wild, upstream: u, match: { host: "*.example.com" } }
- { name: exact, upstream: u, match: { host: api.example.com } }
"#,
    );
    assert_eq!(pick(&r, "GET", "api.example.com", "/", &[]), Some("exact"));
    assert_eq!(
        pick(&r, "GET", "API.Example.com:8080", "/", &[]),
        Some("exact")
    );
    assert_eq!(pick(&r, "GET", "www.example.com", "/", &[]), Some("wild"));
    assert_eq!(pick(&r, "GET", "a.b.example.com", "/", &[]), Some("wild"));
    assert_eq!(pick(&r, "GET", "example.com", "/", &[]), Some("any"));
    assert_eq!(pick(&r, "GET", "other.org", "/", &[]), Some("any"));
}

#[test]
fn longer_wildcard_beats_shorter() {
    let r = router(
        r#"
- { name: short, upstream: u, match: { host: "*.example.com" } }
- { name: long, upstream: u, match: { host: "*.eu.example.com" } }
"#,
    );
    assert_eq!(pick(&r, "GET", "x.eu.example.com", "/", &[]), Some("long"));
    assert_eq!(pick(&r, "GET", "x.us.example.com", "/", &[]), Some("short"));
}

#[test]
fn exact_path_beats_longest_prefix_beats_regex() {
    let r = router(
        r#"
- { name: re, upstream: u, match: { path: { regex: "^/v[0-9]+/" } } }
- { name: short, upstream: u, match: { path: { prefix: /v1/ } } }
- { name: long, upstream: u, match: { path: { prefix: /v1/users/ } } }
- { name: exact, upstream: u, match: { path: { exact: /v1/users/me } } }
"#,
    );
    assert_eq!(pick(&r, "GET", "h", "/v1/users/me", &[]), Some("exact"));
    assert_eq!(pick(&r, "GET", "h", "/v1/users/42", &[]), Some("long"));
    assert_eq!(pick(&r, "GET", "h", "/v1/items", &[]), Some("short"));
    assert_eq!(pick(&r, "GET", "h", "/v2/items", &[]), Some("re"));
    assert_eq!(pick(&r, "GET", "h", "/health", &[]), None);
}

#[test]
fn host_counts_before_path() {
    let r = router(
        r#"
- { name: path, upstream: u, match: { path: { exact: /login } } }
- { name: host, upstream: u, match: { host: app.example.com } }
"#,
    );
    assert_eq!(
        pick(&r, "GET", "app.example.com", "/login", &[]),
        Some("host")
    );
    assert_eq!(
        pick(&r, "GET", "other.example.com", "/login", &[]),
        Some("path")
    );
}

#[test]
fn method_and_header_conditions_add_specificity() {
    let r = router(
        r#"
- { name: plain, upstream: u, match: { path: { prefix: /api/ } } }
- { name: beta, upstream: u, match: { path: { prefix: /api/ }, headers: [ { name: X-Beta, value: "1" } ] } }
- { name: writes, upstream: u, match: { path: { prefix: /api/ }, methods: [POST, PUT] } }
- { name: traced, upstream: u, match: { path: { prefix: /api/ }, headers: [ { name: X-Trace } ] } }
"#,
    );
    assert_eq!(pick(&r, "GET", "h", "/api/x", &[]), Some("plain"));
    assert_eq!(
        pick(&r, "GET", "h", "/api/x", &[("x-beta", "1")]),
        Some("beta")
    );
    assert_eq!(
        pick(&r, "GET", "h", "/api/x", &[("x-beta", "2")]),
        Some("plain")
    );
    assert_eq!(pick(&r, "POST", "h", "/api/x", &[]), Some("writes"));
    assert_eq!(
        pick(&r, "GET", "h", "/api/x", &[("x-trace", "")]),
        Some("traced")
    );
}

#[test]
fn ties_go_to_config_order() {
    let r = router(
        r#"
- { name: first, upstream: u, match: { path: { prefix: /a } } }
- { name: second, upstream: u, match: { path: { prefix: /b } } }
- { name: third, upstream: u, match: { path: { regex: "^/c" } } }
- { name: fourth, upstream: u, match: { path: { regex: "^/c" } } }
"#,
    );
    assert_eq!(pick(&r, "GET", "h", "/c", &[]), Some("third"));
}

#[test]
fn no_match_is_none() {
    let r = router(r#"[ { name: a, upstream: u, match: { host: a.example } } ]"#);
    assert_eq!(pick(&r, "GET", "b.example", "/", &[]), None);
}

#[test]
fn hosts_lose_port_and_trailing_dot() {
    use matcher::host_without_port;
    assert_eq!(host_without_port("example.com:8080"), "example.com");
    assert_eq!(host_without_port("example.com."), "example.com");
    assert_eq!(host_without_port("[::1]:8080"), "[::1]");
    assert_eq!(host_without_port("[::1]"), "[::1]");
}

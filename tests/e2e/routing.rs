//! Routing through the real proxy: host (exact, wildcard), path (exact, prefix, regex),
//! method and header conditions, precedence, and 404 when nothing matches.

use super::harness::{client, get, Origin, Proxy};

/// (method, path, request headers, origin expected to answer)
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

#[tokio::test(flavor = "multi_thread")]
async fn requests_reach_the_most_specific_route() {
    let names = [
        "exact-host",
        "wild-host",
        "exact-path",
        "prefix",
        "long-prefix",
        "regex",
        "writes",
        "beta",
    ];
    let mut origins = Vec::new();
    for name in names {
        origins.push(Origin::start(name).await);
    }
    let upstreams: String = origins
        .iter()
        .map(|o| {
            format!(
                "  {}:\n    backends: [ {{ address: \"{}\" }} ]\n",
                o.name, o.addr
            )
        })
        .collect();
    let config = format!(
        r#"upstreams:
{upstreams}routes:
  - {{ name: r-regex, upstream: regex, match: {{ path: {{ regex: "^/v[0-9]+/" }} }} }}
  - {{ name: r-prefix, upstream: prefix, match: {{ path: {{ prefix: /v1/ }} }} }}
  - {{ name: r-long, upstream: long-prefix, match: {{ path: {{ prefix: /v1/users/ }} }} }}
  - {{ name: r-exact-path, upstream: exact-path, match: {{ path: {{ exact: /v1/users/me }} }} }}
  - {{ name: r-writes, upstream: writes, match: {{ path: {{ prefix: /v1/ }}, methods: [POST] }} }}
  - {{ name: r-beta, upstream: beta, match: {{ path: {{ prefix: /v1/ }}, headers: [ {{ name: X-Beta, value: "on" }} ] }} }}
  - {{ name: r-wild, upstream: wild-host, match: {{ host: "*.example.com" }} }}
  - {{ name: r-exact-host, upstream: exact-host, match: {{ host: api.example.com }} }}
"#
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let cases: &[Case] = &[
        ("GET", "/v1/users/me", &[], "exact-path"),
        ("GET", "/v1/users/42", &[], "long-prefix"),
        ("GET", "/v1/items", &[], "prefix"),
        ("GET", "/v2/items", &[], "regex"),
        ("POST", "/v1/items", &[], "writes"),
        ("GET", "/v1/items", &[("x-beta", "on")], "beta"),
        ("GET", "/v1/items", &[("x-beta", "off")], "prefix"),
        (
            "GET",
            "/anything",
            &[("host", "api.example.com")],
            "exact-host",
        ),
        (
            "GET",
            "/v1/users/me",
            &[("host", "api.example.com:8080")],
            "exact-host",
        ),
        (
            "GET",
            "/anything",
            &[("host", "www.example.com")],
            "wild-host",
        ),
        (
            "GET",
            "/anything",
            &[("host", "a.b.example.com")],
            "wild-host",
        ),
    ];
    for (method, path, headers, expected) in cases {
        let mut req = c.request(method.parse().expect("method"), proxy.url(path));
        for (k, v) in *headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), 200, "{method} {path} {headers:?}");
        let body = resp.text().await.expect("body");
        assert_eq!(&body, expected, "{method} {path} {headers:?}");
    }
    let writes = &origins[6];
    assert_eq!(writes.name, "writes");
    assert!(writes.requests().iter().all(|seen| seen.method == "POST"));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_matching_route_is_404_and_reaches_no_origin() {
    let origin = Origin::start("api").await;
    let config = format!(
        "upstreams:\n  api:\n    backends: [ {{ address: \"{}\" }} ]\nroutes:\n  - {{ name: api, upstream: api, match: {{ host: api.example.com }} }}\n",
        origin.addr
    );
    let proxy = Proxy::start(&config).await;
    let (status, headers, body) =
        get(&client(), &proxy, "/x", &[("host", "other.example.com")]).await;
    assert_eq!(status, 404);
    assert!(body.starts_with("404 Not Found"), "{body}");
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(origin.request_count(), 0);
}

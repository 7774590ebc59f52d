//! What the origin and the client see: forwarding headers (trusted and not), the request
//! id, hidden backend headers, and per-route header rewrites.

use super::harness::{backends, client, get, Origin, Proxy};

fn config(origin: &Origin, trusted: &str) -> String {
    format!(
        "trusted_proxies: [{trusted}]\nupstreams:\n  app:\n    backends:\n{}routes:\n  - name: all\n    upstream: app\n    request_headers: {{ remove: [X-Debug], set: {{ X-Env: prod }}, add: {{ Via: gatehouse }} }}\n    response_headers: {{ remove: [X-Origin], set: {{ X-Frame-Options: DENY }} }}\n",
        backends(&[origin])
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_from_an_untrusted_client_is_replaced() {
    let origin = Origin::start("app").await;
    let proxy = Proxy::start(&config(&origin, "10.0.0.0/8")).await;
    let headers = [
        ("x-forwarded-for", "203.0.113.5"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("x-real-ip", "203.0.113.5"),
        ("host", "shop.example.com"),
    ];
    let (status, _, _) = get(&client(), &proxy, "/", &headers).await;
    assert_eq!(status, 200);
    let seen = &origin.requests()[0];
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("shop.example.com"));
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_from_a_trusted_proxy_is_appended() {
    let origin = Origin::start("app").await;
    let proxy = Proxy::start(&config(&origin, "127.0.0.1/32")).await;
    let headers = [
        ("x-forwarded-for", "203.0.113.5"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "shop.example.com"),
    ];
    let (status, _, _) = get(&client(), &proxy, "/", &headers).await;
    assert_eq!(status, 200);
    let seen = &origin.requests()[0];
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.5, 127.0.0.1")
    );
    assert_eq!(seen.header("x-real-ip"), Some("203.0.113.5"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), Some("shop.example.com"));
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_are_kept_when_valid_and_made_otherwise() {
    let origin = Origin::start("app").await;
    let proxy = Proxy::start(&config(&origin, "10.0.0.0/8")).await;
    let c = client();
    let (_, headers, _) = get(&c, &proxy, "/", &[("x-request-id", "trace-abc.123")]).await;
    assert_eq!(headers["x-request-id"], "trace-abc.123");
    assert_eq!(
        origin.requests()[0].header("x-request-id"),
        Some("trace-abc.123")
    );

    let (_, headers, _) = get(&c, &proxy, "/", &[("x-request-id", "bad id with spaces")]).await;
    let made = headers["x-request-id"].to_str().expect("ascii").to_string();
    assert_eq!(made.len(), 36, "a UUID: {made}");
    assert_eq!(
        origin.requests()[1].header("x-request-id"),
        Some(made.as_str())
    );

    let (_, headers, _) = get(&c, &proxy, "/", &[]).await;
    let other = headers["x-request-id"].to_str().expect("ascii");
    assert_ne!(other, made);
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_headers_are_hidden_and_route_rewrites_apply() {
    let origin = Origin::start("app").await;
    let proxy = Proxy::start(&config(&origin, "10.0.0.0/8")).await;
    let (status, headers, body) = get(
        &client(),
        &proxy,
        "/",
        &[("x-debug", "1"), ("x-env", "dev"), ("via", "1.1 cdn")],
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "app"));
    // Response: backend identity hidden, route rewrites applied.
    assert!(headers.get("server").is_none(), "{headers:?}");
    assert!(headers.get("x-powered-by").is_none(), "{headers:?}");
    assert!(headers.get("x-origin").is_none(), "{headers:?}");
    assert_eq!(headers["x-frame-options"], "DENY");
    // Request: removed, set (replacing) and added (appending).
    let seen = &origin.requests()[0];
    assert_eq!(seen.header("x-debug"), None);
    assert_eq!(seen.header("x-env"), Some("prod"));
    let via: Vec<_> = seen
        .headers
        .get_all("via")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert_eq!(via, vec!["1.1 cdn", "gatehouse"]);
}

//! Clean errors: 502 when no backend can be reached, 503 when none is healthy, 504 on an
//! upstream timeout, 413 past the body limit, 400 for a malformed request. Bodies are short
//! and name no backend.

use super::harness::{client, get, one_upstream, wait_until, Origin, Proxy};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An address nothing listens on.
fn closed_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr.to_string()
}

fn assert_clean(body: &str, status: u16) {
    assert!(body.starts_with(&format!("{status} ")), "{body}");
    assert!(body.len() < 120, "short body: {body}");
    assert!(!body.contains("127.0.0.1"), "no backend address: {body}");
    assert!(
        !body.to_lowercase().contains("pingora"),
        "no internals: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_backends_give_502() {
    let dead = closed_address();
    let config = format!(
        "upstreams:\n  app:\n    backends: [ {{ address: \"{dead}\" }} ]\nroutes:\n  - {{ name: all, upstream: app }}\n"
    );
    let proxy = Proxy::start(&config).await;
    let (status, headers, body) = get(&client(), &proxy, "/", &[]).await;
    assert_eq!(status, 502);
    assert_clean(&body, 502);
    assert!(!body.contains(&dead));
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_healthy_backend_gives_503() {
    let sick = Origin::start("sick").await;
    sick.set_health(500);
    let config = one_upstream(
        "",
        &[&sick],
        "    health: { http: { path: /healthz }, interval: 50ms, fall: 1 }\n",
    );
    let proxy = Proxy::start(&config).await;
    wait_until(
        "the backend is marked down",
        Duration::from_secs(10),
        || async { proxy.log().contains("is down") },
    )
    .await;
    let (status, _, body) = get(&client(), &proxy, "/", &[]).await;
    assert_eq!(status, 503);
    assert_clean(&body, 503);
    assert_eq!(sick.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_upstream_gives_504() {
    let slow = Origin::start("slow").await;
    let config = one_upstream(
        "",
        &[&slow],
        "    timeouts: { read: 300ms }\n    retries: 0\n",
    );
    let proxy = Proxy::start(&config).await;
    let (status, _, body) = get(&client(), &proxy, "/slow/3000", &[]).await;
    assert_eq!(status, 504);
    assert_clean(&body, 504);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_past_the_limit_gives_413_and_reaches_no_origin() {
    let origin = Origin::start("app").await;
    let config = one_upstream("max_request_body: 1KiB\n", &[&origin], "");
    let proxy = Proxy::start(&config).await;
    let resp = client()
        .post(proxy.url("/upload"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(origin.request_count(), 0);
    let resp = client()
        .post(proxy.url("/upload"))
        .body(vec![b'x'; 512])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
}

/// Sends raw bytes, returns whatever comes back before the connection closes.
async fn raw(proxy: &Proxy, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(proxy.addr)
        .await
        .expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_400_and_the_proxy_keeps_serving() {
    let origin = Origin::start("app").await;
    let config = one_upstream("", &[&origin], "");
    let proxy = Proxy::start(&config).await;
    let bad: [&[u8]; 4] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad\x01: y\r\n\r\n",
    ];
    for request in bad {
        let answer = raw(&proxy, request).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{:?} got {answer:?}",
            String::from_utf8_lossy(request)
        );
    }
    assert_eq!(origin.request_count(), 0);
    let (status, _, _) = get(&client(), &proxy, "/", &[]).await;
    assert_eq!(status, 200, "still serving");
}

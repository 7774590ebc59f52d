//! Upstream keep-alive: requests reuse pooled connections instead of opening new ones.

use super::harness::{one_upstream, Origin, Proxy};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_requests_on_one_client_connection_use_a_handful_of_origin_connections() {
    let origin = Origin::start("app").await;
    let config = one_upstream("", &[&origin], "");
    let proxy = Proxy::start(&config).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    for _ in 0..1000 {
        let resp = client.get(proxy.url("/")).send().await.expect("request");
        assert_eq!(resp.status().as_u16(), 200);
        resp.bytes().await.expect("body");
    }
    assert_eq!(origin.request_count(), 1000);
    let opened = origin.connections();
    assert!(opened <= 4, "{opened} origin connections for 1000 requests");
}

//! Hot reload under traffic: SIGHUP swaps a route's upstream with no failed request, an
//! invalid file changes nothing, and backend health survives a reload.

use super::harness::{backends, wait_until, Origin, Proxy};
use super::steady::Steady;
use std::time::Duration;

fn routed_to(origin: &Origin, name: &str) -> String {
    format!(
        "upstreams:\n  {name}:\n    backends:\n{}routes:\n  - {{ name: app, upstream: {name} }}\n",
        backends(&[origin])
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_under_traffic_moves_the_route_and_fails_nothing() {
    let blue = Origin::start("blue").await;
    let green = Origin::start("green").await;
    let proxy = Proxy::start(&routed_to(&blue, "blue")).await;
    let traffic = Steady::start(proxy.addr, 16);
    traffic.pass(300).await;

    proxy.rewrite_config(&routed_to(&green, "green"));
    proxy.signal("HUP");
    wait_until(
        "requests reach the new upstream",
        Duration::from_secs(10),
        || async { traffic.served_by("green") > 0 },
    )
    .await;
    let blue_after_switch = blue.request_count();
    traffic.pass(300).await;
    assert_eq!(
        blue.request_count(),
        blue_after_switch,
        "nothing new reaches the old upstream"
    );

    // An invalid file is rejected; the running config stays.
    std::fs::write(proxy.conf(), "listeners: [\n").expect("write");
    proxy.signal("HUP");
    wait_until(
        "the reload is rejected",
        Duration::from_secs(10),
        || async { proxy.log().contains("reload rejected") },
    )
    .await;
    let green_before = traffic.served_by("green");
    traffic.pass(300).await;
    assert!(traffic.served_by("green") >= green_before + 300);

    let report = traffic.finish().await;
    assert!(
        report.failures.is_empty(),
        "{} failures: {:?}",
        report.failures.len(),
        report.failures
    );
    assert!(
        proxy.log().contains("not valid YAML"),
        "the same message as -t"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_health_survives_a_reload() {
    let up = Origin::start("up").await;
    let sick = Origin::start("sick").await;
    sick.set_health(503);
    let body = |extra: &str| {
        format!(
            "upstreams:\n  app:\n    backends:\n{}    health: {{ http: {{ path: /healthz }}, interval: 200ms, fall: 1, rise: 1 }}\nroutes:\n  - {{ name: app, upstream: app{extra} }}\n",
            backends(&[&up, &sick])
        )
    };
    let proxy = Proxy::start(&body("")).await;
    wait_until("sick is marked down", Duration::from_secs(10), || async {
        proxy.log().contains("is down")
    })
    .await;
    // Change something unrelated to the backends, and reload.
    proxy.rewrite_config(&body(", response_headers: { set: { X-Reloaded: \"1\" } }"));
    proxy.signal("HUP");
    wait_until("the reload is live", Duration::from_secs(10), || async {
        proxy.log().contains("config version 2 is live")
    })
    .await;
    let c = super::harness::client();
    for _ in 0..50 {
        let (status, headers, body) = super::harness::get(&c, &proxy, "/", &[]).await;
        assert_eq!((status, body.as_str()), (200, "up"));
        assert_eq!(headers["x-reloaded"], "1");
    }
    assert_eq!(
        sick.request_count(),
        0,
        "the down backend stayed down across the reload"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_finishes_on_the_config_it_started_with() {
    let origin = Origin::start("app").await;
    let body = |version: &str| {
        format!(
            "upstreams:\n  app:\n    backends:\n{}routes:\n  - {{ name: app, upstream: app, response_headers: {{ set: {{ X-Config: {version} }} }} }}\n",
            backends(&[&origin])
        )
    };
    let proxy = Proxy::start(&body("v1")).await;
    let c = super::harness::client();
    let slow = {
        let c = c.clone();
        let url = proxy.url("/slow/1500");
        tokio::spawn(async move { c.get(url).send().await.expect("slow request") })
    };
    wait_until(
        "the slow request reaches the origin",
        Duration::from_secs(10),
        || async { origin.request_count() == 1 },
    )
    .await;
    proxy.rewrite_config(&body("v2"));
    proxy.signal("HUP");
    wait_until("v2 is live", Duration::from_secs(10), || async {
        let (_, headers, _) = super::harness::get(&c, &proxy, "/", &[]).await;
        headers["x-config"] == "v2"
    })
    .await;
    let slow = slow.await.expect("join");
    assert_eq!(slow.status().as_u16(), 200);
    assert_eq!(
        slow.headers()["x-config"],
        "v1",
        "the in-flight request kept its config"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_change_is_left_to_an_upgrade_and_the_rest_applies() {
    let origin = Origin::start("app").await;
    let body = |header: &str| {
        format!(
            "upstreams:\n  app:\n    backends:\n{}routes:\n  - {{ name: app, upstream: app, response_headers: {{ set: {{ X-Version: {header} }} }} }}\n",
            backends(&[&origin])
        )
    };
    let proxy = Proxy::start(&body("one")).await;
    let text = std::fs::read_to_string(proxy.conf()).expect("read");
    let moved = text
        .replace(&proxy.addr.to_string(), "127.0.0.1:1")
        .replace("X-Version: one", "X-Version: two");
    std::fs::write(proxy.conf(), moved).expect("write");
    proxy.signal("HUP");
    wait_until("the reload is live", Duration::from_secs(10), || async {
        proxy.log().contains("config version 2 is live")
    })
    .await;
    assert!(
        proxy
            .log()
            .contains("changes to listeners need new sockets"),
        "{}",
        proxy.log()
    );
    let (status, headers, _) =
        super::harness::get(&super::harness::client(), &proxy, "/", &[]).await;
    assert_eq!(status, 200, "still serving on the old listener");
    assert_eq!(headers["x-version"], "two", "the rest of the file applied");
}

//! Weighted canary and A/B splits through the real proxy: proportions, sticky cookies
//! across a ramp, tester overrides, automatic rollback of a failing canary and the step
//! ramp of a healthy one.

use super::harness::{backends, client, get, wait_until, Origin, Proxy};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

/// Origins `stable` and `canary`, and Gatehouse with one route `app` splitting between
/// them with `split` (a YAML flow mapping).
async fn start(split: &str) -> (Origin, Origin, Proxy) {
    let stable = Origin::start("stable").await;
    let canary = Origin::start("canary").await;
    let config = format!(
        "upstreams:\n  stable:\n    backends:\n{}  canary:\n    backends:\n{}routes:\n  - name: app\n    upstream: stable\n    split: {split}\n",
        backends(&[&stable]),
        backends(&[&canary])
    );
    let proxy = Proxy::start(&config).await;
    (stable, canary, proxy)
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_percent_of_ten_thousand_requests_reach_the_canary() {
    let (stable, canary, proxy) = start("{ canary: canary, weight: 10 }").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = client();
        let url = proxy.url("/");
        tasks.push(tokio::spawn(async move {
            for _ in 0..1250 {
                let r = c.get(&url).send().await.expect("request");
                assert_eq!(r.status().as_u16(), 200);
                r.bytes().await.expect("body");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let on_canary = canary.request_count();
    assert_eq!(on_canary + stable.request_count(), 10_000);
    // 99.9% binomial bound: 1000 +- 3.29 * sqrt(10000 * 0.1 * 0.9) = 1000 +- 99.
    assert!(
        (901..=1099).contains(&on_canary),
        "{on_canary} of 10,000 on the canary"
    );
}

/// A client that keeps the split cookie Gatehouse gives it.
struct Visitor {
    cookie: Option<String>,
}

impl Visitor {
    async fn visit(&mut self, c: &reqwest::Client, proxy: &Proxy) -> String {
        let mut headers = Vec::new();
        if let Some(cookie) = &self.cookie {
            headers.push(("cookie", cookie.as_str()));
        }
        let (status, response_headers, body) = get(c, proxy, "/", &headers).await;
        assert_eq!(status, 200);
        if let Some(set) = response_headers.get("set-cookie") {
            assert!(self.cookie.is_none(), "the cookie is set only once");
            let pair = set
                .to_str()
                .expect("ascii")
                .split(';')
                .next()
                .expect("pair");
            self.cookie = Some(pair.to_string());
        }
        body
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sticky_clients_stay_put_and_canary_clients_stay_through_a_ramp() {
    // The ramp goes from 10% to 20% once its hold is over and is the only change here.
    let (_stable, _canary, proxy) = start(
        "{ canary: canary, weight: 10, sticky: { cookie: { name: gh_variant, max_age: 1h } }, ramp: { steps: [10, 20], hold: 2s } }",
    )
    .await;
    let c = client();
    let mut one = Visitor { cookie: None };
    let first = one.visit(&c, &proxy).await;
    for _ in 0..99 {
        assert_eq!(
            one.visit(&c, &proxy).await,
            first,
            "one client, one variant"
        );
    }
    let mut visitors: Vec<Visitor> = (0..300).map(|_| Visitor { cookie: None }).collect();
    let mut before = Vec::new();
    for v in &mut visitors {
        before.push(v.visit(&c, &proxy).await);
    }
    wait_until("the ramp to 20%", Duration::from_secs(15), || async {
        proxy.log().contains("ramped to 20%")
    })
    .await;
    let mut after = Vec::new();
    for v in &mut visitors {
        after.push(v.visit(&c, &proxy).await);
    }
    let on_canary = |list: &[String]| list.iter().filter(|b| *b == "canary").count();
    for (b, a) in before.iter().zip(&after) {
        assert!(
            !(b == "canary" && a == "stable"),
            "a canary client went back to stable"
        );
    }
    assert!(
        on_canary(&after) > on_canary(&before),
        "the ramp moved some clients over"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn override_header_forces_each_side_unless_the_client_is_untrusted() {
    let stable = Origin::start("stable").await;
    let canary = Origin::start("canary").await;
    let body = format!(
        "upstreams:\n  stable:\n    backends:\n{}  canary:\n    backends:\n{}routes:\n  - name: open\n    upstream: stable\n    match: {{ path: {{ prefix: /open }} }}\n    split: {{ canary: canary, weight: 50, override: {{ header: X-Canary }}, expose_header: X-Variant }}\n  - name: guarded\n    upstream: stable\n    match: {{ path: {{ prefix: /guarded }} }}\n    split: {{ canary: canary, weight: 0, override: {{ header: X-Canary, from: [10.0.0.0/8] }} }}\n",
        backends(&[&stable]),
        backends(&[&canary])
    );
    let proxy = Proxy::start(&body).await;
    let c = client();
    for _ in 0..20 {
        let (_, h, body) = get(&c, &proxy, "/open", &[("x-canary", "always")]).await;
        assert_eq!(body, "canary");
        assert_eq!(h["x-variant"], "canary");
        let (_, h, body) = get(&c, &proxy, "/open", &[("x-canary", "never")]).await;
        assert_eq!(body, "stable");
        assert_eq!(h["x-variant"], "stable");
        // Loopback is not in 10.0.0.0/8: the header is ignored and weight 0 rules.
        let (_, h, body) = get(&c, &proxy, "/guarded", &[("x-canary", "always")]).await;
        assert_eq!(body, "stable");
        assert!(
            h.get("x-variant").is_none(),
            "no variant header unless configured"
        );
    }
}

/// Sends `n` GETs; returns how many each origin answered and how many failed.
async fn traffic(c: &reqwest::Client, proxy: &Proxy, n: usize) -> (HashMap<String, usize>, usize) {
    let mut by_origin = HashMap::new();
    let mut failed = 0;
    for _ in 0..n {
        let (status, _, body) = get(c, proxy, "/", &[]).await;
        if status != 200 {
            failed += 1;
        }
        *by_origin.entry(body).or_insert(0) += 1;
    }
    (by_origin, failed)
}

/// Rollback on errors; the latency margin is wide because latency on a loaded test
/// machine is noise.
const ROLLBACK_ON_ERRORS: &str = "{ canary: canary, weight: 30, rollback: { window: 2s, min_requests: 20, max_error_rate_increase: 5%, max_latency_ratio: 50 } }";

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_canary_with_the_same_traffic_is_not_rolled_back() {
    let (_stable, canary, proxy) = start(ROLLBACK_ON_ERRORS).await;
    let c = client();
    // Two full windows of traffic with enough requests on both sides to be judged.
    let started = std::time::Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(4) || canary.request_count() < 40 {
        let (status, _, _) = get(&c, &proxy, "/", &[]).await;
        assert_eq!(status, 200);
        sent += 1;
    }
    assert!(!proxy.log().contains("rolled back"), "{}", proxy.log());
    let before = canary.request_count();
    let (by_origin, failed) = traffic(&c, &proxy, 200).await;
    assert_eq!(failed, 0);
    assert!(
        canary.request_count() > before,
        "still on the canary: {by_origin:?} after {sent}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_canary_is_rolled_back_and_the_stable_side_never_fails() {
    let (_stable, canary, proxy) = start(ROLLBACK_ON_ERRORS).await;
    canary.set_status(500);
    let c = client();
    let stable_failures = AtomicUsize::new(0);
    wait_until(
        "the canary is rolled back",
        Duration::from_secs(20),
        || async {
            let (status, _, body) = get(&c, &proxy, "/", &[]).await;
            if body == "stable" && status != 200 {
                stable_failures.fetch_add(1, SeqCst);
            }
            proxy.log().contains("canary rolled back to weight 0")
        },
    )
    .await;
    assert!(canary.request_count() >= 20, "judged on enough requests");
    let served_before = canary.request_count();
    let (by_origin, failed) = traffic(&c, &proxy, 200).await;
    assert_eq!(failed, 0, "{by_origin:?}");
    assert_eq!(by_origin.get("stable"), Some(&200));
    assert_eq!(
        canary.request_count(),
        served_before,
        "weight 0: no more canary traffic"
    );
    assert_eq!(stable_failures.load(SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_canary_is_not_rolled_back_and_a_step_ramp_reaches_100_percent() {
    let (stable, canary, proxy) = start(
        "{ canary: canary, weight: 10, ramp: { steps: [10, 50, 100], hold: 1s }, rollback: { window: 3s, min_requests: 5, max_error_rate_increase: 5%, max_latency_ratio: 50 } }",
    )
    .await;
    let c = client();
    // Ten requests per poll keep both sides above min_requests in every window, however
    // slowly a busy test machine runs them. Latency on a loaded test machine is noise, so
    // the latency margin is wide: this test is about errors and the ramp.
    wait_until("the ramp reaches 100%", Duration::from_secs(60), || async {
        let (_, failed) = traffic(&c, &proxy, 10).await;
        assert_eq!(failed, 0);
        let log = proxy.log();
        assert!(
            !log.contains("rolled back"),
            "a healthy canary was rolled back:\n{log}"
        );
        log.contains("canary ramped to 100%")
    })
    .await;
    assert!(
        !proxy.log().contains("rolled back"),
        "a healthy canary stays"
    );
    let before = stable.request_count();
    let (by_origin, failed) = traffic(&c, &proxy, 100).await;
    assert_eq!(failed, 0);
    assert_eq!(by_origin.get("canary"), Some(&100));
    assert_eq!(stable.request_count(), before);
    assert!(canary.request_count() >= 100);
}

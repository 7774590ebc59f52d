//! Balancing through the real proxy: weighted round robin proportions, least connections
//! under slow requests, client-IP and header/cookie hashing.

use super::harness::{backends, client, get, one_upstream, wait_until, Origin, Proxy};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn weighted_round_robin_3_to_1_is_exact() {
    let heavy = Origin::start("heavy").await;
    let light = Origin::start("light").await;
    let config = format!(
        "upstreams:\n  app:\n    backends:\n      - {{ address: \"{}\", weight: 3 }}\n      - {{ address: \"{}\", weight: 1 }}\nroutes:\n  - {{ name: all, upstream: app }}\n",
        heavy.addr, light.addr
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    for _ in 0..1000 {
        let (status, _, _) = get(&c, &proxy, "/", &[]).await;
        assert_eq!(status, 200);
    }
    assert_eq!((heavy.request_count(), light.request_count()), (750, 250));
}

#[tokio::test(flavor = "multi_thread")]
async fn least_conn_sends_new_work_away_from_a_busy_backend() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let config = one_upstream("", &[&a, &b], "    balance: least_conn\n");
    let proxy = Proxy::start(&config).await;
    // The slow requests must outlive the test, however slowly a busy machine runs it.
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    // Four slow requests in flight: least_conn spreads them two and two.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let c = c.clone();
        let url = proxy.url("/slow/60000");
        slow.push(tokio::spawn(async move {
            c.get(url).send().await.map(|r| r.status())
        }));
        let started = slow.len();
        wait_until(
            "slow request reaches an origin",
            Duration::from_secs(5),
            || async { a.request_count() + b.request_count() == started },
        )
        .await;
    }
    assert_eq!((a.request_count(), b.request_count()), (2, 2));
    // A fifth slow request makes one backend busier (3 in flight against 2).
    let c2 = c.clone();
    let url = proxy.url("/slow/60000");
    let extra = tokio::spawn(async move { c2.get(url).send().await.map(|r| r.status()) });
    wait_until(
        "fifth slow request arrives",
        Duration::from_secs(5),
        || async { a.request_count() + b.request_count() == 5 },
    )
    .await;
    let (busy, idle) = if a.request_count() == 3 {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let idle_before = idle.request_count();
    let busy_before = busy.request_count();
    // Sequential quick requests: each sees busy=3, idle=2 in flight (+0 for itself), so
    // every one goes to the idle backend.
    for _ in 0..20 {
        let (status, _, _) = get(&c, &proxy, "/quick", &[]).await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        busy.request_count(),
        busy_before,
        "new work avoided the busy backend"
    );
    assert_eq!(idle.request_count(), idle_before + 20);
    // The slow requests (a minute each, so that they outlast any slow test machine) are
    // abandoned: their in-flight counts were the point.
    for handle in slow.into_iter().chain([extra]) {
        assert!(!handle.is_finished(), "a slow request ended early");
        handle.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn header_and_cookie_hashing_keep_a_key_on_one_backend() {
    let origins = [
        Origin::start("a").await,
        Origin::start("b").await,
        Origin::start("c").await,
    ];
    let list = backends(&[&origins[0], &origins[1], &origins[2]]);
    let config = format!(
        "upstreams:\n  by-header:\n    balance: hash\n    hash_key: {{ header: X-User }}\n    backends:\n{list}  by-cookie:\n    balance: hash\n    hash_key: {{ cookie: sid }}\n    backends:\n{list}routes:\n  - {{ name: h, upstream: by-header, match: {{ path: {{ prefix: /h }} }} }}\n  - {{ name: c, upstream: by-cookie, match: {{ path: {{ prefix: /c }} }} }}\n"
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let mut backends_used = std::collections::HashSet::new();
    for user in 0..30 {
        let key = format!("user-{user}");
        let cookie = format!("theme=dark; sid={key}");
        for (path, header) in [
            ("/h", ("x-user", key.as_str())),
            ("/c", ("cookie", cookie.as_str())),
        ] {
            let mut seen = std::collections::HashSet::new();
            for _ in 0..5 {
                let (status, _, body) = get(&c, &proxy, path, &[header]).await;
                assert_eq!(status, 200);
                seen.insert(body);
            }
            assert_eq!(seen.len(), 1, "{path} {key} went to {seen:?}");
            backends_used.extend(seen);
        }
    }
    assert_eq!(backends_used.len(), 3, "keys spread over all backends");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_ip_hashing_keeps_a_client_on_one_backend() {
    let origins = [
        Origin::start("a").await,
        Origin::start("b").await,
        Origin::start("c").await,
    ];
    // The client IP is taken from X-Forwarded-For because loopback is a trusted proxy here,
    // which lets one test play many clients.
    let config = format!(
        "trusted_proxies: [127.0.0.1]\nupstreams:\n  app:\n    balance: ip_hash\n    backends:\n{}routes:\n  - {{ name: all, upstream: app }}\n",
        backends(&[&origins[0], &origins[1], &origins[2]])
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let mut used = std::collections::HashSet::new();
    for client_no in 0..30 {
        let ip = format!("198.51.100.{client_no}");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5 {
            let (_, _, body) = get(&c, &proxy, "/", &[("x-forwarded-for", ip.as_str())]).await;
            seen.insert(body);
        }
        assert_eq!(seen.len(), 1, "{ip} went to {seen:?}");
        used.extend(seen);
    }
    assert_eq!(used.len(), 3, "clients spread over all backends");
}

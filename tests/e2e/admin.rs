//! The admin API through the real binary: its own listener, open reads, token-guarded
//! changes, /status following backend health, /metrics matching the traffic sent (read
//! with a Prometheus parser), and split weights changed at runtime with no failed request.

use super::harness::{backends, client, free_port, get, wait_until, Origin, Proxy};
use super::steady::Steady;
use std::time::Duration;

const TOKEN: &str = "s3cret-token";

struct Admin {
    base: String,
    http: reqwest::Client,
}

impl Admin {
    fn new(port: u16) -> Admin {
        Admin {
            base: format!("http://127.0.0.1:{port}"),
            http: client(),
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("admin GET");
        (r.status().as_u16(), r.text().await.expect("body"))
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        let mut req = self
            .http
            .request(
                method.parse().expect("method"),
                format!("{}{path}", self.base),
            )
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("admin call");
        (r.status().as_u16(), r.text().await.expect("body"))
    }
}

/// Two upstreams (`stable` with `stable` and `spare` backends, `canary`), a canary split
/// on route `app`, and the admin API on `admin_port`.
fn config(
    stable: &Origin,
    spare: &Origin,
    canary: &Origin,
    admin_port: u16,
    weight: u32,
) -> String {
    format!(
        "admin: {{ address: \"127.0.0.1:{admin_port}\", token_env: TEST_ADMIN_TOKEN }}\nupstreams:\n  stable:\n    backends:\n{}    health: {{ http: {{ path: /healthz }}, interval: 100ms, fall: 1, rise: 1 }}\n  canary:\n    backends:\n{}routes:\n  - name: app\n    upstream: stable\n    split: {{ canary: canary, weight: {weight} }}\n",
        backends(&[stable, spare]),
        backends(&[canary])
    )
}

async fn start(weight: u32) -> (Origin, Origin, Origin, Proxy, Admin) {
    let stable = Origin::start("stable").await;
    let spare = Origin::start("spare").await;
    let canary = Origin::start("canary").await;
    let port = free_port();
    let proxy = Proxy::start_full(
        "",
        &config(&stable, &spare, &canary, port, weight),
        &[("TEST_ADMIN_TOKEN", TOKEN)],
    )
    .await;
    let admin = Admin::new(port);
    wait_until("the admin API answers", Duration::from_secs(10), || async {
        admin
            .http
            .get(format!("{}/health", admin.base))
            .send()
            .await
            .is_ok()
    })
    .await;
    (stable, spare, canary, proxy, admin)
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_need_the_token_and_reads_do_not() {
    let (_stable, _spare, _canary, proxy, admin) = start(0).await;
    assert_eq!(admin.get("/health").await.0, 200);
    assert_eq!(admin.get("/status").await.0, 200);
    for token in [None, Some("wrong"), Some("")] {
        assert_eq!(
            admin.call("POST", "/reload", token, "").await.0,
            401,
            "{token:?}"
        );
        assert_eq!(
            admin
                .call("PUT", "/splits/app", token, r#"{"weight": 50}"#)
                .await
                .0,
            401
        );
    }
    let (status, body) = admin.call("POST", "/reload", Some(TOKEN), "").await;
    assert_eq!(status, 200, "{body}");
    let reloaded: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(reloaded["version"], 2);
    // The public port does not serve the admin API.
    let (_, _, public) = get(&client(), &proxy, "/status", &[]).await;
    assert!(!public.contains("upstreams"), "{public}");
    let (_, _, public) = get(&client(), &proxy, "/metrics", &[]).await;
    assert!(!public.contains("gatehouse_requests_total"), "{public}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_reload_is_refused_with_its_problems_and_changes_nothing() {
    let (_stable, _spare, _canary, proxy, admin) = start(0).await;
    std::fs::write(
        proxy.conf(),
        "listeners: []\nroutes: [ { name: x, upstream: nowhere } ]\n",
    )
    .expect("write");
    let (status, body) = admin.call("POST", "/reload", Some(TOKEN), "").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("routes[0].upstream"), "{body}");
    let status_doc: serde_json::Value =
        serde_json::from_str(&admin.get("/status").await.1).expect("json");
    assert_eq!(status_doc["version"], 1);
    assert_eq!(status_doc["reloads"]["failed"], 1);
    let (code, _, body) = get(&client(), &proxy, "/", &[]).await;
    assert_eq!(code, 200);
    assert!(body == "stable" || body == "spare");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_follows_a_backend_going_down() {
    let (_stable, spare, _canary, _proxy, admin) = start(0).await;
    let spare_addr = spare.addr.to_string();
    let healthy_of = |doc: &serde_json::Value| {
        doc["upstreams"]
            .as_array()
            .and_then(|u| u.iter().find(|u| u["name"] == "stable"))
            .and_then(|u| u["backends"].as_array())
            .and_then(|b| b.iter().find(|b| b["address"] == spare_addr.as_str()))
            .map(|b| b["healthy"].clone())
    };
    let doc: serde_json::Value = serde_json::from_str(&admin.get("/status").await.1).expect("json");
    assert_eq!(healthy_of(&doc), Some(serde_json::Value::Bool(true)));
    spare.set_health(503);
    wait_until(
        "status shows the backend down",
        Duration::from_secs(10),
        || async {
            let doc: serde_json::Value =
                serde_json::from_str(&admin.get("/status").await.1).expect("json");
            healthy_of(&doc) == Some(serde_json::Value::Bool(false))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_and_count_the_traffic_sent() {
    let (_stable, _spare, canary, proxy, admin) = start(0).await;
    let c = client();
    for _ in 0..37 {
        assert_eq!(get(&c, &proxy, "/", &[]).await.0, 200);
    }
    canary.set_status(503);
    for _ in 0..5 {
        assert_eq!(
            get(&c, &proxy, "/", &[("x-canary", "always")]).await.0,
            200,
            "no override configured"
        );
    }
    let (status, text) = admin.get("/metrics").await;
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text");
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert_eq!(
        value(
            "gatehouse_requests_total",
            &[("route", "app"), ("upstream", "stable"), ("class", "2xx")]
        ),
        42.0
    );
    assert_eq!(
        value(
            "gatehouse_requests_total",
            &[("route", "app"), ("upstream", "canary")]
        ),
        0.0
    );
    assert_eq!(
        value(
            "gatehouse_split_assignments_total",
            &[("route", "app"), ("variant", "stable")]
        ),
        42.0
    );
    assert_eq!(
        value(
            "gatehouse_split_weight",
            &[("route", "app"), ("variant", "canary")]
        ),
        0.0
    );
    assert_eq!(
        value(
            "gatehouse_split_weight",
            &[("route", "app"), ("variant", "stable")]
        ),
        100.0
    );
    assert_eq!(
        value("gatehouse_backend_up", &[("upstream", "stable")]),
        2.0
    );
    assert_eq!(value("gatehouse_config_version", &[]), 1.0);
    let histogram_count = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "gatehouse_request_duration_seconds" && s.labels.get("route") == Some("app")
        })
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            _ => 0.0,
        });
    assert_eq!(histogram_count, Some(42.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn split_weights_change_at_runtime_with_no_failed_request() {
    let (_stable, _spare, _canary, proxy, admin) = start(0).await;
    let traffic = Steady::start(proxy.addr, 8);
    traffic.pass(200).await;
    assert_eq!(traffic.served_by("canary"), 0);

    // Through the admin API...
    let (status, body) = admin
        .call("PUT", "/splits/app", Some(TOKEN), r#"{"weight": 100}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let others = || traffic.served_by("stable") + traffic.served_by("spare");
    let others_before = others();
    traffic.pass(200).await;
    // Only requests already assigned when the weight changed (one per client at most) may
    // still finish elsewhere; every new one goes to the canary.
    assert!(
        others() - others_before <= 8,
        "{} requests went elsewhere after the change",
        others() - others_before
    );
    assert!(traffic.served_by("canary") >= 192);
    let doc: serde_json::Value = serde_json::from_str(&admin.get("/status").await.1).expect("json");
    assert_eq!(doc["splits"][0]["canary_weight"], 100);

    // ...and through a reload of the file.
    let stable_before = traffic.served_by("stable") + traffic.served_by("spare");
    let text = std::fs::read_to_string(proxy.conf()).expect("read");
    std::fs::write(
        proxy.conf(),
        text.replace("weight: 0 }", "weight: 0, sticky: { client_ip: true } }"),
    )
    .expect("write");
    proxy.signal("HUP");
    wait_until(
        "the reloaded weight applies",
        Duration::from_secs(10),
        || async { traffic.served_by("stable") + traffic.served_by("spare") > stable_before },
    )
    .await;
    let report = traffic.finish().await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        admin
            .call("PUT", "/splits/nope", Some(TOKEN), r#"{"weight": 1}"#)
            .await
            .0,
        404
    );
    assert_eq!(
        admin
            .call("PUT", "/splits/app", Some(TOKEN), r#"{"weight": 101}"#)
            .await
            .0,
        400
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_refused_for_its_size_is_not_assigned_a_variant() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_stable, _spare, _canary, proxy, admin) = start(50).await;
    // Declares 20 MB (over the 10MiB default) and sends none of it.
    let mut stream = tokio::net::TcpStream::connect(proxy.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n")
        .await
        .expect("write");
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).await.expect("read");
    assert_eq!(&answer, b"HTTP/1.1 413");
    let doc: serde_json::Value = serde_json::from_str(&admin.get("/status").await.1).expect("json");
    let assigned: u64 = doc["splits"][0]["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .map(|v| v["assigned"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(assigned, 0);
}

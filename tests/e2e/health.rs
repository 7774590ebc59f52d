//! Health through the real proxy: a backend killed under traffic costs no request, gets no
//! traffic once marked down, and gets traffic again when it is healthy; passive health
//! takes a failing backend out for its cooldown.

use super::harness::{client, get, one_upstream, wait_until, Origin, Proxy};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends GETs in a loop from `workers` tasks until stopped; counts successes and failures.
struct Traffic {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Traffic {
    fn start(proxy: &Proxy, workers: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let tasks = (0..workers)
            .map(|_| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                let url = proxy.url("/work");
                let c = client();
                tokio::spawn(async move {
                    let mut errors = Vec::new();
                    while !stop.load(SeqCst) {
                        match c.get(&url).send().await {
                            Ok(r) if r.status() == 200 => {
                                ok.fetch_add(1, SeqCst);
                            }
                            Ok(r) => {
                                failed.fetch_add(1, SeqCst);
                                errors.push(format!("status {}", r.status()));
                            }
                            Err(e) => {
                                failed.fetch_add(1, SeqCst);
                                errors.push(e.to_string());
                            }
                        }
                    }
                    errors
                })
            })
            .collect();
        Traffic {
            stop,
            ok,
            failed,
            tasks,
        }
    }

    fn ok(&self) -> usize {
        self.ok.load(SeqCst)
    }

    /// Waits until `n` more requests have succeeded.
    async fn pass(&self, n: usize) {
        let target = self.ok() + n;
        wait_until("requests succeed", Duration::from_secs(20), || async {
            self.ok() >= target
        })
        .await;
    }

    async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, SeqCst);
        let mut errors = Vec::new();
        for t in self.tasks {
            errors.extend(t.await.expect("traffic task"));
        }
        (self.failed.load(SeqCst), errors)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_backend_costs_no_request_and_returns_when_healthy() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let c = Origin::start("c").await;
    let config = one_upstream(
        "",
        &[&a, &b, &c],
        "    health:\n      http: { path: /healthz, expect: 200 }\n      interval: 100ms\n      timeout: 500ms\n      rise: 2\n      fall: 2\n    passive: { max_fails: 1, cooldown: 60s }\n    retries: 2\n",
    );
    let proxy = Proxy::start(&config).await;
    let traffic = Traffic::start(&proxy, 4);
    traffic.pass(200).await;
    assert!(c.request_count() > 0, "c served before it was killed");

    // Kill c under traffic; wait until the proxy marks it down.
    let c_addr = c.addr;
    c.kill();
    drop(c);
    let down = format!("backend {c_addr} is down");
    wait_until("c marked down", Duration::from_secs(10), || async {
        proxy.log().contains(&down)
    })
    .await;
    traffic.pass(300).await;

    // Bring c back on its port, still failing its health check: it must get no traffic.
    let c = Origin::start_on(c_addr, "c").await;
    c.set_health(503);
    let checks_before = c.health_checks();
    traffic.pass(300).await;
    wait_until("c is being checked", Duration::from_secs(10), || async {
        c.health_checks() >= checks_before + 3
    })
    .await;
    assert_eq!(
        c.request_count(),
        0,
        "a backend marked down gets no requests"
    );

    // Healthy again: it returns to the pool.
    c.set_health(200);
    wait_until("c serves again", Duration::from_secs(10), || async {
        c.request_count() > 0
    })
    .await;
    let (failed, errors) = traffic.finish().await;
    assert_eq!(failed, 0, "failed requests: {errors:?}");
    assert!(a.request_count() > 0 && b.request_count() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn passive_health_takes_a_failing_backend_out_for_its_cooldown() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let config = one_upstream(
        "",
        &[&a, &b],
        "    passive: { max_fails: 2, cooldown: 3s }\n    retries: 1\n",
    );
    let proxy = Proxy::start(&config).await;
    let http = client();
    let b_addr = b.addr;
    b.kill();
    drop(b);
    // Every request succeeds (a failed connect moves on to `a`) until `b` is taken out.
    let out = format!("backend {b_addr} taken out");
    for _ in 0..10 {
        let (status, _, body) = get(&http, &proxy, "/", &[]).await;
        assert_eq!((status, body.as_str()), (200, "a"));
    }
    assert!(
        proxy.log().contains(&out),
        "b was not taken out:\n{}",
        proxy.log()
    );
    // While the cooldown runs, b gets nothing even though it is back.
    let taken_out_at = Instant::now();
    let b = Origin::start_on(b_addr, "b").await;
    for _ in 0..10 {
        let (status, _, _) = get(&http, &proxy, "/", &[]).await;
        assert_eq!(status, 200);
    }
    if taken_out_at.elapsed() < Duration::from_secs(2) {
        assert_eq!(b.request_count(), 0, "b got traffic during its cooldown");
    }
    // After the cooldown it is tried again, and serves.
    wait_until(
        "b tried again after its cooldown",
        Duration::from_secs(10),
        || async {
            let _ = get(&http, &proxy, "/", &[]).await;
            b.request_count() > 0
        },
    )
    .await;
}

//! A steady stream of GETs and POSTs on many keep-alive connections that never retry, for
//! checking that a reload or an upgrade costs no request.

use super::raw_client::RawClient;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Steady {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    served_by: Arc<Mutex<HashMap<String, usize>>>,
    tasks: Vec<tokio::task::JoinHandle<Report>>,
}

/// What the stream saw.
#[derive(Debug, Default)]
pub struct Report {
    pub ok: usize,
    pub failures: Vec<String>,
    /// Connections opened, the first of each client included.
    pub connects: usize,
}

impl Steady {
    /// `clients` keep-alive connections, each sending GET and POST in turn.
    pub fn start(addr: SocketAddr, clients: usize) -> Steady {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let served_by = Arc::new(Mutex::new(HashMap::new()));
        let tasks = (0..clients)
            .map(|i| {
                let (stop, ok, served_by) = (stop.clone(), ok.clone(), served_by.clone());
                tokio::spawn(async move {
                    let mut client = RawClient::new(addr);
                    let mut report = Report::default();
                    let mut n = 0usize;
                    while !stop.load(SeqCst) {
                        n += 1;
                        let (method, body) = if n % 2 == 0 {
                            ("POST", format!("order {i}-{n}").into_bytes())
                        } else {
                            ("GET", Vec::new())
                        };
                        match client.send(method, &format!("/work/{i}/{n}"), &body).await {
                            Ok(r) if r.status == 200 => {
                                report.ok += 1;
                                ok.fetch_add(1, SeqCst);
                                let origin = String::from_utf8_lossy(&r.body).into_owned();
                                *served_by.lock().expect("lock").entry(origin).or_insert(0) += 1;
                            }
                            Ok(r) => report
                                .failures
                                .push(format!("{method}: status {}", r.status)),
                            Err(e) => report.failures.push(format!("{method}: {e}")),
                        }
                        // Pace each client a little so a debug build on 2 cores keeps up.
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    report.connects = client.connects;
                    report
                })
            })
            .collect();
        Steady {
            stop,
            ok,
            served_by,
            tasks,
        }
    }

    pub fn ok(&self) -> usize {
        self.ok.load(SeqCst)
    }

    /// Successful requests answered by origin `name` so far.
    pub fn served_by(&self, name: &str) -> usize {
        *self.served_by.lock().expect("lock").get(name).unwrap_or(&0)
    }

    /// Waits until `n` more requests have succeeded.
    pub async fn pass(&self, n: usize) {
        let target = self.ok() + n;
        super::harness::wait_until("steady traffic passes", Duration::from_secs(30), || async {
            self.ok() >= target
        })
        .await;
    }

    pub async fn finish(self) -> Report {
        self.stop.store(true, SeqCst);
        let mut total = Report::default();
        for task in self.tasks {
            let r = task.await.expect("traffic task");
            total.ok += r.ok;
            total.connects += r.connects;
            total.failures.extend(r.failures);
        }
        total
    }
}

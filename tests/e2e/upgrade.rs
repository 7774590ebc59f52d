//! Graceful upgrade under load: a new process takes the listening sockets over (`-u` and
//! SIGQUIT to the old one); a steady stream of GETs and POSTs on keep-alive connections
//! that never retry loses no request and meets no refused connection, and the old process
//! exits after draining.

use super::harness::{backends, wait_until, Origin, Proxy, BIN};
use super::steady::Steady;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Kills the new process at the end of the test, however it ends.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_under_load_loses_no_request() {
    let origin = Origin::start("app").await;
    let body = format!(
        "upstreams:\n  app:\n    backends:\n{}routes:\n  - {{ name: app, upstream: app }}\n",
        backends(&[&origin])
    );
    let mut old = Proxy::start_with_server(
        "  grace_period: 5s\n  graceful_shutdown_timeout: 2s\n",
        &body,
    )
    .await;
    let clients = 16;
    let traffic = Steady::start(old.addr, clients);
    traffic.pass(500).await;

    // The new process waits on the upgrade socket for the old one's listeners.
    let new_log = std::fs::File::create(old.dir().join("new.log")).expect("log");
    let new = Guard(
        Command::new(BIN)
            .arg("-u")
            .arg("-c")
            .arg(old.conf())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(new_log)
            .spawn()
            .expect("start the new process"),
    );
    let socket = old.dir().join("upgrade.sock");
    wait_until(
        "the new process listens on the upgrade socket",
        Duration::from_secs(10),
        || async { socket.exists() },
    )
    .await;
    old.signal("QUIT");

    wait_until("the old process exits", Duration::from_secs(20), || {
        let exited = old.has_exited();
        async move { exited }
    })
    .await;
    traffic.pass(500).await;
    let report = traffic.finish().await;
    let new_log = std::fs::read_to_string(old.dir().join("new.log")).unwrap_or_default();
    assert!(
        report.failures.is_empty(),
        "{} failed requests: {:?}\n--- new process ---\n{new_log}",
        report.failures.len(),
        &report.failures[..report.failures.len().min(10)]
    );
    assert!(
        report.connects > clients,
        "clients were moved to the new process ({} connections for {clients} clients)",
        report.connects
    );
    drop(new);
}

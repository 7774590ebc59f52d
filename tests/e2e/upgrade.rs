//! Graceful upgrade under load: a new process takes the listening sockets over (`-u` and
//! SIGQUIT to the old one); a steady stream of GETs and POSTs on keep-alive connections
//! that never retry loses no request and meets no refused connection, and the old process
//! exits after draining.

use super::harness::{backends, free_port, wait_until, DaemonGuard, Origin, Proxy, BIN};
use super::steady::Steady;
use std::path::Path;
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

/// Whether process `pid` still exists.
fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The systemd recipe (`conf/gatehouse.service`): a daemon with a pid file; SIGQUIT to it,
/// then `gatehouse -d -u`, which returns once the new daemon serves.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_upgrade_recipe_loses_no_request() {
    let origin = Origin::start("app").await;
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let pid_file = dir.path().join("gatehouse.pid");
    let conf = dir.path().join("gatehouse.yaml");
    std::fs::write(
        &conf,
        format!(
            "server:\n  pid_file: {}\n  upgrade_sock: {}\n  error_log: {}\n  grace_period: 5s\n  graceful_shutdown_timeout: 2s\nlisteners:\n  - {{ name: public, address: \"127.0.0.1:{port}\" }}\nupstreams:\n  app:\n    backends:\n{}routes:\n  - {{ name: app, upstream: app }}\n",
            pid_file.display(),
            dir.path().join("upgrade.sock").display(),
            dir.path().join("error.log").display(),
            backends(&[&origin])
        ),
    )
    .expect("write config");
    // Kills both daemons however the test ends.
    let _daemons = DaemonGuard(conf.clone());
    let read_pid = || {
        std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let start = Command::new(BIN)
        .args(["-d", "-c"])
        .arg(&conf)
        .status()
        .expect("start");
    assert!(start.success());
    let old_pid = read_pid();
    assert!(
        alive(&old_pid),
        "the daemon runs and wrote its pid ({old_pid:?})"
    );
    // The launcher returns when the daemon starts bootstrapping; it listens a moment later.
    wait_until("the daemon listens", Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;

    let traffic = Steady::start(([127, 0, 0, 1], port).into(), 16);
    traffic.pass(500).await;
    super::harness::signal(old_pid.parse().expect("pid"), "QUIT");
    let upgrade = Command::new(BIN)
        .args(["-d", "-u", "-c"])
        .arg(&conf)
        .status()
        .expect("upgrade");
    assert!(upgrade.success(), "the new daemon reported ready");
    let new_pid = read_pid();
    assert_ne!(new_pid, old_pid, "the new daemon wrote its pid");
    wait_until("the old daemon exits", Duration::from_secs(20), || async {
        !alive(&old_pid)
    })
    .await;
    traffic.pass(500).await;
    let report = traffic.finish().await;
    let _ = std::fs::copy(
        dir.path().join("error.log"),
        "/tmp/daemon-upgrade-error.log",
    );
    assert!(
        report.failures.is_empty(),
        "{} failed requests: {:?}\n--- error log ---\n{}",
        report.failures.len(),
        &report.failures[..report.failures.len().min(10)],
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );
    assert!(alive(&new_pid));
}

//! The command line: `--version`, `-t` on a valid file, `--help`.

use super::harness::BIN;
use std::process::Command;

#[test]
fn version_prints_the_package_version() {
    let out = Command::new(BIN).arg("--version").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!("gatehouse {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn test_flag_accepts_the_default_config() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/gatehouse.yaml");
    for flag in ["-t", "--test"] {
        let out = Command::new(BIN)
            .args([flag, "-c", conf])
            .output()
            .expect("run");
        assert!(out.status.success(), "{flag}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
    }
}

#[test]
fn help_lists_the_daemon_and_upgrade_flags() {
    let out = Command::new(BIN).arg("--help").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--daemon", "--upgrade", "--test", "--conf"] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_mode_detaches_writes_its_pid_and_serves() {
    use super::harness::{client, wait_until, DaemonGuard, Origin};
    use std::time::Duration;

    let origin = Origin::start("app").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let pid_file = dir.path().join("gatehouse.pid");
    let config = format!(
        "server:\n  pid_file: {}\n  upgrade_sock: {}\n  error_log: {}\nlisteners:\n  - {{ name: test, address: \"127.0.0.1:{port}\" }}\nupstreams:\n  app:\n    backends: [ {{ address: \"{}\" }} ]\nroutes:\n  - {{ name: all, upstream: app }}\n",
        pid_file.display(),
        dir.path().join("upgrade.sock").display(),
        dir.path().join("error.log").display(),
        origin.addr
    );
    let conf = dir.path().join("gatehouse.yaml");
    std::fs::write(&conf, config).expect("write");
    // Kills the daemon however the assertions below end.
    let _daemon = DaemonGuard(conf.clone());
    let status = Command::new(BIN)
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .status()
        .expect("run");
    assert!(status.success(), "the launching process exits cleanly");
    wait_until("pid file written", Duration::from_secs(10), || async {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| p.trim().parse::<u32>().is_ok())
    })
    .await;
    let url = format!("http://127.0.0.1:{port}/");
    let c = client();
    wait_until("the daemon serves", Duration::from_secs(10), || async {
        c.get(&url).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert_eq!(origin.request_count(), 1);
}

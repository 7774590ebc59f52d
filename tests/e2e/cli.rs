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

//! `gatehouse -t`: every shipped config is valid, and every kind of mistake is reported
//! with its key path and line, exit code 1.

use super::harness::check_config;
use std::path::Path;

#[test]
fn every_config_in_conf_is_valid() {
    let mut files = Vec::new();
    for dir in ["conf", "conf/examples"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for entry in std::fs::read_dir(&dir).expect("conf dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    assert!(
        files.len() >= 4,
        "expected the shipped configs, found {files:?}"
    );
    for file in files {
        let (code, out) = check_config(&file);
        assert_eq!(code, 0, "{} should be valid:\n{out}", file.display());
    }
}

const BASE_HEAD: &str = "listeners:\n  - { name: public, address: \"127.0.0.1:8080\" }\n";

/// (what, config text, expected key path, expected line)
fn invalid_configs() -> Vec<(&'static str, String, &'static str, usize)> {
    let upstream = "upstreams:\n  app:\n    backends:\n      - { address: \"127.0.0.1:9001\" }\n";
    let route = "routes:\n  - { name: all, upstream: app }\n";
    let ok = |extra_upstream: &str, routes: &str| {
        format!("{BASE_HEAD}{upstream}{extra_upstream}{routes}")
    };
    vec![
        (
            "unknown key",
            ok("    balanse: round_robin\n", route),
            "upstreams.app.balanse",
            7,
        ),
        (
            "unknown top-level key",
            format!("{}routs: []\n", ok("", route)),
            "routs",
            9,
        ),
        (
            "wrong type",
            ok("    retries: many\n", route),
            "upstreams.app.retries",
            7,
        ),
        (
            "dangling upstream",
            ok("", "routes:\n  - name: all\n    upstream: ap\n"),
            "routes[0].upstream",
            9,
        ),
        (
            "zero backends",
            format!("{BASE_HEAD}upstreams:\n  app:\n    backends: []\n{route}"),
            "upstreams.app.backends",
            5,
        ),
        (
            "bad duration",
            ok("    timeouts:\n      connect: 5\n", route),
            "upstreams.app.timeouts.connect",
            8,
        ),
        (
            "duplicate listener address",
            format!(
                "{BASE_HEAD}  - {{ name: other, address: \"127.0.0.1:8080\" }}\n{upstream}{route}"
            ),
            "listeners[1].address",
            3,
        ),
        (
            "bad regex",
            ok(
                "",
                "routes:\n  - name: all\n    upstream: app\n    match:\n      path: { regex: \"^/(v1\" }\n",
            ),
            "routes[0].match.path.regex",
            11,
        ),
        (
            "weight out of range",
            format!(
                "{BASE_HEAD}upstreams:\n  app:\n    backends:\n      - {{ address: \"127.0.0.1:9001\", weight: 0 }}\n{route}"
            ),
            "upstreams.app.backends[0].weight",
            6,
        ),
        (
            "bad address",
            format!(
                "{BASE_HEAD}upstreams:\n  app:\n    backends:\n      - {{ address: \"localhost:9001\" }}\n{route}"
            ),
            "upstreams.app.backends[0].address",
            6,
        ),
        (
            "unknown balance algorithm",
            ok("    balance: fastest\n", route),
            "upstreams.app.balance",
            7,
        ),
        (
            "hash without a key",
            ok("    balance: hash\n", route),
            "upstreams.app.balance",
            7,
        ),
        (
            "duplicate route name",
            ok(
                "",
                "routes:\n  - { name: all, upstream: app }\n  - { name: all, upstream: app }\n",
            ),
            "routes[1].name",
            9,
        ),
        (
            "bad host pattern",
            ok(
                "",
                "routes:\n  - name: all\n    upstream: app\n    match: { host: \"http://x.com\" }\n",
            ),
            "routes[0].match.host",
            10,
        ),
        (
            "two path kinds",
            ok(
                "",
                "routes:\n  - name: all\n    upstream: app\n    match:\n      path: { exact: /a, prefix: /b }\n",
            ),
            "routes[0].match.path",
            11,
        ),
        (
            "zero health thresholds",
            ok("    health: { rise: 0 }\n", route),
            "upstreams.app.health.rise",
            7,
        ),
        (
            "threads out of range",
            format!("server:\n  threads: 0\n{}", ok("", route)),
            "server.threads",
            2,
        ),
        (
            "bad method",
            ok(
                "",
                "routes:\n  - name: all\n    upstream: app\n    match: { methods: [get] }\n",
            ),
            "routes[0].match.methods[0]",
            10,
        ),
        (
            "bad size",
            format!("max_request_body: huge\n{}", ok("", route)),
            "max_request_body",
            1,
        ),
        (
            "split weight out of range",
            format!(
                "{BASE_HEAD}upstreams:\n  app: {{ backends: [ {{ address: \"127.0.0.1:9001\" }} ] }}\n  new: {{ backends: [ {{ address: \"127.0.0.1:9002\" }} ] }}\nroutes:\n  - name: all\n    upstream: app\n    split: {{ canary: new, weight: 140 }}\n"
            ),
            "routes[0].split.weight",
            9,
        ),
        (
            "split to an unknown upstream",
            format!(
                "{BASE_HEAD}upstreams:\n  app: {{ backends: [ {{ address: \"127.0.0.1:9001\" }} ] }}\nroutes:\n  - name: all\n    upstream: app\n    split:\n      canary: nwe\n      weight: 10\n"
            ),
            "routes[0].split.canary",
            9,
        ),
        (
            "ramp steps that fall",
            format!(
                "{BASE_HEAD}upstreams:\n  app: {{ backends: [ {{ address: \"127.0.0.1:9001\" }} ] }}\n  new: {{ backends: [ {{ address: \"127.0.0.1:9002\" }} ] }}\nroutes:\n  - name: all\n    upstream: app\n    split:\n      canary: new\n      weight: 10\n      ramp: {{ steps: [50, 20], hold: 1m }}\n"
            ),
            "routes[0].split.ramp.steps",
            12,
        ),
        (
            "not yaml",
            "listeners: [\n".to_string(),
            "",
            2,
        ),
    ]
}

#[test]
fn invalid_configs_name_the_key_and_the_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = invalid_configs();
    assert!(cases.len() >= 12);
    for (what, text, path, line) in cases {
        let file = dir.path().join("bad.yaml");
        std::fs::write(&file, &text).expect("write");
        let (code, out) = check_config(&file);
        assert_eq!(
            code, 1,
            "{what}: expected exit 1, got {code}:\n{out}\n--- config ---\n{text}"
        );
        let expected = if path.is_empty() {
            format!("bad.yaml: line {line}: ")
        } else {
            format!("bad.yaml: line {line}: {path}: ")
        };
        assert!(
            out.contains(&expected),
            "{what}: expected `{expected}` in:\n{out}\n--- config ---\n{text}"
        );
    }
}

#[test]
fn all_problems_are_listed_in_one_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("many.yaml");
    std::fs::write(
        &file,
        "listeners:\n  - { name: a, address: \"127.0.0.1:1\" }\n  - { name: a, address: \"127.0.0.1:2\" }\nupstreams:\n  app:\n    backends: []\n    retries: 99\nroutes:\n  - { name: r, upstream: nope }\n",
    )
    .expect("write");
    let (code, out) = check_config(&file);
    assert_eq!(code, 1);
    for expected in [
        "line 3: listeners[1].name: duplicate",
        "line 6: upstreams.app.backends:",
        "line 7: upstreams.app.retries: must be 0..=10",
        "line 9: routes[0].upstream: no upstream named \"nope\"",
        "4 problems found",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
}

#[test]
fn a_missing_file_is_an_error() {
    let (code, out) = check_config(Path::new("/nonexistent/gatehouse.yaml"));
    assert_eq!(code, 1);
    assert!(out.contains("cannot read config file"), "{out}");
}

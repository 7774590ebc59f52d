//! The access log through the real binary: one JSON (or combined) line per request with the
//! fields an operator needs, and a reopen on SIGUSR1 after the file was rotated away.

use super::harness::{backends, client, get, wait_until, Origin, Proxy};
use std::path::Path;
use std::time::Duration;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_are_written_and_the_file_is_reopened_on_sigusr1() {
    let origin = Origin::start("app").await;
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("access.log");
    let config = format!(
        "access_log: {{ path: {}, format: json }}\nupstreams:\n  app:\n    backends:\n{}routes:\n  - {{ name: web, upstream: app }}\n",
        log.display(),
        backends(&[&origin])
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    for i in 0..10 {
        let (status, _, _) = get(
            &c,
            &proxy,
            &format!("/page/{i}?q=1"),
            &[
                ("x-request-id", &format!("req-{i}")),
                ("user-agent", "test-agent"),
            ],
        )
        .await;
        assert_eq!(status, 200);
    }
    wait_until("ten lines are written", Duration::from_secs(10), || async {
        lines(&log).len() == 10
    })
    .await;
    let first: serde_json::Value = serde_json::from_str(&lines(&log)[0]).expect("a JSON line");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/page/0?q=1");
    assert_eq!(first["status"], 200);
    assert_eq!(first["bytes"], 3);
    assert_eq!(first["route"], "web");
    assert_eq!(first["upstream"], "app");
    assert_eq!(first["backend"], origin.addr.to_string());
    assert_eq!(first["client"], "127.0.0.1");
    assert_eq!(first["request_id"], "req-0");
    assert_eq!(first["user_agent"], "test-agent");
    assert!(first["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
    assert!(first["time"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Rotate: move the file away, signal, and the next lines go to a new file.
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    proxy.signal("USR1");
    wait_until("the log is reopened", Duration::from_secs(10), || async {
        proxy.log().contains("reopening access logs")
    })
    .await;
    wait_until(
        "a new file receives new lines",
        Duration::from_secs(10),
        || async {
            let _ = get(&c, &proxy, "/after", &[]).await;
            lines(&log).iter().any(|l| l.contains("/after"))
        },
    )
    .await;
    assert!(lines(&rotated).len() >= 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn combined_lines_look_like_nginx() {
    let origin = Origin::start("app").await;
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("access.log");
    let config = format!(
        "access_log: {{ path: {}, format: combined }}\nupstreams:\n  app:\n    backends:\n{}routes:\n  - {{ name: web, upstream: app, match: {{ path: {{ prefix: /web }} }} }}\n",
        log.display(),
        backends(&[&origin])
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    assert_eq!(
        get(
            &c,
            &proxy,
            "/web/x",
            &[("x-request-id", "abc"), ("referer", "http://r/")]
        )
        .await
        .0,
        200
    );
    assert_eq!(
        get(&c, &proxy, "/nowhere", &[("x-request-id", "def")])
            .await
            .0,
        404
    );
    wait_until("two lines", Duration::from_secs(10), || async {
        lines(&log).len() == 2
    })
    .await;
    let all = lines(&log);
    assert!(all[0].starts_with("127.0.0.1 - - ["), "{}", all[0]);
    assert!(
        all[0].contains("] \"GET /web/x HTTP/1.1\" 200 3 \"http://r/\""),
        "{}",
        all[0]
    );
    assert!(all[0].contains(" abc web app "), "{}", all[0]);
    assert!(
        all[1].contains("\"GET /nowhere HTTP/1.1\" 404 "),
        "{}",
        all[1]
    );
    assert!(all[1].contains(" def - - "), "{}", all[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_request_still_names_its_backend() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("addr");
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("access.log");
    let config = format!(
        "access_log: {{ path: {} }}\nupstreams:\n  app:\n    backends: [ {{ address: \"{dead}\" }} ]\n    retries: 0\nroutes:\n  - {{ name: web, upstream: app }}\n",
        log.display()
    );
    let proxy = Proxy::start(&config).await;
    assert_eq!(get(&client(), &proxy, "/", &[]).await.0, 502);
    wait_until("the line is written", Duration::from_secs(10), || async {
        lines(&log).len() == 1
    })
    .await;
    let line: serde_json::Value = serde_json::from_str(&lines(&log)[0]).expect("json");
    assert_eq!(line["status"], 502);
    assert_eq!(line["backend"], dead.to_string());
}

//! The WAF's response-phase rules (CRS RESPONSE-95x) in the proxy, on a profile with
//! `inspect_response: true`: a response that leaks (an SQL error in an HTML page) is
//! stopped before any byte of its body reaches the client (a 403 when its head was not
//! committed yet, else the committed head and a cut connection); a response judged on its
//! head alone (a 5xx whose body is not inspected) is replaced by a clean 403; clean
//! responses pass whole, bodies past the inspection limit too; and with the default
//! (off) the same leak passes untouched.

use super::harness::{backends, client, free_port, metrics, wait_until, Origin, Proxy};
use std::time::Duration;

fn crs_dir() -> String {
    std::env::var("GATEHOUSE_CRS_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpora/crs").into())
}

/// Gatehouse with CRS at `paranoia` on route `all` (with the given extra profile lines)
/// in front of `origin`; also returns the admin port.
async fn start(origin: &Origin, paranoia: u8, extra: &str) -> (Proxy, u16) {
    let admin_port = free_port();
    let config = format!(
        "admin: {{ address: \"127.0.0.1:{admin_port}\" }}\nwaf:\n  crs:\n    crs: {}\n    paranoia: {paranoia}\n{extra}upstreams:\n  app:\n    backends:\n{}routes:\n  - {{ name: all, upstream: app, waf: crs }}\n",
        crs_dir(),
        backends(&[origin])
    );
    (Proxy::start(&config).await, admin_port)
}

/// Asks the origin (through the proxy) to answer with `spec` (the CRS test backend's
/// JSON); returns the status and the body, or None when the body was cut short. The spec
/// goes base64-encoded in a header, where no request rule reads it as an attack: the
/// leak it describes must be judged in the response, not in the request.
async fn reflect(proxy: &Proxy, spec: &str) -> (u16, Option<String>) {
    use base64::Engine as _;
    let response = client()
        .get(proxy.url("/reflect"))
        .header("host", "shop.example")
        .header("accept", "text/html")
        .header(
            "x-reflect",
            base64::engine::general_purpose::STANDARD.encode(spec),
        )
        .send()
        .await
        .expect("response head");
    let status = response.status().as_u16();
    (status, response.text().await.ok())
}

const SQL_ERROR_PAGE: &str = r#"{"headers": {"Content-Type": "text/html"}, "body": "<html><body>Warning: pg_query(): Query failed: ERROR: syntax error at or near line 1</body></html>"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_leaking_response_body_never_reaches_the_client() {
    let origin = Origin::start("app").await;
    let (proxy, admin_port) = start(&origin, 1, "    inspect_response: true\n").await;

    let clean = r#"{"headers": {"Content-Type": "text/html"}, "body": "<html><body>Your order has shipped.</body></html>"}"#;
    let (status, body) = reflect(&proxy, clean).await;
    assert_eq!(status, 200);
    assert_eq!(
        body.as_deref(),
        Some("<html><body>Your order has shipped.</body></html>"),
        "a clean page passes whole"
    );

    // Pingora commits the head once it is filtered: when the whole response came in one
    // read, the body is judged first and the client gets a 403; otherwise it gets the
    // committed head and the connection is cut before any byte of the body.
    let (status, body) = reflect(&proxy, SQL_ERROR_PAGE).await;
    match (status, &body) {
        (403, Some(b)) => assert!(b.contains("403") && !b.contains("pg_query"), "{b}"),
        (200, None) => {}
        other => panic!("the leak was not stopped: {other:?}"),
    }
    assert_eq!(
        origin.request_count(),
        2,
        "both requests reached the origin"
    );
    wait_until(
        "the response decision in the log",
        Duration::from_secs(5),
        || async { proxy.log().contains("waf response_block") },
    )
    .await;
    let log = proxy.log();
    assert!(
        log.contains("951") && log.contains("959100"),
        "the leak rule and the outbound score rule are named: {log}"
    );
    let m = metrics(admin_port).await;
    for line in [
        "gatehouse_waf_decisions_total{route=\"all\",verdict=\"allow\"} 2",
        "gatehouse_waf_decisions_total{route=\"all\",verdict=\"response_block\"} 1",
        "gatehouse_waf_rule_matches_total{route=\"all\",rule=\"959100\"} 1",
    ] {
        assert!(m.contains(line), "{line} in:\n{m}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_judged_on_its_head_is_replaced_by_a_403() {
    let origin = Origin::start("app").await;
    // 950100 (a 5xx status) is a paranoia-2 rule; JSON bodies are not inspected by
    // default, so phase 4 runs at the head and the outbound score decides there.
    let (proxy, _) = start(&origin, 2, "    inspect_response: true\n").await;
    let spec = r#"{"status": 500, "headers": {"Content-Type": "application/json"}, "body": "{\"trace\": \"at db.connect (internal)\"}"}"#;
    let (status, body) = reflect(&proxy, spec).await;
    assert_eq!(status, 403, "the 5xx is replaced");
    let body = body.expect("a whole 403 body");
    assert!(
        body.contains("403") && !body.contains("trace"),
        "Gatehouse's own 403, nothing of the origin's: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_past_the_limit_are_judged_by_their_prefix_and_pass_whole() {
    let origin = Origin::start("app").await;
    let (proxy, _) = start(
        &origin,
        1,
        "    inspect_response: true\n    response_body_limit: 1KiB\n",
    )
    .await;
    let text = "all quiet on the western front ".repeat(2000);
    let spec = format!(r#"{{"headers": {{"Content-Type": "text/plain"}}, "body": "{text}"}}"#);
    let (status, body) = reflect(&proxy, &spec).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_deref(), Some(text.as_str()), "every byte, in order");

    // A leak past the inspected prefix is not seen (ModSecurity's ProcessPartial).
    let late_leak = format!(
        r#"{{"headers": {{"Content-Type": "text/html"}}, "body": "{}Warning: pg_query(): Query failed"}}"#,
        "x".repeat(4096)
    );
    let (status, body) = reflect(&proxy, &late_leak).await;
    assert_eq!(status, 200);
    assert!(body.is_some_and(|b| b.ends_with("Query failed")));
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_are_not_inspected_by_default() {
    let origin = Origin::start("app").await;
    let (proxy, _) = start(&origin, 1, "").await;
    let (status, body) = reflect(&proxy, SQL_ERROR_PAGE).await;
    assert_eq!(status, 200);
    assert!(
        body.is_some_and(|b| b.contains("pg_query")),
        "the leak passes: response rules are off"
    );
}

//! The WAF in the proxy: a route's profile blocks attacks with a 403 that carries the
//! request id and no rule detail, before any byte reaches the origin (body attacks too);
//! detection mode logs and lets through; bodies past the limit are refused or inspected
//! by prefix; the CRS loads from a directory; decisions are counted in metrics.

use super::harness::{
    backends, check_config, client, free_port, get, metrics, wait_until, Origin, Proxy,
};
use std::time::Duration;

fn crs_dir() -> String {
    std::env::var("GATEHOUSE_CRS_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpora/crs").into())
}

/// One upstream over `origin`, route `all` with WAF profile `default` (the given lines).
fn waf_config(origin: &Origin, profile: &str, top: &str) -> String {
    format!(
        "{top}waf:\n  default:\n{profile}upstreams:\n  app:\n    backends:\n{}routes:\n  - {{ name: all, upstream: app, waf: default }}\n",
        backends(&[origin])
    )
}

async fn post(proxy: &Proxy, path: &str, content_type: &str, body: String) -> (u16, String) {
    let response = client()
        .post(proxy.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request through the proxy");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_rules_block_attacks_before_the_origin_sees_them() {
    let origin = Origin::start("app").await;
    let proxy = Proxy::start(&waf_config(&origin, "    mode: block\n", "")).await;

    let (status, _, body) = get(
        &client(),
        &proxy,
        "/search?q=shoes&page=2",
        &[("cookie", "session=abc123")],
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, "app"),
        "benign request passes"
    );
    assert_eq!(origin.request_count(), 1);

    let (status, headers, body) = get(
        &client(),
        &proxy,
        "/search?q=1%27%20OR%20%271%27%3D%271",
        &[],
    )
    .await;
    assert_eq!(status, 403, "SQL injection in the query is blocked");
    let id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("request id");
    assert!(body.contains(id), "the 403 names the request id: {body}");
    assert!(
        !body.contains("1500") && !body.to_lowercase().contains("sql"),
        "no rule detail: {body}"
    );

    let (status, _) = post(
        &proxy,
        "/comment",
        "application/x-www-form-urlencoded",
        "text=%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(),
    )
    .await;
    assert_eq!(status, 403, "XSS in a form body is blocked");
    let (status, _) = post(
        &proxy,
        "/api",
        "application/json",
        r#"{"user":{"name":"x' UNION SELECT password FROM users--"}}"#.into(),
    )
    .await;
    assert_eq!(status, 403, "SQL injection in a JSON body is blocked");
    let (status, _, _) = get(&client(), &proxy, "/static/..%2f..%2fetc%2fpasswd", &[]).await;
    assert_eq!(status, 403, "path traversal is blocked");
    let (status, _, _) = get(&client(), &proxy, "/", &[("user-agent", "sqlmap/1.7")]).await;
    assert_eq!(status, 403, "a scanner is blocked");
    assert_eq!(
        origin.request_count(),
        1,
        "no blocked request reached the origin"
    );

    let (status, body) = post(
        &proxy,
        "/comment",
        "application/x-www-form-urlencoded",
        "text=hello+world&rating=5".into(),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, "app"),
        "a benign form is replayed to the origin"
    );
    assert_eq!(origin.request_count(), 2);

    wait_until(
        "the block is logged with its rule",
        Duration::from_secs(5),
        || async {
            let log = proxy.log();
            log.contains("waf block route=all")
                && log.contains("1500 \"SQL injection (libinjection)\"")
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn detect_mode_logs_and_lets_through() {
    let origin = Origin::start("app").await;
    let proxy = Proxy::start(&waf_config(&origin, "    mode: detect\n", "")).await;
    let (status, _, body) = get(
        &client(),
        &proxy,
        "/?q=%3Cscript%3Ealert(1)%3C/script%3E",
        &[],
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "app"));
    assert_eq!(origin.request_count(), 1);
    wait_until(
        "the detection is logged",
        Duration::from_secs(5),
        || async { proxy.log().contains("waf detect route=all") },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_past_the_limit_are_refused_or_inspected_by_prefix() {
    let origin = Origin::start("app").await;
    let proxy = Proxy::start(&waf_config(&origin, "    body_limit: 1KiB\n", "")).await;
    let big = format!("a={}", "x".repeat(4000));
    let (status, _) = post(
        &proxy,
        "/",
        "application/x-www-form-urlencoded",
        big.clone(),
    )
    .await;
    assert_eq!(status, 413, "reject is the default past body_limit");
    assert_eq!(origin.request_count(), 0);

    let origin = Origin::start("app").await;
    let proxy = Proxy::start(&waf_config(
        &origin,
        "    body_limit: 16KiB\n    body_over_limit: inspect_prefix\n",
        "",
    ))
    .await;
    let large = format!("a={}", "y".repeat(40_000));
    let (status, body) = post(&proxy, "/", "application/x-www-form-urlencoded", large).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "app"),
        "a clean prefix lets the body through whole"
    );
    let attack = format!(
        "q=%3Cscript%3Ealert(1)%3C/script%3E&pad={}",
        "z".repeat(40_000)
    );
    let (status, _) = post(&proxy, "/", "application/x-www-form-urlencoded", attack).await;
    assert_eq!(status, 403, "an attack in the prefix is blocked");
    assert_eq!(origin.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_core_rule_set_runs_from_its_directory() {
    let origin = Origin::start("app").await;
    let profile = format!("    crs: {}\n    paranoia: 1\n", crs_dir());
    let admin_port = free_port();
    let admin = format!("admin: {{ address: \"127.0.0.1:{admin_port}\" }}\n");
    let proxy = Proxy::start(&waf_config(&origin, &profile, &admin)).await;
    let (status, _, body) = get(
        &client(),
        &proxy,
        "/products?id=42&sort=price",
        &[
            ("accept", "text/html"),
            ("cookie", "_ga=GA1.2.3; session=abc"),
        ],
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "app"));
    let (status, _, _) = get(
        &client(),
        &proxy,
        "/products?id=1%20UNION%20SELECT%20username,password%20FROM%20users",
        &[("accept", "text/html")],
    )
    .await;
    assert_eq!(status, 403, "CRS blocks SQL injection at paranoia 1");
    assert_eq!(origin.request_count(), 1);
    wait_until(
        "CRS rule ids in the log",
        Duration::from_secs(5),
        || async { proxy.log().contains("949110") },
    )
    .await;
    let metrics = metrics(admin_port).await;
    for line in [
        "gatehouse_waf_decisions_total{route=\"all\",verdict=\"allow\"} 1",
        "gatehouse_waf_decisions_total{route=\"all\",verdict=\"block\"} 1",
        "gatehouse_waf_rule_matches_total{route=\"all\",rule=\"949110\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
}

#[test]
fn config_check_names_waf_problems_and_loads_the_crs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "waf:\n  strict:\n    paranoia: 7\n    crs: /nonexistent/crs\n    response_body_limit: 64MiB\n    response_body_types: [html]\nupstreams:\n  app: { backends: [ { address: \"127.0.0.1:9\" } ] }\nroutes:\n  - { name: all, upstream: app, waf: default }\n",
    )
    .expect("write");
    let (code, out) = check_config(&bad);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("line 3: waf.strict.paranoia: paranoia 7 is out of range"),
        "{out}"
    );
    assert!(
        out.contains("line 4: waf.strict.crs: /nonexistent/crs is not a CRS directory"),
        "{out}"
    );
    assert!(
        out.contains("line 5: waf.strict.response_body_limit: must be between 1B and 8MiB"),
        "{out}"
    );
    assert!(
        out.contains("line 6: waf.strict.response_body_types[0]: \"html\" is not a media type"),
        "{out}"
    );
    assert!(
        out.contains(
            "line 10: routes[0].waf: no WAF profile named `default`; defined profiles: strict"
        ),
        "{out}"
    );

    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        format!(
            "listeners: [ {{ name: public, address: \"127.0.0.1:0\" }} ]\nwaf:\n  crs: {{ crs: {} }}\nupstreams:\n  app: {{ backends: [ {{ address: \"127.0.0.1:9\" }} ] }}\nroutes:\n  - {{ name: all, upstream: app, waf: crs }}\n",
            crs_dir()
        ),
    )
    .expect("write");
    let (code, out) = check_config(&good);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("rule 901320: action initcol"),
        "unsupported parts are reported by rule id: {out}"
    );
}

/// A reload recompiles the rule files (an edited rule takes effect); a rule file that no
/// longer parses is refused and the running rules stay.
#[tokio::test(flavor = "multi_thread")]
async fn reload_recompiles_rules_and_keeps_them_when_a_file_breaks() {
    let origin = Origin::start("app").await;
    let crs = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(crs.path().join("rules")).expect("rules dir");
    std::fs::write(crs.path().join("crs-setup.conf.example"), "# empty setup\n").expect("setup");
    let rule = |word: &str| {
        format!(
            "SecRule ARGS:q \"@streq {word}\" \"id:100,phase:1,deny,status:403,msg:'custom'\"\n"
        )
    };
    let rules_file = crs.path().join("rules").join("custom.conf");
    std::fs::write(&rules_file, rule("first")).expect("rules");
    let profile = format!("    crs: {}\n", crs.path().display());
    let proxy = Proxy::start(&waf_config(&origin, &profile, "")).await;
    assert_eq!(get(&client(), &proxy, "/?q=first", &[]).await.0, 403);
    assert_eq!(get(&client(), &proxy, "/?q=second", &[]).await.0, 200);

    std::fs::write(&rules_file, rule("second")).expect("rules");
    proxy.signal("HUP");
    wait_until(
        "the edited rule applies",
        Duration::from_secs(10),
        || async { get(&client(), &proxy, "/?q=second", &[]).await.0 == 403 },
    )
    .await;
    assert_eq!(get(&client(), &proxy, "/?q=first", &[]).await.0, 200);

    std::fs::write(&rules_file, "SecRule ARGS \"@rx unclosed").expect("rules");
    proxy.signal("HUP");
    wait_until(
        "the broken file is refused",
        Duration::from_secs(10),
        || async { proxy.log().contains("reload rejected") },
    )
    .await;
    assert_eq!(
        get(&client(), &proxy, "/?q=second", &[]).await.0,
        403,
        "the running rules stay"
    );
}

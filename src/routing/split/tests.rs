use super::control::{evaluate, Event, Phase};
use super::*;
use crate::config;
use crate::snapshot::Snapshot;

/// A snapshot whose first route splits with `split` (YAML), between upstreams `stable`,
/// `canary`, `a`, `b`, `c`.
fn snapshot(split: &str) -> Snapshot {
    let text = format!(
        r#"
listeners: [ {{ name: p, address: "127.0.0.1:8080" }} ]
upstreams:
  stable: {{ backends: [ {{ address: "127.0.0.1:9001" }} ] }}
  canary: {{ backends: [ {{ address: "127.0.0.1:9002" }} ] }}
  a: {{ backends: [ {{ address: "127.0.0.1:9003" }} ] }}
  b: {{ backends: [ {{ address: "127.0.0.1:9004" }} ] }}
  c: {{ backends: [ {{ address: "127.0.0.1:9005" }} ] }}
routes:
  - name: r
    upstream: stable
    split: {split}
"#
    );
    let config = config::parse(&text, "test.yaml").expect("valid config");
    Snapshot::build(&config).expect("snapshot builds")
}

fn split(snapshot: &Snapshot) -> &Split {
    snapshot.router.splits().next().expect("a split").1
}

fn request<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    ip: Option<IpAddr>,
) -> SplitRequest<'a> {
    SplitRequest {
        headers,
        query,
        client_ip: ip,
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(*k, v.parse().expect("value"));
    }
    map
}

fn name<'a>(split: &'a Split, a: &Assignment) -> &'a str {
    &split.variants[a.variant].name
}

#[test]
fn ten_percent_without_stickiness_is_within_the_binomial_bound() {
    let s = snapshot("{ canary: canary, weight: 10 }");
    let split = split(&s);
    let h = HeaderMap::new();
    let canary = (0..10_000)
        .filter(|_| name(split, &split.assign(&request(&h, None, None))) == "canary")
        .count();
    // 99.9% two-sided bound for n=10,000, p=0.1: 1000 +- 3.29 * 30.
    assert!(
        (901..=1099).contains(&canary),
        "{canary} of 10,000 on the canary"
    );
}

#[test]
fn relative_weights_split_a_b_c() {
    let s = snapshot("{ variants: [ { upstream: a, weight: 5 }, { upstream: b, weight: 3 }, { upstream: c, weight: 2 } ] }");
    let split = split(&s);
    let h = HeaderMap::new();
    let mut counts: std::collections::HashMap<String, i32> = std::collections::HashMap::new();
    for _ in 0..10_000 {
        *counts
            .entry(name(split, &split.assign(&request(&h, None, None))).to_string())
            .or_insert(0) += 1;
    }
    for (variant, share) in [("a", 5000), ("b", 3000), ("c", 2000)] {
        let got = counts[variant];
        assert!((got - share).abs() < 200, "{variant}: {got}");
    }
}

#[test]
fn a_cookie_is_set_once_and_then_keeps_the_client_on_its_side() {
    let s = snapshot("{ canary: canary, weight: 50, sticky: { cookie: { name: gh, max_age: 1d, secure: true } } }");
    let split = split(&s);
    let first = split.assign(&request(&HeaderMap::new(), None, None));
    let cookie = first
        .set_cookie
        .clone()
        .expect("first assignment sets the cookie");
    let cookie = cookie.to_str().expect("ascii");
    assert!(cookie.starts_with("gh="), "{cookie}");
    assert!(
        cookie.contains("; Max-Age=86400; Path=/; Secure; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );
    let value = cookie.split(';').next().expect("pair");
    let h = headers(&[("cookie", value)]);
    for _ in 0..100 {
        let again = split.assign(&request(&h, None, None));
        assert_eq!(again.variant, first.variant);
        assert!(again.set_cookie.is_none());
    }
}

#[test]
fn ramping_up_moves_clients_only_from_baseline_to_canary() {
    let s = snapshot("{ canary: canary, weight: 10, sticky: { cookie: {} } }");
    let split = split(&s);
    let at = |bucket: u32| {
        let h = headers(&[("cookie", &format!("gh_variant={bucket}"))]);
        name(split, &split.assign(&request(&h, None, None))).to_string()
    };
    let before: Vec<String> = (0..BUCKETS).map(at).collect();
    assert_eq!(before.iter().filter(|v| *v == "canary").count(), 1000);
    assert!(split.set_canary_weight(20));
    let after: Vec<String> = (0..BUCKETS).map(at).collect();
    assert_eq!(after.iter().filter(|v| *v == "canary").count(), 2000);
    for (b, a) in before.iter().zip(&after) {
        assert!(
            !(b == "canary" && a == "stable"),
            "a canary client moved back"
        );
    }
}

#[test]
fn header_and_client_ip_stickiness_keep_a_key_on_one_side() {
    let s = snapshot("{ canary: canary, weight: 50, sticky: { header: X-User } }");
    let split = split(&s);
    for user in 0..50 {
        let h = headers(&[("x-user", &format!("user-{user}"))]);
        let first = split.assign(&request(&h, None, None)).variant;
        assert!((0..10).all(|_| split.assign(&request(&h, None, None)).variant == first));
    }
    let s = snapshot("{ canary: canary, weight: 50, sticky: { client_ip: true } }");
    let split = super::tests::split(&s);
    let h = HeaderMap::new();
    let ip: IpAddr = "198.51.100.9".parse().expect("ip");
    let first = split.assign(&request(&h, None, Some(ip))).variant;
    assert!((0..10).all(|_| split.assign(&request(&h, None, Some(ip))).variant == first));
}

#[test]
fn overrides_force_a_side_only_from_trusted_networks() {
    let s = snapshot(
        "{ canary: canary, weight: 0, override: { header: X-Canary, query: canary, cookie: force, from: [10.0.0.0/8] } }",
    );
    let split = split(&s);
    let inside: IpAddr = "10.1.2.3".parse().expect("ip");
    let outside: IpAddr = "203.0.113.1".parse().expect("ip");
    let always = headers(&[("x-canary", "always")]);
    assert_eq!(
        name(split, &split.assign(&request(&always, None, Some(inside)))),
        "canary"
    );
    assert_eq!(
        name(split, &split.assign(&request(&always, None, Some(outside)))),
        "stable"
    );
    let h = HeaderMap::new();
    assert_eq!(
        name(
            split,
            &split.assign(&request(&h, Some("x=1&canary=always"), Some(inside)))
        ),
        "canary"
    );
    let cookie = headers(&[("cookie", "force=canary")]);
    assert_eq!(
        name(split, &split.assign(&request(&cookie, None, Some(inside)))),
        "canary"
    );
    // `never` forces the baseline even at 100%.
    split.set_canary_weight(100);
    let never = headers(&[("x-canary", "never")]);
    assert_eq!(
        name(split, &split.assign(&request(&never, None, Some(inside)))),
        "stable"
    );
}

#[test]
fn a_failing_canary_is_rolled_back_and_stays_back() {
    let s = snapshot(
        "{ canary: canary, weight: 20, rollback: { window: 10s, min_requests: 20, max_error_rate_increase: 5% } }",
    );
    let split = split(&s);
    let t0 = Instant::now();
    let ms = Duration::from_millis(5);
    for i in 0..19 {
        split.record(0, t0 + Duration::from_millis(i), true, ms);
        split.record(1, t0 + Duration::from_millis(i), false, ms);
    }
    assert_eq!(
        evaluate(split, t0 + Duration::from_millis(20)),
        None,
        "19 requests decide nothing"
    );
    split.record(0, t0 + Duration::from_millis(20), true, ms);
    split.record(1, t0 + Duration::from_millis(20), false, ms);
    assert!(matches!(
        evaluate(split, t0 + Duration::from_millis(21)),
        Some(Event::RolledBack { .. })
    ));
    assert_eq!(split.canary_weight(), Some(0));
    assert!(matches!(
        split.control.as_ref().map(|c| c.phase()),
        Some(Phase::RolledBack { .. })
    ));
    assert_eq!(evaluate(split, t0 + Duration::from_secs(60)), None);
}

#[test]
fn a_healthy_canary_climbs_the_ramp_one_hold_at_a_time() {
    let s = snapshot(
        "{ canary: canary, weight: 0, ramp: { steps: [5, 25, 50, 100], hold: 10s }, rollback: { window: 5s, min_requests: 10 } }",
    );
    let split = split(&s);
    assert_eq!(
        split.canary_weight(),
        Some(5),
        "the ramp starts at its first step"
    );
    let t0 = Instant::now();
    let feed = |at: Instant| {
        for _ in 0..10 {
            split.record(0, at, false, Duration::from_millis(5));
            split.record(1, at, false, Duration::from_millis(5));
        }
    };
    let mut now = t0;
    for expected in [25, 50, 100] {
        now += Duration::from_secs(9);
        feed(now);
        assert_eq!(evaluate(split, now), None, "hold not over");
        now += Duration::from_secs(1);
        feed(now);
        assert_eq!(evaluate(split, now), Some(Event::Stepped { to: expected }));
        assert_eq!(split.canary_weight(), Some(expected));
    }
    now += Duration::from_secs(30);
    feed(now);
    assert_eq!(evaluate(split, now), None, "the ramp is done");
}

#[test]
fn a_ramp_waits_for_evidence() {
    let s = snapshot(
        "{ canary: canary, weight: 0, ramp: { steps: [5, 100], hold: 1s }, rollback: { window: 5s, min_requests: 10 } }",
    );
    let split = split(&s);
    let later = Instant::now() + Duration::from_secs(5);
    assert_eq!(evaluate(split, later), None, "no traffic, no step");
    assert_eq!(split.canary_weight(), Some(5));
}

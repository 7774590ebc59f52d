//! Criterion benches of the WAF engine on whole requests, through the same profile
//! compiler the proxy uses: CRS 4 at paranoia 1 (from `../shared/corpora/crs`, or
//! `GATEHOUSE_CRS_DIR`) and the embedded rule set, on a benign browser GET with query
//! arguments and a cookie, a benign 2 KB form POST, and an SQL-injection attack. The
//! engine keeps what it learnt of request values from one request to the next, so the
//! same request run over and over finds every value known: the `-varied` benches send
//! another page, session and form each time (as `benches/load.sh` does by default), and
//! only what a browser sends on every request repeats.

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::config;
use gatehouse::waf::profile::WafProfile;
use gatehouse::waf::{RequestHead, Transaction};
use std::hint::black_box;

// As in the gatehouse binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn profile(crs: Option<&str>) -> WafProfile {
    let text = match crs {
        Some(dir) => format!("crs: {dir}\nparanoia: 1\n"),
        None => "paranoia: 1\n".to_string(),
    };
    let section: config::waf::WafProfileSection = serde_yaml::from_str(&text).expect("profile");
    WafProfile::compile("bench", &section).expect("compiles")
}

fn browser_headers(extra: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut headers: Vec<(&str, &str)> = vec![
        ("host", "shop.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("referer", "https://shop.example.com/catalog?page=1"),
        (
            "cookie",
            "session=3f9a1c2e7b5d4a60; theme=dark; _ga=GA1.2.1234567890.1700000000",
        ),
    ];
    headers.extend_from_slice(extra);
    headers
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn head(method: &str, uri: &str, extra: &[(&str, &str)]) -> RequestHead {
    RequestHead {
        method: method.into(),
        uri: uri.as_bytes().to_vec(),
        protocol: "HTTP/1.1".into(),
        headers: browser_headers(extra),
        remote_addr: "203.0.113.7".into(),
        remote_port: 51234,
        server_port: 443,
        unique_id: "bench".into(),
    }
}

/// Request `n` of a browsing session's worth of different requests: its own page (query
/// arguments, Referer), session cookie and, for a POST, form values.
fn varied(n: usize, method: &str, path: &str, extra: &[(&str, &str)]) -> RequestHead {
    let mut head = head(method, path, extra);
    if method == "GET" {
        head.uri = format!(
            "/products/list?category=shoes&size={}&sort=price_asc&page={n}",
            30 + n % 20
        )
        .into_bytes();
    }
    let session = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 8;
    for (name, value) in &mut head.headers {
        match name.as_slice() {
            b"referer" => {
                *value = format!("https://shop.example.com/catalog?page={n}").into_bytes()
            }
            b"cookie" => {
                *value = format!(
                    "session={session:016x}; theme=dark; _ga=GA1.2.{}.1700000000",
                    1_000_000_000 + n
                )
                .into_bytes()
            }
            _ => {}
        }
    }
    head
}

/// The 2 KB form (25 fields cut at 2,048 bytes), its numbers from `n`.
fn form_body(n: usize) -> String {
    let form: String = (0..25)
        .map(|i| {
            let number = (n * 31 + i) % 10_000;
            format!("field{i}=some+ordinary+text+value+number+{number:04}+with+words+and+more+words+here+to+fill&")
        })
        .collect();
    form[..form.len().min(2048)].to_string()
}

fn run(profile: &WafProfile, head: &RequestHead, body: &[u8]) -> bool {
    let mut tx = Transaction::new(std::sync::Arc::clone(&profile.rules), head.clone());
    tx.process_request_headers();
    tx.process_request_body(body);
    tx.interruption().is_some()
}

fn engine(c: &mut Criterion) {
    let crs_dir = std::env::var("GATEHOUSE_CRS_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpora/crs").into());
    // The same 2 KB form as `benches/load.sh`'s POST (WAF_REQUESTS=repeated).
    let fixed_form = form_body(0);
    let form = fixed_form.as_str();
    let get = head(
        "GET",
        "/products/list?category=shoes&size=42&sort=price_asc",
        &[],
    );
    let post = head(
        "POST",
        "/account/profile",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", &form.len().to_string()),
        ],
    );
    let attack = head(
        "GET",
        "/products/list?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
        &[],
    );
    // More different requests than the memo keeps values of (it is forgotten whole and
    // starts again, as in a proxy that sees many sessions).
    const VARIED: usize = 4096;
    let gets: Vec<RequestHead> = (0..VARIED).map(|n| varied(n, "GET", "", &[])).collect();
    let posts: Vec<(RequestHead, String)> = (0..VARIED)
        .map(|n| {
            let body = form_body(n);
            let length = body.len().to_string();
            let extra = [
                ("content-type", "application/x-www-form-urlencoded"),
                ("content-length", length.as_str()),
            ];
            (varied(n, "POST", "/account/profile", &extra), body)
        })
        .collect();
    for (name, p) in [
        ("crs-pl1", profile(Some(&crs_dir))),
        ("embedded", profile(None)),
    ] {
        assert!(!run(&p, &get, b""), "{name}: benign GET passes");
        assert!(
            !run(&p, &post, form.as_bytes()),
            "{name}: benign POST passes"
        );
        assert!(run(&p, &attack, b""), "{name}: attack blocked");
        assert!(
            gets.iter().all(|g| !run(&p, g, b"")),
            "{name}: varied GETs pass"
        );
        assert!(
            posts.iter().all(|(h, body)| !run(&p, h, body.as_bytes())),
            "{name}: varied POSTs pass"
        );
        c.bench_function(&format!("waf/{name}/benign-get"), |b| {
            b.iter(|| run(&p, black_box(&get), b""))
        });
        c.bench_function(&format!("waf/{name}/form-post-2k"), |b| {
            b.iter(|| run(&p, black_box(&post), form.as_bytes()))
        });
        let mut n = 0;
        c.bench_function(&format!("waf/{name}/benign-get-varied"), |b| {
            b.iter(|| {
                n = (n + 1) % VARIED;
                run(&p, black_box(&gets[n]), b"")
            })
        });
        c.bench_function(&format!("waf/{name}/form-post-2k-varied"), |b| {
            b.iter(|| {
                n = (n + 1) % VARIED;
                let (head, body) = &posts[n];
                run(&p, black_box(head), body.as_bytes())
            })
        });
        c.bench_function(&format!("waf/{name}/sqli-get"), |b| {
            b.iter(|| run(&p, black_box(&attack), b""))
        });
    }
}

criterion_group!(benches, engine);
criterion_main!(benches);

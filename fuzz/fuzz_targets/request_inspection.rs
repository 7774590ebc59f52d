//! Any bytes as an HTTP request, inspected by the embedded rule set and (when
//! `GATEHOUSE_CRS_DIR` or ../shared/corpora/crs is there) the Core Rule Set at paranoia 4
//! with requests never blocked (so its response rules run too): every phase, every body
//! processor, then the response the CRS test backend would send for it (or the request
//! body as the response body); never a panic.
#![no_main]

use gatehouse::waf::conformance::{load_crs, parse_raw, reflect_response, RESPONSE_STAGE_SETUP};
use gatehouse::waf::{RuleSet, Transaction};
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

static RULES: LazyLock<Vec<RuleSet>> = LazyLock::new(|| {
    let mut sets = vec![gatehouse::waf::load_text(
        gatehouse::waf::profile::DEFAULT_RULES,
        Path::new("embedded.conf"),
    )
    .expect("embedded rules")];
    let crs = std::env::var_os("GATEHOUSE_CRS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../../shared/corpora/crs"));
    if let Ok(rules) = load_crs(&crs, 4, RESPONSE_STAGE_SETUP) {
        sets.push(rules);
    }
    sets
});

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = parse_raw(data) else {
        return;
    };
    let (response, response_body) = reflect_response(&head.uri, &body);
    let response_body = if response_body.is_empty() {
        &body
    } else {
        &response_body
    };
    for rules in RULES.iter() {
        let mut tx = Transaction::new(rules, head.clone());
        tx.process_request_headers();
        tx.process_request_body(&body);
        tx.process_response_headers(response.clone());
        tx.process_response_body(response_body);
        tx.process_logging();
        let _ = tx.fired().len();
    }
});

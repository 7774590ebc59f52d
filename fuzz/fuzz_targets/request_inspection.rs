//! Any bytes as an HTTP request, inspected by the embedded rule set and (when
//! `GATEHOUSE_CRS_DIR` or ../shared/corpora/crs is there) the Core Rule Set at paranoia 4:
//! every phase, every body processor; never a panic.
#![no_main]

use gatehouse::waf::conformance::{load_crs, parse_raw};
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
    if let Ok(rules) = load_crs(&crs, 4, "") {
        sets.push(rules);
    }
    sets
});

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = parse_raw(data) else {
        return;
    };
    for rules in RULES.iter() {
        let mut tx = Transaction::new(rules, head.clone());
        tx.process_request_headers();
        tx.process_request_body(&body);
        let _ = tx.fired().len();
    }
});

//! Any text given to the SecLang reader and rule compiler: it may be refused, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(rules) = gatehouse::waf::load_text(&text, Path::new("fuzz/rules.conf")) {
        let _ = rules.report.problems.len();
    }
});

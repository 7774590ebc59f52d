//! `@detectSQLi` and `@detectXSS` answer exactly as libinjection's C reference does on
//! every line of its own sample corpus (`../shared/corpora/libinjection/verdicts.jsonl`,
//! 19,216 lines): the SQLi verdict, its fingerprint, and the XSS verdict.

use gatehouse::waf::injection::{is_xss, sqli_fingerprint};
use std::io::BufRead;

fn corpus() -> std::path::PathBuf {
    std::env::var_os("GATEHOUSE_LIBINJECTION_CORPUS")
        .map(Into::into)
        .unwrap_or_else(|| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/corpora/libinjection/verdicts.jsonl"
            )
            .into()
        })
}

#[test]
fn agrees_with_the_c_reference_on_its_whole_corpus() {
    let file = std::fs::File::open(corpus()).expect("verdicts.jsonl");
    let mut lines = 0;
    let mut disagreements = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.expect("line");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        // One code point per byte (the corpus escapes non-ASCII bytes as \u00XX).
        let input: Vec<u8> = v["input"]
            .as_str()
            .expect("input")
            .chars()
            .map(|c| c as u32 as u8)
            .collect();
        let want_sqli = v["sqli"].as_bool().expect("sqli");
        let want_fp = v["fingerprint"].as_str().expect("fingerprint");
        let want_xss = v["xss"].as_bool().expect("xss");
        let fp = sqli_fingerprint(&input);
        let xss = is_xss(&input);
        if fp.is_some() != want_sqli || fp.as_deref().unwrap_or("") != want_fp || xss != want_xss {
            disagreements.push(format!(
                "{}:{} {:?}: sqli {:?} (want {want_sqli} {want_fp:?}), xss {xss} (want {want_xss})",
                v["file"],
                v["line"],
                String::from_utf8_lossy(&input),
                fp
            ));
        }
        lines += 1;
    }
    assert_eq!(lines, 19_216, "the whole corpus was read");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

//! `make waf-eval`: (a) runs every request stage of the Core Rule Set's regression tests
//! through the WAF engine and prints, per rule file, how many stages pass when judged by
//! rule id (expected rules fire, listed rules stay quiet), then every failure with its
//! cause; (b) sends the same requests over raw sockets through a running Gatehouse with
//! CRS at paranoia 1 and counts, per rule file, the attacks blocked (403, or 400 for the
//! protocol tests) among stages whose rule is paranoia 1, and the benign stages passed.
//! (b) runs when the release binary exists (GATEHOUSE_BIN, default target/release/gatehouse).
//!
//! Usage: waf_eval [CRS_DIR] [PARANOIA] [STAGE]   (default ../shared/corpora/crs, 4)
//! With STAGE (e.g. `942420-3`), runs that stage only and prints each rule that fired
//! with its message and matched data.

use gatehouse::waf::conformance::{
    judge_ids, load_crs, load_stages, run_engine, run_engine_with_response, RESPONSE_STAGE_SETUP,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let crs = PathBuf::from(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("../shared/corpora/crs"),
    );
    let paranoia: u8 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(4);
    let started = std::time::Instant::now();
    let rules = match load_crs(&crs, paranoia, "") {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot load CRS: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "CRS at {} loaded in {:.2?}: {} rules; {} load problems",
        crs.display(),
        started.elapsed(),
        rules.rules.len(),
        rules.report.problems.len()
    );
    let rx_links = rules
        .rules
        .iter()
        .flat_map(|r| r.links.iter())
        .filter(|l| matches!(l.operator, Some(gatehouse::waf::operators::Operator::Rx(_))))
        .count();
    println!(
        "{} of {} regex rule links have a literal prefilter",
        rules.prefilters.slots, rx_links
    );
    for p in &rules.report.problems {
        println!("  load: {p}");
    }
    let stages = match load_stages(&crs.join("tests/regression/tests")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read tests: {e}");
            std::process::exit(2);
        }
    };
    if let Some(only) = args.get(3) {
        for stage in stages.iter().filter(|s| &s.name() == only) {
            println!("{}\n{}", stage.name(), String::from_utf8_lossy(&stage.raw));
            let Some((head, body)) = gatehouse::waf::conformance::parse_raw(&stage.raw) else {
                println!("  rejected by the HTTP parser (400)");
                continue;
            };
            let mut tx = gatehouse::waf::Transaction::new(&rules, head);
            tx.process_request_headers();
            tx.process_request_body(&body);
            for f in tx.fired() {
                println!(
                    "  fired {} (logged {}): {} [{}]",
                    f.id, f.logged, f.msg, f.data
                );
            }
        }
        return;
    }
    let response_rules = match load_crs(&crs, paranoia, RESPONSE_STAGE_SETUP) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot load CRS: {e}");
            std::process::exit(2);
        }
    };
    let started = std::time::Instant::now();
    let mut table: BTreeMap<String, BTreeMap<&'static str, (usize, usize)>> = BTreeMap::new();
    let mut failures = Vec::new();
    for stage in &stages {
        let kind = stage.expect.kind();
        if kind == "other" {
            continue;
        }
        let fired = if stage.file.starts_with("RESPONSE-") {
            run_engine_with_response(&response_rules, &stage.raw)
        } else {
            run_engine(&rules, &stage.raw)
        };
        let ok = judge_ids(&stage.expect, &fired);
        let cell = table
            .entry(stage.file.clone())
            .or_default()
            .entry(kind)
            .or_default();
        cell.1 += 1;
        if ok {
            cell.0 += 1;
        } else {
            failures.push((stage, fired));
        }
    }
    println!(
        "{} stages run in {:.2?} (paranoia level {paranoia}; RESPONSE-* stages answered as the CRS test backend would)\n",
        table
            .values()
            .flat_map(|k| k.values())
            .map(|c| c.1)
            .sum::<usize>(),
        started.elapsed()
    );
    println!(
        "{:<45} {:>14} {:>14} {:>10}",
        "rule file", "must fire", "must be quiet", "no rule"
    );
    let mut totals: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for (file, kinds) in &table {
        let cell = |k: &str| {
            kinds
                .get(k)
                .map(|(p, t)| format!("{p}/{t}"))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<45} {:>14} {:>14} {:>10}",
            file,
            cell("fire"),
            cell("quiet"),
            cell("no-rule")
        );
        let side = if file.starts_with("RESPONSE-") {
            "response"
        } else {
            "request"
        };
        for (k, (p, t)) in kinds {
            let e = totals.entry((side, k)).or_default();
            e.0 += p;
            e.1 += t;
        }
    }
    println!();
    for ((side, k), (p, t)) in &totals {
        println!(
            "total {side:<8} {k:<8} {p}/{t} = {:.2}%",
            100.0 * *p as f64 / (*t).max(1) as f64
        );
    }
    println!("\nfailures ({}):", failures.len());
    for (stage, fired) in failures {
        let fired: Vec<String> = fired.iter().map(u32::to_string).collect();
        println!(
            "  {} [{}] expect {:?} quiet {:?} fired [{}]\n      cause: {}",
            stage.name(),
            stage.expect.kind(),
            stage.expect.expect_ids,
            stage.expect.no_expect_ids,
            fired.join(" "),
            gatehouse::waf::conformance::known_cause(&stage.name()).unwrap_or("NOT YET UNDERSTOOD")
        );
    }
    let bin = std::env::var_os("GATEHOUSE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release/gatehouse"));
    if bin.exists() {
        through_the_proxy(&crs, &bin, &stages);
    } else {
        println!(
            "\n(b) skipped: no {} (cargo build --release)",
            bin.display()
        );
    }
}

fn through_the_proxy(
    crs: &std::path::Path,
    bin: &std::path::Path,
    stages: &[gatehouse::waf::conformance::Stage],
) {
    use gatehouse::waf::conformance::through_proxy::{evaluate, spawn_origin, start_proxy};
    let pl1 = match load_crs(crs, 1, "") {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot load CRS: {e}");
            return;
        }
    };
    let origin = spawn_origin().expect("origin");
    let proxy = match start_proxy(bin, crs, 1, origin) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("(b) cannot start the proxy: {e}");
            return;
        }
    };
    let started = std::time::Instant::now();
    let report = evaluate(proxy.addr, stages, &pl1);
    println!(
        "\n(b) through the proxy, CRS at paranoia 1 ({:.1?}): attacks whose rule is PL1, blocked",
        started.elapsed()
    );
    for (file, (b, t)) in &report.per_file {
        println!(
            "{file:<45} {b:>5}/{t:<5} {:>6.1}%",
            100.0 * *b as f64 / (*t).max(1) as f64
        );
    }
    let (hit, total) = report.blocked();
    println!(
        "{:<45} {hit:>5}/{total:<5} {:>6.1}%   (nginx + ModSecurity 3.0.9, same rules: 2160/2218 = 97.4%)",
        "all",
        100.0 * hit as f64 / total.max(1) as f64
    );
    let refused = report
        .missed
        .iter()
        .filter(|(_, s)| *s == 400 || *s == 413)
        .count();
    println!(
        "  of the {} not blocked, {refused} were refused before the rules ran (400 from the HTTP parser on a URI nginx accepts, or 413 past the body limit): {}",
        report.missed.len(),
        report
            .missed
            .iter()
            .map(|(n, s)| format!("{n} ({s})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "benign stages where no rule may fire, passed: {}/{}   (ModSecurity: 35/38); blocked: {}",
        report.benign - report.benign_blocked.len(),
        report.benign,
        report.benign_blocked.join(", ")
    );
}

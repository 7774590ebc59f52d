//! The engine's semantics, rule by rule: chains, skipAfter, setvar with macros and
//! captures, anomaly scoring with a blocking rule, removals at load and at run time,
//! exclusions, detection-only mode and `block` following SecDefaultAction.

use crate::waf::{load_text, RequestHead, Transaction};
use std::path::Path;

fn head(uri: &str, headers: &[(&str, &str)]) -> RequestHead {
    RequestHead {
        method: "GET".into(),
        uri: uri.as_bytes().to_vec(),
        protocol: "HTTP/1.1".into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
        remote_addr: "192.0.2.1".into(),
        ..Default::default()
    }
}

/// Runs both request phases; returns the fired rule ids and the blocking rule, if any.
fn run(rules: &str, uri: &str, headers: &[(&str, &str)]) -> (Vec<u32>, Option<(u32, u16)>) {
    let set = load_text(rules, Path::new("test.conf")).expect("rules parse");
    assert!(set.report.problems.is_empty(), "{:?}", set.report.problems);
    let mut tx = Transaction::new(&set, head(uri, headers));
    tx.process_request_headers();
    tx.process_request_body(b"");
    let fired = tx.fired().iter().map(|f| f.id).collect();
    (fired, tx.interruption().map(|i| (i.rule_id, i.status)))
}

#[test]
fn a_chain_fires_only_when_every_link_matches() {
    let rules = r#"
SecRule REQUEST_METHOD "@streq GET" "id:1,phase:1,pass,chain"
    SecRule ARGS:q "@contains evil" "t:lowercase"
"#;
    assert_eq!(run(rules, "/?q=EVIL", &[]).0, vec![1]);
    assert!(run(rules, "/?q=good", &[]).0.is_empty());
}

#[test]
fn skip_after_jumps_to_the_marker() {
    let rules = r#"
SecRule REQUEST_METHOD "@streq GET" "id:1,phase:1,pass,nolog,skipAfter:END"
SecRule ARGS "@unconditionalMatch" "id:2,phase:1,pass"
SecMarker END
SecRule ARGS "@unconditionalMatch" "id:3,phase:1,pass"
"#;
    assert_eq!(run(rules, "/?a=1", &[]).0, vec![1, 3]);
}

#[test]
fn scores_add_up_with_macros_and_the_blocking_rule_denies() {
    let rules = r#"
SecDefaultAction "phase:1,log,pass"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.critical=5,setvar:tx.score=0"
SecRule ARGS "@rx (?i)union\s+select" "id:2,phase:1,block,capture,setvar:'tx.score=+%{tx.critical}',setvar:'tx.seen_%{tx.0}=1'"
SecRule TX:score "@ge 5" "id:3,phase:1,deny,status:406"
"#;
    // (Rule 1 is initialisation: answered at load, its values preset; it is not logged.)
    let (fired, interruption) = run(rules, "/?id=1+UNION+SELECT+x", &[]);
    assert_eq!(fired, vec![2, 3]);
    assert_eq!(
        interruption,
        Some((3, 406)),
        "block followed the default (pass); deny stopped"
    );
    let (fired, interruption) = run(rules, "/?id=42", &[]);
    assert_eq!((fired, interruption), (vec![], None));
}

#[test]
fn setvar_captures_and_counts() {
    let rules = r#"
SecRule REQUEST_HEADERS_NAMES "@rx ^x-(.*)$" "id:1,phase:1,pass,capture,t:lowercase,setvar:'tx.hdr_%{tx.1}=1'"
SecRule &TX:/^hdr_/ "@eq 2" "id:2,phase:1,pass"
"#;
    let (fired, _) = run(
        rules,
        "/",
        &[("X-One", "a"), ("X-Two", "b"), ("Other", "c")],
    );
    assert_eq!(fired, vec![1, 2], "one setvar per matching header, counted");
}

#[test]
fn removals_at_load_and_at_run_time() {
    let rules = r#"
SecRule ARGS "@contains x" "id:10,phase:1,pass,tag:'attack-x'"
SecRule ARGS "@contains x" "id:11,phase:1,pass,tag:'attack-y'"
SecRule ARGS "@contains x" "id:12,phase:1,pass"
SecRule ARGS "@contains x" "id:13,phase:1,pass,ctl:ruleRemoveById=14"
SecRule ARGS "@contains x" "id:14,phase:1,pass"
SecRuleRemoveById 12
SecRuleRemoveByTag attack-y
"#;
    assert_eq!(run(rules, "/?a=x", &[]).0, vec![10, 13]);
}

#[test]
fn exclusions_drop_values_from_a_target() {
    let rules = r#"
SecRule ARGS|!ARGS:safe "@contains x" "id:1,phase:1,pass"
SecRule ARGS "@contains x" "id:2,phase:1,pass,ctl:ruleRemoveTargetById=3;ARGS:safe"
SecRule ARGS "@contains x" "id:3,phase:1,pass"
"#;
    assert_eq!(run(rules, "/?safe=x", &[]).0, vec![2]);
    assert_eq!(run(rules, "/?other=x", &[]).0, vec![1, 2, 3]);
}

#[test]
fn removals_by_tag_at_run_time_follow_the_tag_exactly() {
    let rules = r#"
SecRule ARGS "@contains x" "id:1,phase:1,pass,ctl:ruleRemoveByTag=attack-y,ctl:ruleRemoveTargetByTag=attack-z;ARGS:safe"
SecRule ARGS "@contains x" "id:2,phase:1,pass,tag:'attack-y'"
SecRule ARGS "@contains x" "id:3,phase:1,pass,tag:'attack-Y'"
SecRule ARGS "@contains x" "id:4,phase:1,pass,tag:'other',tag:'attack-z'"
SecRule ARGS "@contains x" "id:5,phase:1,pass,tag:'attack-zz'"
"#;
    assert_eq!(run(rules, "/?safe=x", &[]).0, vec![1, 3, 5]);
    assert_eq!(run(rules, "/?other=x", &[]).0, vec![1, 3, 4, 5]);
}

#[test]
fn detection_only_records_but_never_interrupts() {
    let rules = r#"
SecRuleEngine DetectionOnly
SecRule ARGS "@contains x" "id:1,phase:1,deny"
SecRule ARGS "@contains x" "id:2,phase:1,pass"
"#;
    assert_eq!(run(rules, "/?a=x", &[]), (vec![1, 2], None));
}

#[test]
fn negated_operators_need_a_value_to_match() {
    let rules = r#"
SecRule REQUEST_HEADERS:X-Missing "!@rx ." "id:1,phase:1,pass"
SecRule &REQUEST_HEADERS:X-Missing "@eq 0" "id:2,phase:1,pass"
"#;
    assert_eq!(run(rules, "/", &[]).0, vec![2]);
}

#[test]
fn response_phases_see_status_headers_and_body_and_keep_the_request_scores() {
    let rules = r#"
SecRule ARGS:q "@contains hint" "id:1,phase:2,pass,setvar:tx.suspect=1"
SecRule RESPONSE_STATUS "@rx ^5" "id:2,phase:3,pass,setvar:tx.outbound=+2"
SecRule RESPONSE_HEADERS:Content-Type "@contains html" "id:3,phase:3,pass,setvar:tx.outbound=+1"
SecRule RESPONSE_BODY "@contains stack trace" "id:4,phase:4,pass,setvar:tx.outbound=+2"
SecRule TX:OUTBOUND "@ge %{tx.suspect}4" "id:5,phase:4,deny,status:403"
"#;
    let set = load_text(rules, Path::new("test.conf")).expect("rules parse");
    let run = |status: u16, body: &[u8]| {
        let mut tx = Transaction::new(&set, head("/?q=hint", &[]));
        tx.process_request_headers();
        tx.process_request_body(b"");
        tx.process_response_headers(crate::waf::ResponseHead {
            status,
            protocol: "HTTP/1.1".into(),
            headers: vec![(b"content-type".to_vec(), b"text/html".to_vec())],
        });
        tx.process_response_body(body);
        let fired: Vec<u32> = tx.fired().iter().map(|f| f.id).collect();
        (fired, tx.interruption().map(|i| i.rule_id))
    };
    // tx.suspect=1 from the request makes the threshold "14": 2+1+2 = 5 is below it...
    assert_eq!(run(500, b"a stack trace"), (vec![1, 2, 3, 4], None));
    // ...and the request's variables are what the macro expands: without the hint the
    // threshold is "4" and the same response is stopped in phase 4.
    let mut tx = Transaction::new(&set, head("/?q=fine", &[]));
    tx.process_request_headers();
    tx.process_request_body(b"");
    tx.process_response_headers(crate::waf::ResponseHead {
        status: 503,
        protocol: "HTTP/1.1".into(),
        headers: vec![(b"Content-Type".to_vec(), b"text/html".to_vec())],
    });
    assert!(tx.interruption().is_none(), "phase 3 only scores");
    tx.process_response_body(b"java stack trace");
    assert_eq!(tx.interruption().map(|i| i.rule_id), Some(5));
    assert_eq!(run(200, b"fine"), (vec![1, 3], None));
}

/// `multiMatch` links use the literal prefilter only where every stage of a value holds
/// the same literals as the value: a literal that appears only after decoding, or only
/// in another letter case, still fires the rule.
#[test]
fn multi_match_sees_every_stage_through_the_prefilter() {
    let decoded = r#"
SecRule ARGS "@rx evil" "id:1,phase:2,pass,t:none,t:urlDecodeUni,multiMatch"
"#;
    assert_eq!(run(decoded, "/?q=%2565vil", &[]).0, vec![1]);
    assert_eq!(run(decoded, "/?q=evil&x=plain", &[]).0, vec![1]);
    assert!(run(decoded, "/?q=good&x=%2541", &[]).0.is_empty());
    let cased = r#"
SecRule ARGS "@rx evil" "id:2,phase:2,pass,t:none,t:lowercase,multiMatch"
"#;
    assert_eq!(run(cased, "/?q=EVIL", &[]).0, vec![2]);
    assert!(run(cased, "/?q=GOOD", &[]).0.is_empty());
}

#[test]
fn a_rule_skipped_from_what_earlier_rules_learned_still_fires_on_its_literals() {
    // Rule 1 computes the union of ARGS's hits; rules 2 and 3 are then answered from it
    // without being read (their gates), unless their literals are there.
    let rules = r#"
SecRule ARGS "@rx select\s+\d" "id:1,phase:1,pass,t:lowercase"
SecRule ARGS|REQUEST_HEADERS "@rx union\s+all" "id:2,phase:1,pass,t:lowercase"
SecRule ARGS|XML:/* "@pm sleep benchmark" "id:3,phase:1,pass,t:lowercase"
"#;
    assert_eq!(run(rules, "/?a=SELECT+1&b=x", &[]).0, vec![1]);
    assert_eq!(run(rules, "/?a=select+1&b=UNION+ALL", &[]).0, vec![1, 2]);
    assert_eq!(run(rules, "/?a=x", &[("x-q", "union all")]).0, vec![2]);
    assert_eq!(run(rules, "/?a=x&b=Benchmark", &[]).0, vec![3]);
}

#[test]
fn a_union_known_from_one_byte_literals_is_completed_for_a_rule_that_needs_words() {
    // Rule 1's `[\n\r]` is answered by the headers' bytes alone; rule 2 reads the same
    // headers for a word and must still see it, as must a rule in the next phase.
    let rules = r#"
SecRule REQUEST_HEADERS_NAMES|REQUEST_HEADERS "@rx [\n\r]" "id:1,phase:1,pass,t:none"
SecRule REQUEST_HEADERS "@rx (?i)union\s+select" "id:2,phase:1,pass,t:none"
SecRule REQUEST_HEADERS "@rx (?i)sleep\(" "id:3,phase:2,pass,t:none"
"#;
    let headers = [("accept", "text/html"), ("x-q", "1 UNION SELECT sleep(2)")];
    assert_eq!(run(rules, "/", &headers).0, vec![2, 3]);
    assert!(run(rules, "/", &[("accept", "text/html")]).0.is_empty());
}

#[test]
fn multi_match_finds_literals_that_only_a_decoded_stage_holds() {
    // `ZXZhbCgxKQ==` is base64 for `eval(1)`: the value itself holds no literal of the
    // rule, its decoded stage does.
    let rules = r#"
SecRule ARGS "@rx eval\(" "id:1,phase:2,pass,multiMatch,t:none,t:base64Decode"
"#;
    assert_eq!(run(rules, "/?a=ZXZhbCgxKQ==", &[]).0, vec![1]);
    assert_eq!(run(rules, "/?a=eval(1)", &[]).0, vec![1]);
    assert!(run(rules, "/?a=shoes&b=c2hvZXM=", &[]).0.is_empty());
    // Stages made in turn in two buffers: the third stage (decoded, then URL-decoded)
    // is built from the second, for each value after the one before.
    let rules = r#"
SecRule ARGS "@rx ^eval\(1\)$" "id:2,phase:2,pass,multiMatch,t:none,t:base64Decode,t:urlDecodeUni"
"#;
    assert_eq!(run(rules, "/?a=c2hvZXM=&b=JTY1dmFsKDEp", &[]).0, vec![2]);
    assert_eq!(run(rules, "/?b=JTY1dmFsKDEp&a=c2hvZXM=", &[]).0, vec![2]);
    assert!(run(rules, "/?a=c2hvZXM=&b=JTY1dmFs", &[]).0.is_empty());
}

#[test]
fn a_selected_key_is_judged_by_its_own_values_whatever_the_other_keys_hold() {
    // The gate of each rule knows the literals of the selected header's values only
    // (any case of its name); another header holding them proves nothing.
    let rules = r#"
SecRule REQUEST_HEADERS:User-Agent "@rx sqlmap/\d" "id:1,phase:1,pass"
SecRule REQUEST_HEADERS:Referer|ARGS:q "@rx sqlmap/\d" "id:2,phase:2,pass,t:lowercase"
"#;
    let ua = |v| ("USER-agent", v);
    assert_eq!(run(rules, "/", &[ua("sqlmap/1.7")]).0, vec![1]);
    assert!(run(rules, "/", &[ua("curl/8"), ("x-note", "sqlmap/1.7")])
        .0
        .is_empty());
    assert!(run(rules, "/", &[("x-note", "sqlmap/1.7")]).0.is_empty());
    assert_eq!(run(rules, "/", &[("referer", "SQLMAP/2")]).0, vec![2]);
    assert_eq!(run(rules, "/?q=sqlmap/3&p=1", &[ua("curl/8")]).0, vec![2]);
    assert!(run(rules, "/?p=sqlmap/3", &[ua("curl/8")]).0.is_empty());
}

#[test]
fn a_body_without_processor_forgets_only_what_it_changed() {
    // Phase 1 learns that REQUEST_BODY_LENGTH ("0" before the body) and ARGS hold no
    // "3"; a body of 3 bytes with no processor sets the length alone, so rule 2 must
    // see it, while what is known of ARGS still answers for rules 3 and 4.
    let rules = r#"
SecRule REQUEST_BODY_LENGTH|ARGS "@rx ^3$" "id:1,phase:1,pass"
SecRule REQUEST_BODY_LENGTH|ARGS "@rx ^3$" "id:2,phase:2,pass"
SecRule ARGS "@rx ^1$" "id:3,phase:2,pass"
SecRule ARGS "@rx ^3$" "id:4,phase:2,pass"
"#;
    let set = load_text(rules, Path::new("test.conf")).expect("rules parse");
    let mut tx = Transaction::new(&set, head("/?q=1", &[]));
    tx.process_request_headers();
    tx.process_request_body(b"xyz");
    let fired: Vec<u32> = tx.fired().iter().map(|f| f.id).collect();
    assert_eq!(fired, vec![2, 3]);
}

#[test]
fn a_transaction_on_reused_buffers_sees_only_its_own_request() {
    // Each transaction takes the buffers the one before left on this thread (or fresh
    // ones when another is still alive): no value, match or memo may carry over.
    let rules = r#"
SecRule ARGS_NAMES|REQUEST_HEADERS_NAMES|REQUEST_COOKIES "@rx evil" "id:1,phase:2,pass,t:lowercase"
SecRule &ARGS "@gt 1" "id:2,phase:2,pass"
SecRule MATCHED_VARS "@rx evil" "id:3,phase:2,pass"
"#;
    let set = load_text(rules, Path::new("test.conf")).expect("rules parse");
    let fired = |tx: &Transaction<&crate::waf::RuleSet>| -> Vec<u32> {
        tx.fired().iter().map(|f| f.id).collect()
    };
    let attack = || head("/?EVIL=1&b=2", &[("x-evil", "1"), ("cookie", "c=evil")]);
    for _ in 0..3 {
        let mut a = Transaction::new(&set, attack());
        a.process_request_headers();
        a.process_request_body(b"");
        assert_eq!(fired(&a), vec![1, 2]);
        drop(a);
        let mut b = Transaction::new(&set, head("/?ok=1", &[("x-ok", "1")]));
        b.process_request_headers();
        b.process_request_body(b"");
        assert!(fired(&b).is_empty(), "{:?}", fired(&b));
        // Alive together: the second builds its own buffers.
        let mut c = Transaction::new(&set, attack());
        c.process_request_headers();
        c.process_request_body(b"");
        assert_eq!(fired(&b), Vec::<u32>::new());
        assert_eq!(fired(&c), vec![1, 2]);
    }
}

fn set_of(rules: &str) -> crate::waf::RuleSet {
    load_text(rules, Path::new("test.conf")).expect("rules parse")
}

/// Fired ids and the blocking rule of one request on `set`, run on this thread (whose
/// memo of values, kept from one request to the next, may know its values already).
fn run_on(set: &crate::waf::RuleSet, head: RequestHead) -> (Vec<u32>, Option<u32>) {
    let mut tx = Transaction::new(set, head);
    tx.process_request_headers();
    tx.process_request_body(b"");
    let fired = tx.fired().iter().map(|f| f.id).collect();
    (fired, tx.interruption().map(|i| i.rule_id))
}

#[test]
fn the_memo_kept_between_requests_answers_as_a_fresh_one() {
    // The embedded rule set (transformation chains, prefilters, libinjection) over
    // requests drawn from a few values, so that most values were seen before: each
    // request's answer on this thread (memo kept) against a new thread's (memo empty).
    let section = serde_yaml::from_str("{}").expect("an empty profile");
    let profile = crate::waf::profile::WafProfile::compile("t", &section).expect("compiles");
    let set = &*profile.rules;
    let pool = [
        "hello",
        "HELLO",
        "1'+or+'1'%3d'1",
        "%3Cscript%3Ealert(1)%3C/script%3E",
        "..%2f..%2fetc%2fpasswd",
        "a%3bcat+/etc/passwd",
        "%26lt%3bscript%26gt%3b",
        "plain+words+here",
        "",
    ];
    let agents = ["Mozilla/5.0 (X11; Linux x86_64)", "sqlmap/1.7", "curl/8.0"];
    let mut rng = fastrand::Rng::with_seed(0x51ed);
    let mut fired = 0;
    for _ in 0..200 {
        let picks: Vec<&str> = (0..4).map(|_| pool[rng.usize(0..pool.len())]).collect();
        let uri = format!("/p?a={}&b={}&{}=1", picks[0], picks[1], picks[2]);
        let agent = agents[rng.usize(0..agents.len())];
        let cookie = format!("s={}", picks[3]);
        let request = head(&uri, &[("User-Agent", agent), ("Cookie", &cookie)]);
        let kept = run_on(set, request.clone());
        let fresh = std::thread::scope(|s| s.spawn(|| run_on(set, request)).join())
            .expect("the fresh thread ran");
        assert_eq!(kept, fresh, "{uri} {agent} {cookie}");
        fired += usize::from(kept.1.is_some());
    }
    assert!(
        fired > 20,
        "the requests must include attacks ({fired} blocked)"
    );
    let known = super::buffers::kept_memo_values().expect("buffers kept");
    // (Each request holds a dozen values or more: most were known from earlier ones.)
    assert!(
        known > 0 && known < 1_000,
        "values kept and shared: {known}"
    );
}

#[test]
fn a_memo_serves_only_the_rule_set_it_was_built_for() {
    // Both sets give their one literal the same prefilter slot: a memo shared between
    // them would skip the second set's rule on hits the first set computed.
    let evil = set_of(r#"SecRule ARGS "@rx evil" "id:1,phase:1,deny,t:lowercase""#);
    let good = set_of(r#"SecRule ARGS "@rx good" "id:2,phase:1,deny,t:lowercase""#);
    for _ in 0..3 {
        assert_eq!(run_on(&evil, head("/?q=GOOD", &[])).1, None);
        assert_eq!(run_on(&good, head("/?q=GOOD", &[])).1, Some(2));
        assert_eq!(run_on(&evil, head("/?q=Evil", &[])).1, Some(1));
    }
}

#[test]
fn the_memo_kept_between_requests_stays_bounded() {
    let set = set_of(r#"SecRule ARGS "@rx evil" "id:1,phase:1,deny,t:urlDecode""#);
    let mut most = 0;
    for i in 0..3_000 {
        let uri = format!("/?a=value{i}&b=other{i}&c=%{:02x}", i % 256);
        assert_eq!(run_on(&set, head(&uri, &[])).1, None);
        most = most.max(super::buffers::kept_memo_values().expect("buffers kept"));
    }
    // Forgotten whole past the bound, at the start of a request; its entries' vector
    // grown to the bound and a request's worth, not doubled past it.
    assert!(most > 1_000, "values are kept ({most})");
    assert!(most <= super::memo::KEPT_ENTRIES + 16, "{most} values kept");
    let room = super::buffers::kept_memo_room().expect("buffers kept");
    assert!(
        room <= super::memo::KEPT_ENTRIES + super::memo::ENTRY_HEADROOM,
        "room for {room} entries"
    );
    assert_eq!(run_on(&set, head("/?a=%65vil", &[])).1, Some(1));
}

#[test]
fn a_value_found_quiet_is_read_again_by_links_whose_answer_depends_on_more() {
    // Link 2's operator reads TX: that it found nothing in `b` once (when TX said `a`)
    // must not keep it quiet when TX says `b`. Link 3 found nothing in `b`; link 4, on
    // the same value and stages, must still find what it looks for.
    let set = set_of(
        r#"
SecRule REQUEST_HEADERS:X-Mode "@rx ." "id:1,phase:1,pass,nolog,setvar:'tx.expect=%{MATCHED_VAR}'"
SecRule ARGS:q "@streq %{tx.expect}" "id:2,phase:1,pass"
SecRule ARGS:q "@rx foo" "id:3,phase:1,pass,multiMatch,t:urlDecode"
SecRule ARGS:q "@rx bar" "id:4,phase:1,pass,multiMatch,t:urlDecode"
"#,
    );
    for _ in 0..2 {
        assert_eq!(
            run_on(&set, head("/?q=b%61r", &[("X-Mode", "a")])).0,
            vec![1, 4]
        );
        assert_eq!(
            run_on(&set, head("/?q=b%61r", &[("X-Mode", "bar")])).0,
            vec![1, 2, 4]
        );
    }
}

#[test]
fn each_request_starts_from_the_initial_tx_whatever_the_last_one_left() {
    // A worker keeps a transaction's TX for the next one and resets it: a score raised,
    // a variable deleted and one added by request A must not be seen by request B.
    let set = set_of(
        r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.score=0,setvar:tx.mode=init"
SecRule ARGS:q "@rx ." "id:2,phase:1,pass,setvar:tx.score=+5,setvar:'tx.extra_%{MATCHED_VAR}=1',setvar:!tx.mode"
SecRule TX:score "@eq 0" "id:3,phase:1,pass"
SecRule &TX:mode "@eq 1" "id:4,phase:1,pass"
SecRule TX:/^extra_/ "@rx ." "id:5,phase:1,pass"
"#,
    );
    let ids = |fired: Vec<u32>| -> Vec<u32> { fired.into_iter().filter(|id| *id > 1).collect() };
    for _ in 0..3 {
        assert_eq!(ids(run_on(&set, head("/?q=x", &[])).0), vec![2, 5]);
        assert_eq!(ids(run_on(&set, head("/", &[])).0), vec![3, 4]);
    }
}

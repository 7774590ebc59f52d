//! Load-time evaluation of the rule set's bookkeeping tests whose answer is the same for
//! every request. CRS opens each rule file with tests of a TX variable set once at
//! initialisation (`SecRule TX:DETECTION_PARANOIA_LEVEL "@lt 2" "...,pass,nolog,
//! skipAfter:END-..."`): about a hundred of them per request, each a lookup, a
//! comparison and, when it matches, a recorded match. Here they are answered once: a rule
//! that cannot match leaves the plan, a test that always matches becomes a jump to its
//! marker. The initialisation before the first rule that reads the request (CRS's
//! ~25 `setvar` rules of REQUEST-901, the setup's `SecAction`s) leaves the plan too: the
//! TX values it leaves are set at once, by one step ([`Step::Preset`]).
//!
//! How a test is known to be the same for every request: the rules are walked in the
//! order they run (phase by phase, file order), tracking which TX variables hold a value
//! known at load. A rule whose only input is such a variable is evaluated here; its
//! `setvar`s then give known values. Any other rule that may write a variable (or TX's
//! capture groups) makes it unknown from there on, and a rule that may skip makes the
//! variables differing between both paths unknown at its marker. A rule that some
//! earlier `ctl:ruleRemove*` may remove has uncertain effects. Only `nolog` `pass` rules
//! with no action but `setvar` (initialisation) or `skipAfter` (a jump) are folded when
//! they match; a jump still yields to a runtime removal of its rule. Folded rules are not
//! in the transaction's list of matched rules (they are `nolog`: never logged).

use super::actions::{Ctl, Disruptive, SetVarOp};
use super::intern::{intern, Tag};
use super::macros::MacroSource;
use super::operators::atoi;
use super::ruleset::{Rule, Step};
use super::targets::Collection;
use super::tx::{lone_subject, TxMap, TxName, TxValue};
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the walk knows of TX at one point of every path that reaches it.
#[derive(Clone, Default, PartialEq)]
struct Known {
    /// Variables with a known value (any other name not unknown is known to be unset).
    values: BTreeMap<String, Vec<u8>>,
    unknown: BTreeSet<String>,
    /// Names built by macros (`tx.header_name_%{tx.0}`): unknown by their literal start.
    unknown_prefixes: Vec<String>,
}

enum Value<'a> {
    Unknown,
    Unset,
    Set(&'a [u8]),
}

impl Known {
    fn get(&self, name: &str) -> Value<'_> {
        if self.unknown.contains(name)
            || self
                .unknown_prefixes
                .iter()
                .any(|p| name.starts_with(p.as_str()))
        {
            return Value::Unknown;
        }
        match self.values.get(name) {
            Some(v) => Value::Set(v),
            None => Value::Unset,
        }
    }

    fn forget(&mut self, name: &str) {
        self.values.remove(name);
        self.unknown.insert(name.to_string());
    }

    /// After this point, a path where `other` held may also arrive.
    fn join(&mut self, other: &Known) {
        let names: BTreeSet<String> = self
            .values
            .keys()
            .chain(other.values.keys())
            .chain(other.unknown.iter())
            .cloned()
            .collect();
        for name in names {
            if other.unknown.contains(&name) || self.values.get(&name) != other.values.get(&name) {
                self.forget(&name);
            }
        }
        for p in &other.unknown_prefixes {
            if !self.unknown_prefixes.contains(p) {
                self.unknown_prefixes.push(p.clone());
            }
        }
    }
}

/// Expands macros from known TX values; any other variable (or an unknown one) marks
/// the expansion unknown.
struct KnownSource<'a> {
    known: &'a Known,
    rule: &'a Rule,
    unknown: Cell<bool>,
}

impl MacroSource for KnownSource<'_> {
    fn lookup(&self, collection: Collection, key: Option<&str>) -> Option<Cow<'_, [u8]>> {
        match (collection, key) {
            (Collection::Tx, Some(name)) => match self.known.get(name) {
                Value::Set(v) => Some(Cow::Borrowed(v)),
                Value::Unset => None,
                Value::Unknown => {
                    self.unknown.set(true);
                    None
                }
            },
            _ => {
                self.unknown.set(true);
                None
            }
        }
    }

    fn rule_field(&self, field: &str) -> Option<String> {
        match field {
            "id" => Some(self.rule.id.to_string()),
            _ => {
                self.unknown.set(true);
                None
            }
        }
    }
}

/// Runtime removals (`ctl:ruleRemoveById/ByTag`) met so far on some path.
#[derive(Default)]
struct Removals {
    ids: Vec<(u32, u32)>,
    tags: Vec<Tag>,
}

impl Removals {
    fn cover(&self, rule: &Rule) -> bool {
        self.ids
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&rule.id))
            || self.tags.iter().any(|t| rule.has_tag(*t))
    }
}

/// The answer of a rule whose only input is a known TX variable: Some(matched).
fn evaluate(rule: &Rule, known: &Known) -> Option<bool> {
    let [link] = rule.links.as_slice() else {
        return None;
    };
    if link.operator.is_none() {
        // `SecAction`: matches once, unconditionally.
        return Some(true);
    }
    let (Some(key), Some(operator)) = (&link.tx_key, &link.operator) else {
        return None;
    };
    let count = link.targets.first().is_some_and(|t| t.count);
    let value = match known.get(key) {
        Value::Unknown => return None,
        Value::Unset => None,
        Value::Set(v) => Some(v),
    };
    let Some(subject) = lone_subject(value, count) else {
        return Some(false);
    };
    let source = KnownSource {
        known,
        rule,
        unknown: Cell::new(false),
    };
    let hit = operator.matches(subject, &source, false).is_some() != link.negated;
    (!source.unknown.get()).then_some(hit)
}

/// A rule whose match nobody sees but through TX and skips: `nolog`, `pass`, no `ctl`,
/// no `capture`, no `skip:n`.
fn unseen(rule: &Rule) -> bool {
    rule.links.iter().all(|l| l.ctls.is_empty() && !l.capture)
        && !rule.log
        && rule.disruptive == Disruptive::Pass
        && rule.skip == 0
}

/// A test that only answers: no action but `skipAfter` once it matches.
fn is_pure_test(rule: &Rule) -> bool {
    unseen(rule) && rule.links.iter().all(|l| l.setvars.is_empty())
}

/// The steps of every phase with the foldable tests answered; returns the TX values the
/// folded initialisation leaves (phase 1's first step, [`Step::Preset`], sets them).
/// `rules` are the compiled rules (their `tx_key` set).
pub fn fold(rules: &[Rule], phases: &mut [Vec<Step>; 6]) -> TxMap {
    // A removed target would make a folded test read nothing: rules some
    // `ctl:ruleRemoveTarget*` may reach are left as they are. So are matching tests when
    // a later rule reads MATCHED_VAR(S) as its own input (a match would set it).
    let mut target_removals = Removals::default();
    let mut reads_matched = false;
    for rule in rules {
        for link in &rule.links {
            for ctl in &link.ctls {
                match ctl {
                    Ctl::RuleRemoveTargetById(ids, _) => {
                        target_removals.ids.extend(ids.iter().copied())
                    }
                    Ctl::RuleRemoveTargetByTag(tag, _) => target_removals.tags.push(*tag),
                    _ => {}
                }
            }
        }
        let matched = |c: Collection| {
            matches!(
                c,
                Collection::MatchedVar
                    | Collection::MatchedVarName
                    | Collection::MatchedVars
                    | Collection::MatchedVarsNames
            )
        };
        // (Its operator's argument is expanded before its own matches too.)
        reads_matched |= rule.links.first().is_some_and(|l| {
            l.targets.iter().any(|t| matched(t.collection))
                || l.operator
                    .as_ref()
                    .and_then(|o| o.argument())
                    .is_some_and(|m| m.reads(matched))
        });
    }
    let mut known = Known::default();
    let mut removals = Removals::default();
    let mut lost = false;
    let mut prefix_open = true;
    let mut preset = BTreeMap::new();
    for (phase, steps) in phases.iter_mut().enumerate().skip(1) {
        if lost {
            break;
        }
        let mut pending: Vec<(Arc<str>, Known)> = Vec::new();
        let mut out: Vec<Step> = Vec::with_capacity(steps.len() + 1);
        if phase == 1 {
            out.push(Step::Preset);
        }
        // Jumps by marker name, resolved to indices once the phase's steps are known.
        let mut jumps: Vec<(usize, Arc<str>)> = Vec::new();
        for step in steps.iter() {
            let index = match step {
                Step::Marker(name) => {
                    for (_, other) in pending.iter().filter(|(m, _)| m == name) {
                        known.join(other);
                    }
                    pending.retain(|(m, _)| m != name);
                    out.push(step.clone());
                    continue;
                }
                Step::Rule(index) | Step::Jump { rule: index, .. } => *index,
                Step::Preset => {
                    out.push(step.clone());
                    continue;
                }
            };
            let rule = &rules[index];
            let stable = !removals.cover(rule);
            let answer = if lost { None } else { evaluate(rule, &known) };
            if answer == Some(false) && !reads_matched && !target_removals.cover(rule) {
                // Never matches: none of its actions can happen.
                continue;
            }
            if let (true, Some(hit)) = (prefix_open, answer) {
                // Initialisation: a rule whose writes are all known leaves the plan; the
                // values it leaves are set at once by the phase's first step.
                if sets_only(rule) && stable && !reads_matched {
                    let mut after = known.clone();
                    if hit {
                        apply_setvars(rule, &mut after);
                    }
                    if after.unknown.is_empty() && after.unknown_prefixes.is_empty() {
                        known = after;
                        continue;
                    }
                }
            }
            let always = answer == Some(true) && is_pure_test(rule);
            if let (true, Some(marker)) = (always && !target_removals.cover(rule), &rule.skip_after)
            {
                close_prefix(&mut prefix_open, &mut preset, &known);
                // Both paths stay possible for the walk (a runtime removal keeps the rule
                // from jumping).
                pending.push((marker.clone(), known.clone()));
                if !reads_matched {
                    jumps.push((out.len(), marker.clone()));
                    out.push(Step::Jump {
                        rule: index,
                        to: usize::MAX,
                    });
                } else {
                    out.push(step.clone());
                }
                continue;
            }
            close_prefix(&mut prefix_open, &mut preset, &known);
            out.push(step.clone());
            lost |= rule.skip > 0 || matches!(rule.disruptive, Disruptive::Allow { .. });
            match (answer, stable) {
                (Some(false), true) => {}
                (Some(true), true) => apply_setvars(rule, &mut known),
                _ => forget_writes(rule, &mut known),
            }
            for ctl in rule.links.iter().flat_map(|l| &l.ctls) {
                match ctl {
                    Ctl::RuleRemoveById(ids) => removals.ids.extend(ids.iter().copied()),
                    Ctl::RuleRemoveByTag(tag) => removals.tags.push(*tag),
                    _ => {}
                }
            }
            if let Some(marker) = &rule.skip_after {
                pending.push((marker.clone(), known.clone()));
            }
        }
        close_prefix(&mut prefix_open, &mut preset, &known);
        // Skips whose marker never came end the phase.
        for (_, other) in &pending {
            known.join(other);
        }
        for (at, marker) in jumps {
            let to = out[at + 1..]
                .iter()
                .position(|s| matches!(s, Step::Marker(m) if *m == marker))
                .map_or(out.len(), |p| at + 1 + p);
            if let Step::Jump { to: slot, .. } = &mut out[at] {
                *slot = to;
            }
        }
        *steps = out;
    }
    preset
        .into_iter()
        .map(|(name, value)| (TxName::Interned(intern(&name)), TxValue::from_vec(value)))
        .collect()
}

/// Which rules (by index) some request can reach in the folded plan. A rule that a
/// [`Step::Jump`] passes over is reached only when that jump's rule is removed at
/// runtime: when no `ctl:ruleRemove*` of the rule set removes the jump's rule but not
/// the rule (CRS removes by `OWASP_CRS`, which both carry), the rule is out of reach.
/// Conservatively, a marker some `skipAfter` lands on, the end of an enclosing jump
/// (flow resumes there) and any `skip:N` (it may count a jump as a step) end the
/// reasoning. Rules above the paranoia level sit behind such jumps: nothing needs to be
/// prepared for them per request.
pub fn reachable(rules: &[Rule], phases: &[Vec<Step>; 6]) -> Vec<bool> {
    let mut out = vec![false; rules.len()];
    let counts_steps = rules.iter().any(|r| r.skip > 0);
    let landings: BTreeSet<&str> = rules
        .iter()
        .filter_map(|r| r.skip_after.as_deref())
        .collect();
    let ctls: Vec<&Ctl> = rules
        .iter()
        .flat_map(|r| &r.links)
        .flat_map(|l| &l.ctls)
        .collect();
    let removes = |ctl: &Ctl, rule: &Rule| match ctl {
        Ctl::RuleRemoveById(ids) => ids.iter().any(|(lo, hi)| (*lo..=*hi).contains(&rule.id)),
        Ctl::RuleRemoveByTag(tag) => rule.has_tag(*tag),
        _ => false,
    };
    // Some runtime removal takes `jump` away and leaves `rule`.
    let escapes = |jump: usize, rule: usize| {
        ctls.iter()
            .any(|c| removes(c, &rules[jump]) && !removes(c, &rules[rule]))
    };
    for steps in phases {
        // The jumps passing over the current step: (their end, their rule), in order.
        let mut over: Vec<(usize, usize)> = Vec::new();
        for (at, step) in steps.iter().enumerate() {
            if let Some(first_ended) = over.iter().position(|(end, _)| at >= *end) {
                over.truncate(first_ended);
            }
            let reached = |index: usize| over.iter().all(|(_, jump)| escapes(*jump, index));
            match step {
                Step::Marker(name) if landings.contains(name.as_ref()) => over.clear(),
                Step::Marker(_) | Step::Preset => {}
                Step::Rule(index) => out[*index] |= reached(*index),
                Step::Jump { rule, to } => {
                    if reached(*rule) {
                        out[*rule] = true;
                        if !counts_steps {
                            over.push((*to, *rule));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The initialisation prefix ends here: TX as it leaves it is the preset.
fn close_prefix(open: &mut bool, preset: &mut BTreeMap<String, Vec<u8>>, known: &Known) {
    if std::mem::take(open) {
        preset.clone_from(&known.values);
    }
}

/// An initialisation rule: it only writes TX (`setvar`), and answers to nothing else.
fn sets_only(rule: &Rule) -> bool {
    unseen(rule) && rule.skip_after.is_none()
}

/// A rule known to match: its `setvar`s, with values expanded from what is known.
fn apply_setvars(rule: &Rule, known: &mut Known) {
    for sv in rule.links.iter().flat_map(|l| &l.setvars) {
        let (name, result, unknown) = {
            let source = KnownSource {
                known,
                rule,
                unknown: Cell::new(false),
            };
            let name = sv.name.expand_string(&source).to_ascii_lowercase();
            // Some(None): unset; None: unknown.
            let result: Option<Option<Vec<u8>>> = match &sv.op {
                SetVarOp::Delete => Some(None),
                SetVarOp::Set(m) => Some(Some(m.expand(&source).into_owned())),
                SetVarOp::Add(m) | SetVarOp::Sub(m) => {
                    let delta = atoi(&m.expand(&source));
                    let current = match known.get(&name) {
                        Value::Unknown => None,
                        Value::Unset => Some(0),
                        Value::Set(v) => Some(atoi(v)),
                    };
                    current.map(|c| Some(sv.op.combine(c, delta).to_string().into_bytes()))
                }
            };
            (name, result, source.unknown.get())
        };
        match (result, unknown) {
            (Some(value), false) => {
                known.unknown.remove(&name);
                match value {
                    Some(v) => known.values.insert(name, v),
                    None => known.values.remove(&name),
                };
            }
            _ => forget_name(sv, known),
        }
    }
}

/// A rule that may or may not match (or run): whatever it may write becomes unknown.
fn forget_writes(rule: &Rule, known: &mut Known) {
    for link in &rule.links {
        if link.capture {
            for group in 0..10 {
                known.forget(&group.to_string());
            }
        }
        for sv in &link.setvars {
            forget_name(sv, known);
        }
    }
}

fn forget_name(sv: &super::actions::SetVar, known: &mut Known) {
    if sv.name.is_literal() {
        known.forget(sv.name.raw());
        return;
    }
    // The literal start of the name (`header_name_920450_` of
    // `header_name_920450_%{tx.0}`); an empty one makes every name unknown.
    let prefix = sv
        .name
        .raw()
        .split("%{")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    known.values.retain(|k, _| !k.starts_with(&prefix));
    known.unknown_prefixes.push(prefix);
}

#[cfg(test)]
mod tests {
    use crate::waf::ruleset::Step;
    use crate::waf::{load_text, RequestHead, RuleSet, Transaction};
    use std::path::Path;

    fn load(rules: &str) -> RuleSet {
        let set = load_text(rules, Path::new("test.conf")).expect("rules parse");
        assert!(set.report.problems.is_empty(), "{:?}", set.report.problems);
        set
    }

    /// How rule `id` is left in phase 1: "rule", "jump" or "gone".
    fn step_of(set: &RuleSet, id: u32) -> &'static str {
        let is = |i: &usize| set.rules[*i].id == id;
        for step in &set.phases[1] {
            match step {
                Step::Rule(i) if is(i) => return "rule",
                Step::Jump { rule, .. } if is(rule) => return "jump",
                _ => {}
            }
        }
        "gone"
    }

    /// The fired rule ids for a GET of `uri` from `addr`.
    fn fired(set: &RuleSet, uri: &str, addr: &str) -> Vec<u32> {
        let head = RequestHead {
            method: "GET".into(),
            uri: uri.as_bytes().to_vec(),
            protocol: "HTTP/1.1".into(),
            remote_addr: addr.into(),
            ..Default::default()
        };
        let mut tx = Transaction::new(set, head);
        tx.process_request_headers();
        tx.process_request_body(b"");
        tx.fired().iter().map(|f| f.id).collect()
    }

    #[test]
    fn paranoia_checks_on_a_value_set_at_initialisation_are_answered_at_load() {
        let set = load(
            r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.pl=1"
SecRule TX:PL "@lt 1" "id:11,phase:1,pass,nolog,skipAfter:END-A"
SecRule TX:PL "@lt 2" "id:12,phase:1,pass,nolog,skipAfter:END-A"
SecRule ARGS "@contains x" "id:20,phase:1,pass"
SecMarker END-A
SecRule ARGS "@contains x" "id:30,phase:1,pass"
"#,
        );
        assert_eq!(step_of(&set, 1), "gone");
        assert_eq!(step_of(&set, 11), "gone");
        assert_eq!(step_of(&set, 12), "jump");
        assert_eq!(step_of(&set, 20), "rule");
        assert_eq!(fired(&set, "/?a=x", "192.0.2.1"), vec![30]);
    }

    #[test]
    fn a_value_a_request_may_change_keeps_the_test() {
        let set = load(
            r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.pl=1"
SecRule REMOTE_ADDR "@ipMatch 192.0.2.1" "id:2,phase:1,pass,nolog,setvar:tx.pl=2"
SecRule TX:PL "@lt 2" "id:12,phase:1,pass,nolog,skipAfter:END-A"
SecRule ARGS "@contains x" "id:20,phase:1,pass"
SecMarker END-A
"#,
        );
        assert_eq!(step_of(&set, 12), "rule");
        assert_eq!(fired(&set, "/?a=x", "192.0.2.1"), vec![2, 20]);
        assert_eq!(fired(&set, "/?a=x", "198.51.100.9"), vec![12]);
    }

    #[test]
    fn a_skip_that_may_happen_leaves_the_value_unknown_at_its_marker() {
        let set = load(
            r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.pl=1"
SecRule ARGS:hi "@streq 1" "id:2,phase:1,pass,nolog,skipAfter:INIT"
SecAction "id:3,phase:1,pass,nolog,setvar:tx.pl=2"
SecMarker INIT
SecRule TX:PL "@lt 2" "id:12,phase:1,pass,nolog,skipAfter:END-A"
SecRule ARGS "@contains x" "id:20,phase:1,pass"
SecMarker END-A
"#,
        );
        assert_eq!(step_of(&set, 12), "rule");
        assert_eq!(fired(&set, "/?a=x", "192.0.2.1"), vec![3, 20]);
        assert_eq!(fired(&set, "/?hi=1&a=x", "192.0.2.1"), vec![2, 12]);
    }

    #[test]
    fn a_jump_yields_to_a_removal_at_runtime() {
        let set = load(
            r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.pl=1"
SecRule ARGS:off "@streq 1" "id:2,phase:1,pass,nolog,ctl:ruleRemoveById=12"
SecRule TX:PL "@lt 2" "id:12,phase:1,pass,nolog,skipAfter:END-A"
SecRule ARGS "@contains x" "id:20,phase:1,pass"
SecMarker END-A
"#,
        );
        assert_eq!(step_of(&set, 12), "jump");
        assert_eq!(fired(&set, "/?a=x", "192.0.2.1"), Vec::<u32>::new());
        assert_eq!(fired(&set, "/?off=1&a=x", "192.0.2.1"), vec![2, 20]);
    }

    #[test]
    fn a_test_whose_target_a_ctl_may_remove_is_kept() {
        let set = load(
            r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.pl=1"
SecRule ARGS:off "@streq 1" "id:2,phase:1,pass,nolog,ctl:ruleRemoveTargetById=12;TX:pl"
SecRule TX:PL "@lt 2" "id:12,phase:1,pass,nolog,skipAfter:END-A"
SecRule ARGS "@contains x" "id:20,phase:1,pass"
SecMarker END-A
"#,
        );
        assert_eq!(step_of(&set, 12), "rule");
        assert_eq!(fired(&set, "/?off=1&a=x", "192.0.2.1"), vec![2, 20]);
    }

    #[test]
    fn initialisation_leaves_the_plan_and_its_values_are_preset() {
        let set = load(
            r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.critical=5,setvar:tx.pl=1"
SecRule &TX:critical "@eq 0" "id:6,phase:1,deny,status:500,log,msg:'not configured'"
SecRule &TX:pl "@eq 0" "id:2,phase:1,pass,nolog,setvar:tx.pl=4"
SecRule TX:pl "@eq 1" "id:3,phase:1,pass,nolog,setvar:'tx.score_pl%{tx.pl}=%{tx.critical}'"
SecRule ARGS "@contains x" "id:4,phase:1,pass,nolog,setvar:tx.seen=1"
SecAction "id:5,phase:1,pass,nolog,setvar:tx.late=1"
"#,
        );
        // 1-3 and 6 (which cannot match) answered at load; 4 reads the request, so 5
        // (after it) stays a rule.
        assert_eq!(
            [1, 6, 2, 3, 4, 5].map(|id| step_of(&set, id)),
            ["gone", "gone", "gone", "gone", "rule", "rule"]
        );
        let names: Vec<&str> = set.initial_tx.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["critical", "pl", "score_pl1"]);
        let head = RequestHead {
            method: "GET".into(),
            uri: b"/?a=x".to_vec(),
            protocol: "HTTP/1.1".into(),
            ..Default::default()
        };
        let mut tx = Transaction::new(&set, head);
        tx.process_request_headers();
        assert_eq!(tx.tx_var("score_pl1"), Some(&b"5"[..]));
        assert_eq!(tx.tx_var("seen"), Some(&b"1"[..]));
        assert_eq!(tx.tx_var("late"), Some(&b"1"[..]));
    }

    #[test]
    fn a_rule_reading_matched_var_before_its_own_match_keeps_matches_where_they_were() {
        let set = load(
            r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.pl=1"
SecRule TX:PL "@lt 2" "id:12,phase:1,pass,nolog,skipAfter:END-A"
SecMarker END-A
SecRule ARGS:a "@streq %{MATCHED_VAR}" "id:30,phase:1,pass"
"#,
        );
        // Rule 12's match leaves MATCHED_VAR = "1" for rule 30's argument.
        assert_eq!([1, 12].map(|id| step_of(&set, id)), ["rule", "rule"]);
        assert_eq!(fired(&set, "/?a=1", "192.0.2.1"), vec![1, 12, 30]);
    }

    /// Whether rule `id`'s first link got a prefilter slot (only reachable rules do).
    fn prefiltered(set: &RuleSet, id: u32) -> bool {
        set.rule_by_id(id)
            .is_some_and(|r| r.links[0].prefilter_slot.is_some())
    }

    #[test]
    fn rules_a_jump_always_passes_over_get_no_prefilter() {
        let set = load(
            r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.pl=1"
SecRule TX:PL "@lt 2" "id:12,phase:1,pass,nolog,skipAfter:END-A"
SecRule ARGS "@rx attack" "id:20,phase:1,pass"
SecRule ARGS "@pm evil wicked" "id:21,phase:1,pass"
SecMarker END-A
SecRule ARGS "@rx attack" "id:30,phase:1,pass"
"#,
        );
        assert_eq!(step_of(&set, 12), "jump");
        assert_eq!(
            [20, 21, 30].map(|id| prefiltered(&set, id)),
            [false, false, true]
        );
        assert_eq!(fired(&set, "/?a=attack", "192.0.2.1"), vec![30]);
    }

    #[test]
    fn a_removal_that_may_uncover_a_rule_keeps_its_prefilter() {
        // 13's removal leaves 20 and 21 (tagged `keep`) in reach; 12's takes 20 too.
        let set = load(
            r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.pl=1"
SecRule ARGS:off "@streq 1" "id:2,phase:1,pass,nolog,ctl:ruleRemoveByTag=gate"
SecRule ARGS:all "@streq 1" "id:3,phase:1,pass,nolog,ctl:ruleRemoveByTag=crs"
SecRule TX:PL "@lt 2" "id:12,phase:1,pass,nolog,tag:crs,skipAfter:END-A"
SecRule ARGS "@rx attack" "id:20,phase:1,pass,tag:crs"
SecMarker END-A
SecRule TX:PL "@lt 2" "id:13,phase:1,pass,nolog,tag:gate,skipAfter:END-B"
SecRule ARGS "@rx attack" "id:21,phase:1,pass"
SecMarker END-B
"#,
        );
        assert_eq!([12, 13].map(|id| step_of(&set, id)), ["jump", "jump"]);
        assert_eq!([20, 21].map(|id| prefiltered(&set, id)), [false, true]);
        assert_eq!(fired(&set, "/?a=attack", "192.0.2.1"), Vec::<u32>::new());
        assert_eq!(fired(&set, "/?off=1&a=attack", "192.0.2.1"), vec![2, 21]);
        assert_eq!(fired(&set, "/?all=1&a=attack", "192.0.2.1"), vec![3]);
    }

    #[test]
    fn a_skip_landing_inside_a_jump_keeps_the_rules_after_its_marker() {
        let set = load(
            r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.pl=1"
SecRule ARGS:in "@streq 1" "id:2,phase:1,pass,nolog,skipAfter:INSIDE"
SecRule TX:PL "@lt 2" "id:12,phase:1,pass,nolog,skipAfter:END-A"
SecRule ARGS "@rx attack" "id:20,phase:1,pass"
SecMarker INSIDE
SecRule ARGS "@rx attack" "id:21,phase:1,pass"
SecMarker END-A
"#,
        );
        assert_eq!(step_of(&set, 12), "jump");
        assert_eq!([20, 21].map(|id| prefiltered(&set, id)), [false, true]);
        assert_eq!(fired(&set, "/?in=1&a=attack", "192.0.2.1"), vec![2, 21]);
    }
}

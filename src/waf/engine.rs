//! Running a [`RuleSet`] over one request: phases in order, rules in file order, chains,
//! `skipAfter` to markers, `setvar` per match, `ctl` at a full match, and the disruptive
//! action. The result is the list of rules that fired and, maybe, an [`Interruption`].
//!
//! Most of a request's rules cannot match, and the engine proves it cheaply: each value's
//! byte classes tell which transformation chains can change it (most cannot), the literal
//! prefilter's hits are kept per value form and per whole collection, and a prefiltered
//! link whose collections hold none of its literals is skipped before its targets are
//! read. The per-value memo is `engine/memo.rs`'s, the per-collection unions and the
//! rules' gates `engine/unions.rs`'.

use super::actions::{Ctl, Disruptive, EngineMode, SetVarOp};
use super::intern::Tag;
use super::operators::atoi;
use super::prefilter;
use super::ruleset::{Link, Rule, RuleSet, Step};
use super::targets::Target;
use super::transaction::{Data, RequestHead, RequestHeadRef, ResponseHead, Vars, View};
use super::transforms;
use super::tx;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::ops::Deref;

mod buffers;
mod memo;
mod unions;

use memo::Cache;
use unions::{Unions, UNION_UNKNOWN};

/// A rule whose chain matched.
#[derive(Debug, Clone)]
pub struct Fired {
    pub id: u32,
    pub phase: u8,
    pub msg: String,
    pub data: String,
    pub severity: Option<u8>,
    /// False for `nolog` rules (bookkeeping rules such as CRS's paranoia-level skips).
    pub logged: bool,
}

/// The request must not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    pub rule_id: u32,
    pub status: u16,
    pub action: Disruptive,
}

/// Whom a `ctl:ruleRemoveTarget*` applies to.
#[derive(Debug, Clone)]
enum Scope {
    Ids(Vec<(u32, u32)>),
    Tag(Tag),
}

/// One request (and maybe its response) going through a rule set. `R` is how the rule
/// set is held: borrowed (`&RuleSet`) for one-shot checks, or `Arc<RuleSet>` when the
/// transaction outlives the request hook (the response phases run later).
pub struct Transaction<R: Deref<Target = RuleSet> + Clone> {
    rules: R,
    data: Data,
    vars: Vars,
    cache: Cache,
    /// What is known of whole collections (unions of hits, byte classes); forgotten when
    /// the body or the response adds values.
    unions: Unions,
    mode: EngineMode,
    removed_ids: Vec<(u32, u32)>,
    removed_tags: Vec<Tag>,
    removed_targets: Vec<(Scope, Target)>,
    allowed: bool,
    fired: Vec<Fired>,
    interruption: Option<Interruption>,
    /// Name and value buffers of earlier matches, reused so that a match (CRS's
    /// bookkeeping rules match dozens of times per request) costs no allocation.
    spare: Vec<(String, Vec<u8>)>,
    /// The current link's matches (kept between links for its capacity).
    matches: Vec<Match>,
    /// Buffers for `multiMatch` stages (kept for their capacity).
    stages: [Vec<u8>; 2],
    /// An earlier transaction's TX, for its nodes and buffers: reset to the initial
    /// values at phase 1's first step.
    kept_tx: super::tx::TxMap,
}

struct Match {
    name: String,
    value: Vec<u8>,
    captures: super::operators::Captures,
}

impl<R: Deref<Target = RuleSet> + Clone> Transaction<R> {
    pub fn new(rules: R, head: RequestHead) -> Transaction<R> {
        Transaction::of_head(rules, &head.borrowed())
    }

    /// As [`Transaction::new`], with the head borrowed from where it is.
    pub fn of_head(rules: R, head: &RequestHeadRef) -> Transaction<R> {
        let mut b = buffers::take(rules.memo_id);
        b.data
            .fill_from_head(head, rules.settings.argument_separator);
        let body_processor = b.data.header("content-type").and_then(processor_for);
        let mode = rules.settings.mode;
        let unions = rules.chain_unions as usize + rules.sources.len();
        b.unions.resize(unions, UNION_UNKNOWN);
        b.walked.resize(unions, 0);
        b.classes.resize(rules.sources.len(), 0);
        Transaction {
            rules,
            data: b.data,
            vars: Vars {
                body_processor,
                matched_vars: b.matched_vars,
                ..Default::default()
            },
            cache: b.cache,
            unions: Unions {
                walked: b.walked,
                by_id: b.unions,
                hits: b.union_hits,
                classes: b.classes,
            },
            mode,
            removed_ids: Vec::new(),
            removed_tags: Vec::new(),
            removed_targets: Vec::new(),
            allowed: false,
            fired: b.fired,
            interruption: None,
            spare: b.spare,
            matches: b.matches,
            stages: b.stages,
            kept_tx: b.tx,
        }
    }

    /// Phase 1: the request head.
    pub fn process_request_headers(&mut self) -> Option<&Interruption> {
        self.run_phase(1);
        self.interruption.as_ref()
    }

    /// Phase 2: the body (empty when there is none) goes through its processor, then
    /// the phase-2 rules run.
    pub fn process_request_body(&mut self, body: &[u8]) -> Option<&Interruption> {
        if self.interruption.is_none() && self.rules.settings.request_body_access {
            let processor = self.vars.body_processor.clone();
            let mark = self.data.mark();
            self.data.add_body(
                body,
                processor.as_deref(),
                self.vars.force_body_variable,
                self.rules.settings.argument_separator,
            );
            // A request without a body only sets REQUEST_BODY_LENGTH: what is known of
            // the headers, arguments and cookies stays true.
            match self.data.scalars_since(mark) {
                Some(changed) => self.scalars_changed(&changed),
                None => self.data_changed(),
            }
        }
        self.run_phase(2);
        self.interruption.as_ref()
    }

    /// Phase 3: the response status line and headers.
    pub fn process_response_headers(&mut self, head: ResponseHead) -> Option<&Interruption> {
        if self.interruption.is_none() {
            self.data.add_response_head(head);
            self.data_changed();
        }
        self.run_phase(3);
        self.interruption.as_ref()
    }

    /// Phase 4: the response body, or the part of it that was inspected (empty when the
    /// body is not inspected: RESPONSE_BODY is then empty, as with
    /// `SecResponseBodyAccess Off`, and only the other rules of the phase can act).
    pub fn process_response_body(&mut self, body: &[u8]) -> Option<&Interruption> {
        if self.interruption.is_none() {
            self.data.set_response_body(body);
            self.data_changed();
        }
        self.run_phase(4);
        self.interruption.as_ref()
    }

    /// Phase 5 (logging): rules that only report, such as CRS's anomaly-score
    /// correlation (980170). Runs even after an interruption, as in ModSecurity.
    pub fn process_logging(&mut self) {
        let interruption = self.interruption.take();
        self.run_phase(5);
        self.interruption = interruption.or(self.interruption.take());
    }

    pub fn fired(&self) -> &[Fired] {
        &self.fired
    }

    pub fn interruption(&self) -> Option<&Interruption> {
        self.interruption.as_ref()
    }

    /// A TX variable's value (for tests and logs: the anomaly scores).
    pub fn tx_var(&self, name: &str) -> Option<&[u8]> {
        self.vars
            .tx
            .get(name.to_ascii_lowercase().as_str())
            .map(|v| v.as_slice())
    }

    /// Collections grew (body, response): what was known of them whole is forgotten.
    fn data_changed(&mut self) {
        self.unions.by_id.fill(UNION_UNKNOWN);
        self.unions.hits.clear();
        self.unions.classes.fill(0);
    }

    /// Only these scalar collections changed: what was known of them is forgotten.
    fn scalars_changed(&mut self, changed: &[super::targets::Collection]) {
        let rules = &*self.rules;
        let forget = |own: u32| changed.contains(&rules.sources[own as usize].0);
        for (index, own) in rules.chain_union_sources.iter().enumerate() {
            if forget(*own) {
                self.unions.by_id[index] = UNION_UNKNOWN;
            }
        }
        let chain_unions = rules.chain_unions as usize;
        for own in 0..rules.sources.len() {
            if forget(own as u32) {
                self.unions.by_id[chain_unions + own] = UNION_UNKNOWN;
                self.unions.classes[own] = 0;
            }
        }
    }

    fn run_phase(&mut self, phase: u8) {
        if self.mode == EngineMode::Off || self.interruption.is_some() || self.allowed {
            return;
        }
        let rules = self.rules.clone();
        let mut skip_to: Option<&str> = None;
        let mut skip_n = 0;
        let steps = &rules.phases[usize::from(phase)];
        let has_xml = self.data.xml_text.is_some() || !self.data.xml_attributes.is_empty();
        let mut at = 0;
        while let Some(step) = steps.get(at) {
            at += 1;
            let index = match step {
                Step::Marker(name) => {
                    if skip_to == Some(name.as_ref()) {
                        skip_to = None;
                    }
                    continue;
                }
                Step::Rule(index) => *index,
                Step::Preset => {
                    if self.vars.tx.is_empty() {
                        let mut tx = std::mem::take(&mut self.kept_tx);
                        tx::reset_to(&mut tx, &rules.initial_tx);
                        self.vars.tx = tx;
                    } else {
                        for (name, value) in &rules.initial_tx {
                            self.vars.tx.insert(name.clone(), value.clone());
                        }
                    }
                    continue;
                }
                Step::Jump { rule, to } => {
                    if skip_to.is_none() && skip_n == 0 && !self.is_removed(&rules.rules[*rule]) {
                        at = *to;
                    } else if skip_to.is_none() && skip_n > 0 {
                        skip_n -= 1;
                    }
                    continue;
                }
            };
            if skip_to.is_some() {
                continue;
            }
            if skip_n > 0 {
                skip_n -= 1;
                continue;
            }
            if let Some(gate) = &rules.gates[index] {
                if self.unions.gate_closed(&rules, gate, has_xml) {
                    continue;
                }
            }
            let rule = &rules.rules[index];
            if self.is_removed(rule) || !self.eval_rule(rule) {
                continue;
            }
            if let Some(marker) = &rule.skip_after {
                skip_to = Some(marker);
            }
            skip_n = rule.skip;
            let default = &rules.defaults[usize::from(phase)];
            let (action, status) = match rule.disruptive {
                Disruptive::Block => (default.disruptive, rule.status.or(default.status)),
                other => (other, rule.status),
            };
            match action {
                Disruptive::Pass | Disruptive::Block => {}
                Disruptive::Allow { phase_only } => {
                    if !phase_only {
                        self.allowed = true;
                    }
                    return;
                }
                Disruptive::Deny | Disruptive::Drop | Disruptive::Redirect => {
                    if self.mode == EngineMode::On {
                        self.interruption = Some(Interruption {
                            rule_id: rule.id,
                            status: status.unwrap_or(403),
                            action,
                        });
                        return;
                    }
                }
            }
            if self.mode == EngineMode::Off {
                return;
            }
        }
    }

    fn is_removed(&self, rule: &Rule) -> bool {
        self.removed_ids
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&rule.id))
            || self.removed_tags.iter().any(|t| rule.has_tag(*t))
    }

    /// Evaluates a rule and its chain; true when every link matched. MATCHED_VAR is the
    /// last of MATCHED_VARS while the rule runs, and keeps that value after it.
    fn eval_rule(&mut self, rule: &Rule) -> bool {
        self.spare.append(&mut self.vars.matched_vars);
        let fired = self.eval_links(rule);
        if let Some(last) = self.vars.matched_vars.pop() {
            if let Some(old) = self.vars.matched_var.replace(last) {
                self.spare.push(old);
            }
        }
        fired
    }

    fn eval_links(&mut self, rule: &Rule) -> bool {
        let mut matches = std::mem::take(&mut self.matches);
        for link in &rule.links {
            matches.clear();
            self.eval_link(rule, link, &mut matches);
            if matches.is_empty() {
                self.matches = matches;
                return false;
            }
            for m in matches.drain(..) {
                if link.capture && !m.captures.is_empty() {
                    const GROUPS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
                    for (group, c) in GROUPS.iter().zip(&m.captures) {
                        tx::set(&mut self.vars.tx, group, Some(group), c);
                    }
                }
                self.vars.matched_vars.push((m.name, m.value));
                for sv in &link.setvars {
                    self.setvar(rule, sv);
                }
            }
        }
        self.matches = matches;
        for link in &rule.links {
            for ctl in &link.ctls {
                self.ctl(ctl);
            }
        }
        let view = View {
            data: &self.data,
            vars: &self.vars,
            rule: Some(rule),
        };
        // Messages are for the log: a `nolog` rule's are never expanded.
        let expand = |m: &Option<super::macros::Macro>| match m {
            Some(m) if rule.log => m.expand_string(&view),
            _ => String::new(),
        };
        let msg = expand(&rule.msg);
        let data = expand(&rule.logdata);
        self.fired.push(Fired {
            id: rule.id,
            phase: rule.phase,
            msg,
            data,
            severity: rule.severity,
            logged: rule.log,
        });
        true
    }

    fn eval_link(&mut self, rule: &Rule, link: &Link, matches: &mut Vec<Match>) {
        let view = View {
            data: &self.data,
            vars: &self.vars,
            rule: Some(rule),
        };
        let Some(operator) = &link.operator else {
            // (A pooled pair, emptied: every match's pair goes back to `spare` after the
            // rule, and a new one here would grow it by one per `SecAction` run.)
            matches.push(pooled(&mut self.spare, |_| {}, b"", None));
            return;
        };
        if let (Some(key), true) = (&link.tx_key, self.removed_targets.is_empty()) {
            // CRS's bookkeeping tests: one TX variable, no transformation.
            let value = self.vars.tx.get(&**key).map(|v| v.as_slice());
            let count = link.targets.first().is_some_and(|t| t.count);
            let capture = link.capture && (count || !link.negated);
            let Some(subject) = tx::lone_subject(value, count) else {
                return;
            };
            let hit = operator.matches(subject, &view, capture);
            if hit.is_some() != link.negated {
                let name = |n: &mut String| {
                    n.push_str("TX");
                    if !count {
                        n.push(':');
                        n.push_str(key);
                    }
                };
                matches.push(pooled(&mut self.spare, name, subject, hit));
            }
            return;
        }
        // Per target (bit t, for the first 64), whether a value it yields may hold the
        // literals: known from the collections' unions before any target is read.
        let mut may_hold = u64::MAX;
        if let Some(slot) = link.prefilter_slot {
            let has_xml = self.data.xml_text.is_some() || !self.data.xml_attributes.is_empty();
            for (t, q) in link.quick.iter().enumerate().take(64) {
                let (cache, rules) = (&mut self.cache, &*self.rules);
                if !self
                    .unions
                    .quick_may_match(cache, rules, link, q, slot, &view, has_xml)
                {
                    may_hold &= !(1 << t);
                }
            }
            if may_hold == 0 {
                return;
            }
        }
        let mut exclusions: SmallVec<[&Target; 4]> = SmallVec::new();
        if link.has_exclusions {
            exclusions.extend(link.targets.iter().filter(|t| t.exclude));
        }
        for (scope, target) in &self.removed_targets {
            let applies = match scope {
                Scope::Ids(ranges) => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&rule.id)),
                Scope::Tag(tag) => rule.has_tag(*tag),
            };
            if applies {
                exclusions.push(target);
            }
        }
        for (t, target) in link.targets.iter().filter(|t| !t.exclude).enumerate() {
            if t < 64 && may_hold & (1 << t) == 0 {
                continue;
            }
            if target.count {
                let mut n = 0;
                view.each(target, &exclusions, |_| n += 1);
                let mut digits = itoa::Buffer::new();
                let count = digits.format(n).as_bytes();
                let hit = operator.matches(count, &view, link.capture);
                if hit.is_some() != link.negated {
                    let name = |n: &mut String| n.push_str(target.collection.name());
                    matches.push(pooled(&mut self.spare, name, count, hit));
                }
                continue;
            }
            let capture = link.capture && !link.negated;
            let quiet_words = self.rules.quiet_bits.div_ceil(64) as usize;
            view.each(target, &exclusions, |item| {
                let item = &item;
                // A value this link found nothing in before (on an earlier request too).
                let quiet = link.quiet_bit.zip(item.cache_id);
                if let Some((bit, id)) = quiet {
                    if self.cache.is_quiet(id, &item.value, bit) {
                        return;
                    }
                }
                let before = matches.len();
                'item: {
                    if link.multi_match {
                        // The value's own hits (scanned once) answer for its first stage, and
                        // for all of them when its chain changes it at most in case; a later
                        // (decoded) stage is not scanned: a run of the literals' bytes is
                        // needed first.
                        let prefilters = &self.rules.prefilters;
                        let own = match (link.prefilter_slot, item.cache_id) {
                            // (Only with the prefilter built: without it no hits are known.)
                            (Some(slot), Some(id)) if prefilters.covers(link.transform_chain) => {
                                let walks = prefilters.walks_for(slot);
                                let at = self.cache.own_hits(id, &item.value, prefilters, walks);
                                let case_only = self.cache.classes(id, &item.value)
                                    & link.changes_beyond_case
                                    == 0;
                                Some((
                                    prefilter::has(&self.cache.hits[at as usize..], slot),
                                    case_only,
                                ))
                            }
                            _ => None,
                        };
                        if own == Some((false, true)) {
                            break 'item;
                        }
                        let spare = &mut self.spare;
                        each_stage(&item.value, link, &mut self.stages, |stage, value| {
                            if let Some(slot) = link.prefilter_slot {
                                let possible = match (stage, own) {
                                    (0, Some((holds, _))) => holds,
                                    _ => prefilters.may_hold(slot, value),
                                };
                                if !possible {
                                    return false;
                                }
                            }
                            let hit = operator.matches(value, &view, capture);
                            if hit.is_some() == link.negated {
                                return false;
                            }
                            let name = |n: &mut String| item.write_name(n);
                            matches.push(pooled(spare, name, value, hit));
                            true
                        });
                        break 'item;
                    }
                    let prefilters = &self.rules.prefilters;
                    if let Some(slot) = link.prefilter_slot {
                        let walks = prefilters.walks_for(slot);
                        let known = item
                            .cache_id
                            .map(|id| self.cache.hits(id, &item.value, link, prefilters, walks));
                        let possible = match known {
                            Some(Some(at)) => prefilter::has(&self.cache.hits[at as usize..], slot),
                            Some(None) => true,
                            None => prefilters
                                .scan(link.transform_chain, self.cache.value(item, link))
                                .is_none_or(|h| prefilter::has(&h, slot)),
                        };
                        if !possible {
                            break 'item;
                        }
                    }
                    let value = self.cache.value(item, link);
                    let hit = operator.matches(value, &view, capture);
                    if hit.is_some() != link.negated {
                        let name = |n: &mut String| item.write_name(n);
                        matches.push(pooled(&mut self.spare, name, value, hit));
                    }
                }
                if let (Some((bit, id)), true) = (quiet, matches.len() == before) {
                    self.cache.set_quiet(id, &item.value, bit, quiet_words);
                }
            });
        }
    }

    fn setvar(&mut self, rule: &Rule, sv: &super::actions::SetVar) {
        let view = View {
            data: &self.data,
            vars: &self.vars,
            rule: Some(rule),
        };
        // A name built by a macro (920450's `tx.header_name_920450_%{tx.0}`, once per
        // request header) is expanded into a buffer on the stack.
        let mut built: SmallVec<[u8; 64]> = SmallVec::new();
        let name = if sv.name.is_literal() {
            Cow::Borrowed(sv.name.raw())
        } else {
            sv.name.expand_into(&view, &mut built);
            built.make_ascii_lowercase();
            String::from_utf8_lossy(&built)
        };
        match &sv.op {
            SetVarOp::Delete => {
                self.vars.tx.remove(name.as_ref());
            }
            SetVarOp::Set(m) => {
                // Copied out (inline when short): the value may come from TX itself.
                let mut value: SmallVec<[u8; 32]> = SmallVec::new();
                m.expand_into(&view, &mut value);
                tx::set(&mut self.vars.tx, &name, sv.interned, &value);
            }
            SetVarOp::Add(m) | SetVarOp::Sub(m) => {
                let delta = atoi(&m.expand(&view));
                let current = self.vars.tx.get(name.as_ref()).map_or(0, |v| atoi(v));
                let result = sv.op.combine(current, delta);
                let mut digits = itoa::Buffer::new();
                let digits = digits.format(result).as_bytes();
                tx::set(&mut self.vars.tx, &name, sv.interned, digits);
            }
        }
    }

    fn ctl(&mut self, ctl: &Ctl) {
        match ctl {
            Ctl::RuleRemoveById(ranges) => self.removed_ids.extend(ranges.iter().copied()),
            Ctl::RuleRemoveByTag(tag) => self.removed_tags.push(*tag),
            Ctl::RuleRemoveTargetById(ranges, target) => self
                .removed_targets
                .push((Scope::Ids(ranges.clone()), target.clone())),
            Ctl::RuleRemoveTargetByTag(tag, target) => self
                .removed_targets
                .push((Scope::Tag(*tag), target.clone())),
            Ctl::RuleEngine(mode) => self.mode = *mode,
            Ctl::RequestBodyProcessor(p) => self.vars.body_processor = Some(p.clone()),
            Ctl::ForceRequestBodyVariable(on) => self.vars.force_body_variable = *on,
            Ctl::NoEffect => {}
        }
    }
}

impl<R: Deref<Target = RuleSet> + Clone> Drop for Transaction<R> {
    fn drop(&mut self) {
        use std::mem::take;
        let mut spare = take(&mut self.spare);
        spare.extend(self.vars.matched_var.take());
        let mut tx = take(&mut self.vars.tx);
        if tx.is_empty() || tx.len() > buffers::TX_LIMIT {
            tx = take(&mut self.kept_tx);
        }
        buffers::keep(buffers::Buffers {
            data: take(&mut self.data),
            cache: take(&mut self.cache),
            unions: take(&mut self.unions.by_id),
            walked: take(&mut self.unions.walked),
            union_hits: take(&mut self.unions.hits),
            classes: take(&mut self.unions.classes),
            fired: take(&mut self.fired),
            spare,
            matches: take(&mut self.matches),
            matched_vars: take(&mut self.vars.matched_vars),
            stages: take(&mut self.stages),
            tx,
        });
    }
}

/// A match whose name (`ARGS:q`, written by `write_name`) and value go into buffers
/// from `spare`.
fn pooled(
    spare: &mut Vec<(String, Vec<u8>)>,
    write_name: impl FnOnce(&mut String),
    value: &[u8],
    captures: Option<super::operators::Captures>,
) -> Match {
    let (mut name, mut bytes) = spare.pop().unwrap_or_default();
    name.clear();
    write_name(&mut name);
    bytes.clear();
    bytes.extend_from_slice(value);
    Match {
        name,
        value: bytes,
        captures: captures.unwrap_or_default(),
    }
}

/// With `multiMatch`: calls `each` with the value (stage 0), then with the value after
/// each transformation that changed it (transformations whose trigger classes the value
/// lacks are not run), until `each` says a stage matched. The stages are made in
/// `buffers`, in turn, so that a value's stages cost no allocation of their own.
fn each_stage(
    value: &[u8],
    link: &Link,
    buffers: &mut [Vec<u8>; 2],
    mut each: impl FnMut(usize, &[u8]) -> bool,
) {
    if each(0, value) {
        return;
    }
    let classes = transforms::byte_classes(value);
    transforms::run_chain(value, classes, &link.transforms, buffers, each);
}

/// The body processor ModSecurity's recommended setup picks for a Content-Type.
fn processor_for(content_type: &[u8]) -> Option<String> {
    let ct = String::from_utf8_lossy(content_type).to_ascii_lowercase();
    let mime = ct.split(';').next().unwrap_or("").trim().to_string();
    if mime == "application/x-www-form-urlencoded" {
        Some("URLENCODED".into())
    } else if mime == "multipart/form-data" {
        Some("MULTIPART".into())
    } else if mime == "application/json" || mime.ends_with("+json") {
        Some("JSON".into())
    } else if mime.ends_with("/xml") || mime.ends_with("+xml") {
        Some("XML".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests;

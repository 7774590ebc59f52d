//! Running a [`RuleSet`] over one request: phases in order, rules in file order, chains,
//! `skipAfter` to markers, `setvar` per match, `ctl` at a full match, and the disruptive
//! action. The result is the list of rules that fired and, maybe, an [`Interruption`].
//!
//! Most of a request's rules cannot match, and the engine proves it cheaply: each value's
//! byte classes tell which transformation chains can change it (most cannot), the literal
//! prefilter's hits are kept per value form and per whole collection, and a prefiltered
//! link whose collections hold none of its literals is skipped before its targets are
//! read.

use super::actions::{Ctl, Disruptive, EngineMode, SetVarOp};
use super::operators::atoi;
use super::prefilter::{self, Prefilters, Walks};
use super::ruleset::{Gate, Link, Quick, Rule, RuleSet, Source, Step, UnionIds};
use super::targets::Target;
use super::transaction::{
    Data, Item, Items, RequestHead, RequestHeadRef, ResponseHead, Vars, View,
};
use super::transforms;
use super::tx;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::ops::Deref;
use std::sync::Arc;

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
    Tag(String),
}

/// What is known of one request value under one transformation chain.
#[derive(Clone, Default)]
struct Slot {
    /// None: not computed yet; Some(None): the chain leaves the value unchanged.
    value: Option<Option<Arc<[u8]>>>,
    /// Which of the value's [`Forms`] the transformed value is; None until scanned.
    form: Option<u32>,
}

/// One distinct form of a value that was scanned.
#[derive(Clone, Copy)]
struct Form {
    /// Start and length in [`Cache::form_bytes`].
    start: u32,
    len: u32,
    /// Where its hits start in [`Cache::hits`].
    hits: u32,
    /// Which automata's hits they include (besides the one-byte literals').
    walked: Walks,
}

/// The distinct forms of one value that were scanned.
type Forms = SmallVec<[Form; 2]>;

/// Per-transaction memo of transformed values and prefilter scans, by arena id and chain
/// id: a value is transformed and scanned once per chain, however many rules read it.
/// Most chains leave most values as they are: a value's byte classes, known once, tell
/// which, and those chains cost neither a transformation nor a lookup.
struct Cache {
    by_id: Vec<SmallVec<[(u32, Slot); 4]>>,
    /// Per value: its byte classes (0: not known yet) and which of its [`Forms`] its own
    /// bytes are (`NOT_SCANNED` until scanned).
    values: Vec<(u32, u32)>,
    /// Every scan's hits, back to back.
    hits: Vec<u64>,
    forms: Vec<Forms>,
    form_bytes: Vec<u8>,
    /// Scratch list of a collection's value ids (reused).
    ids: Vec<u32>,
}

const NOT_SCANNED: u32 = u32::MAX;

impl Cache {
    fn new() -> Cache {
        Cache {
            by_id: Vec::new(),
            values: Vec::new(),
            hits: Vec::with_capacity(256),
            forms: Vec::new(),
            form_bytes: Vec::with_capacity(1024),
            ids: Vec::new(),
        }
    }

    /// The byte classes of value `id`, computed once.
    fn classes(&mut self, id: u32, value: &[u8]) -> u32 {
        let index = id as usize;
        if index >= self.values.len() {
            self.values.resize(index + 1, (0, NOT_SCANNED));
        }
        let known = &mut self.values[index].0;
        if *known == 0 {
            *known = transforms::byte_classes(value);
        }
        *known
    }

    /// Where the prefilter hits of value `id` (request data, bytes `value`) under
    /// `link`'s chain start in [`Cache::hits`]; None when the chain has no prefilter.
    /// `walks`: the automata whose hits are wanted too, besides the one-byte literals'.
    fn hits(
        &mut self,
        id: u32,
        value: &[u8],
        link: &Link,
        prefilters: &Prefilters,
        walks: Walks,
    ) -> Option<u32> {
        let chain = link.transform_chain;
        if !prefilters.covers(chain) {
            return None;
        }
        if self.classes(id, value) & link.changes_beyond_case == 0 {
            // The chain changes at most the case of letters: the value's own hits.
            return Some(self.own_hits(id, value, prefilters, walks));
        }
        let Cache {
            by_id,
            hits,
            forms,
            form_bytes,
            ..
        } = self;
        let slot = slot_in(by_id, id, chain);
        let form = match slot.form {
            Some(form) => form,
            None => {
                let transformed = slot
                    .value
                    .get_or_insert_with(|| apply_chain(value, link))
                    .clone();
                let value: &[u8] = transformed.as_deref().unwrap_or(value);
                let form = scan_form(forms, form_bytes, hits, id, value, prefilters, walks);
                slot.form = Some(form);
                form
            }
        };
        Some(self.form_hits(id, form, prefilters, walks))
    }

    /// Where the hits of value `id`'s own bytes start in [`Cache::hits`] (scanned once).
    fn own_hits(&mut self, id: u32, value: &[u8], prefilters: &Prefilters, walks: Walks) -> u32 {
        self.classes(id, value);
        let mut form = self.values[id as usize].1;
        if form == NOT_SCANNED {
            form = scan_form(
                &mut self.forms,
                &mut self.form_bytes,
                &mut self.hits,
                id,
                value,
                prefilters,
                walks,
            );
            self.values[id as usize].1 = form;
        }
        self.form_hits(id, form, prefilters, walks)
    }

    /// Where the hits of form `form` of value `id` start, the hits of the automata in
    /// `walks` that the form was not walked by added first.
    fn form_hits(&mut self, id: u32, form: u32, prefilters: &Prefilters, walks: Walks) -> u32 {
        let f = &mut self.forms[id as usize][form as usize];
        let missing = walks & !f.walked;
        if missing != 0 {
            f.walked |= missing;
            let bytes = &self.form_bytes[f.start as usize..(f.start + f.len) as usize];
            let at = f.hits as usize;
            let hits = &mut self.hits[at..at + prefilters.words()];
            prefilters.add_automaton_hits(bytes, hits, missing);
        }
        f.hits
    }

    /// `item`'s value transformed by `link`'s chain, computed once per value and chain.
    fn value<'a>(&mut self, item: &'a Item, link: &Link) -> Val<'a> {
        let Some(id) = item.cache_id else {
            return match apply_chain(&item.value, link) {
                Some(v) => Val::Shared(v),
                None => Val::Borrowed(item.value.as_ref()),
            };
        };
        if self.classes(id, &item.value) & link.changes == 0 {
            return Val::Borrowed(item.value.as_ref());
        }
        let slot = slot_in(&mut self.by_id, id, link.transform_chain);
        match slot
            .value
            .get_or_insert_with(|| apply_chain(&item.value, link))
        {
            Some(v) => Val::Shared(Arc::clone(v)),
            None => Val::Borrowed(item.value.as_ref()),
        }
    }
}

fn slot_in(by_id: &mut Vec<SmallVec<[(u32, Slot); 4]>>, id: u32, chain: u32) -> &mut Slot {
    let id = id as usize;
    if id >= by_id.len() {
        by_id.resize_with(id + 1, SmallVec::new);
    }
    let list = &mut by_id[id];
    let index = match list.iter().position(|(c, _)| *c == chain) {
        Some(i) => i,
        None => {
            list.push((chain, Slot::default()));
            list.len() - 1
        }
    };
    &mut list[index].1
}

/// Which form of value `id` `value` is, scanned when new (walked by the automata in `walks`):
/// chains that give the value the same bytes (ignoring case, as the literals do) share
/// one scan.
fn scan_form(
    forms: &mut Vec<Forms>,
    form_bytes: &mut Vec<u8>,
    hits: &mut Vec<u64>,
    id: u32,
    value: &[u8],
    prefilters: &Prefilters,
    walks: Walks,
) -> u32 {
    let index = id as usize;
    if index >= forms.len() {
        forms.resize_with(index + 1, SmallVec::new);
    }
    let seen = forms[index].iter().position(|f| {
        form_bytes[f.start as usize..(f.start + f.len) as usize].eq_ignore_ascii_case(value)
    });
    if let Some(form) = seen {
        return form as u32;
    }
    let at = prefilters.scan_bytes_into(value, hits);
    if walks != 0 {
        prefilters.add_automaton_hits(value, &mut hits[at as usize..], walks);
    }
    let start = form_bytes.len() as u32;
    form_bytes.extend_from_slice(value);
    forms[index].push(Form {
        start,
        len: value.len() as u32,
        hits: at,
        walked: walks,
    });
    (forms[index].len() - 1) as u32
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
    removed_tags: Vec<String>,
    removed_targets: Vec<(Scope, Target)>,
    allowed: bool,
    fired: Vec<Fired>,
    interruption: Option<Interruption>,
    /// Name and value buffers of earlier matches, reused so that a match (CRS's
    /// bookkeeping rules match dozens of times per request) costs no allocation.
    spare: Vec<(String, Vec<u8>)>,
    /// The current link's matches (kept between links for its capacity).
    matches: Vec<Match>,
}

struct Match {
    name: String,
    value: Vec<u8>,
    captures: Vec<Vec<u8>>,
}

impl<R: Deref<Target = RuleSet> + Clone> Transaction<R> {
    pub fn new(rules: R, head: RequestHead) -> Transaction<R> {
        Transaction::of_head(rules, &head.borrowed())
    }

    /// As [`Transaction::new`], with the head borrowed from where it is.
    pub fn of_head(rules: R, head: &RequestHeadRef) -> Transaction<R> {
        let data = Data::from_head(head, rules.settings.argument_separator);
        let body_processor = data.header("content-type").and_then(processor_for);
        let mode = rules.settings.mode;
        let unions = vec![UNION_UNKNOWN; rules.chain_unions as usize + rules.sources.len()];
        let collection_classes = vec![0; rules.sources.len()];
        Transaction {
            rules,
            data,
            vars: Vars {
                body_processor,
                ..Default::default()
            },
            cache: Cache::new(),
            unions: Unions {
                walked: vec![0; unions.len()],
                by_id: unions,
                hits: Vec::new(),
                classes: collection_classes,
            },
            mode,
            removed_ids: Vec::new(),
            removed_tags: Vec::new(),
            removed_targets: Vec::new(),
            allowed: false,
            fired: Vec::new(),
            interruption: None,
            spare: Vec::new(),
            matches: Vec::new(),
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
            self.data.add_body(
                body,
                processor.as_deref(),
                self.vars.force_body_variable,
                self.rules.settings.argument_separator,
            );
            self.data_changed();
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
                        self.vars.tx.clone_from(&rules.initial_tx);
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
            || self.removed_tags.iter().any(|t| rule.has_tag(t))
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
            matches.push(Match {
                name: String::new(),
                value: Vec::new(),
                captures: Vec::new(),
            });
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
                Scope::Tag(tag) => rule.has_tag(tag),
            };
            if applies {
                exclusions.push(target);
            }
        }
        let mut items = Items::new();
        for (t, target) in link.targets.iter().filter(|t| !t.exclude).enumerate() {
            if t < 64 && may_hold & (1 << t) == 0 {
                continue;
            }
            items.clear();
            view.collect(target, &exclusions, &mut items);
            if target.count {
                let mut digits = itoa::Buffer::new();
                let count = digits.format(items.len()).as_bytes();
                let hit = operator.matches(count, &view, link.capture);
                if hit.is_some() != link.negated {
                    let name = |n: &mut String| n.push_str(target.collection.name());
                    matches.push(pooled(&mut self.spare, name, count, hit));
                }
                continue;
            }
            let capture = link.capture && !link.negated;
            for item in &items {
                if link.multi_match {
                    // The value's own hits (scanned once) answer for its first stage, and
                    // for all of them when its chain changes it at most in case; a later
                    // (decoded) stage is not scanned: a run of the literals' bytes is
                    // needed first.
                    let prefilters = &self.rules.prefilters;
                    let own = match (link.prefilter_slot, item.cache_id) {
                        (Some(slot), Some(id)) => {
                            let walks = prefilters.walks_for(slot);
                            let at = self.cache.own_hits(id, &item.value, prefilters, walks);
                            let case_only =
                                self.cache.classes(id, &item.value) & link.changes_beyond_case == 0;
                            Some((
                                prefilter::has(&self.cache.hits[at as usize..], slot),
                                case_only,
                            ))
                        }
                        _ => None,
                    };
                    if own == Some((false, true)) {
                        continue;
                    }
                    for (stage, value) in every_stage(item, link).into_iter().enumerate() {
                        if let Some(slot) = link.prefilter_slot {
                            let possible = match (stage, own) {
                                (0, Some((holds, _))) => holds,
                                _ => prefilters.may_hold(slot, &value),
                            };
                            if !possible {
                                continue;
                            }
                        }
                        let hit = operator.matches(&value, &view, capture);
                        if hit.is_some() != link.negated {
                            let name = |n: &mut String| item.write_name(n);
                            matches.push(pooled(&mut self.spare, name, &value, hit));
                            break;
                        }
                    }
                    continue;
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
                            .scan(link.transform_chain, &self.cache.value(item, link))
                            .is_none_or(|h| prefilter::has(&h, slot)),
                    };
                    if !possible {
                        continue;
                    }
                }
                let value = self.cache.value(item, link);
                let hit = operator.matches(&value, &view, capture);
                if hit.is_some() != link.negated {
                    let name = |n: &mut String| item.write_name(n);
                    matches.push(pooled(&mut self.spare, name, &value, hit));
                }
            }
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
            Ctl::RuleRemoveByTag(tag) => self.removed_tags.push(tag.clone()),
            Ctl::RuleRemoveTargetById(ranges, target) => self
                .removed_targets
                .push((Scope::Ids(ranges.clone()), target.clone())),
            Ctl::RuleRemoveTargetByTag(tag, target) => self
                .removed_targets
                .push((Scope::Tag(tag.clone()), target.clone())),
            Ctl::RuleEngine(mode) => self.mode = *mode,
            Ctl::RequestBodyProcessor(p) => self.vars.body_processor = Some(p.clone()),
            Ctl::ForceRequestBodyVariable(on) => self.vars.force_body_variable = *on,
            Ctl::NoEffect => {}
        }
    }
}

/// A match whose name (`ARGS:q`, written by `write_name`) and value go into buffers
/// from `spare`.
fn pooled(
    spare: &mut Vec<(String, Vec<u8>)>,
    write_name: impl FnOnce(&mut String),
    value: &[u8],
    captures: Option<Vec<Vec<u8>>>,
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

/// A value the operator sees: the item's own bytes, or a (cached) transformed copy.
enum Val<'a> {
    Borrowed(&'a [u8]),
    Shared(Arc<[u8]>),
}

impl std::ops::Deref for Val<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Val::Borrowed(b) => b,
            Val::Shared(a) => a,
        }
    }
}

/// The value after `link`'s transformations; None when they leave it unchanged.
fn apply_chain(value: &[u8], link: &Link) -> Option<Arc<[u8]>> {
    let mut current: Option<Vec<u8>> = None;
    for t in &link.transforms {
        let input = current.as_deref().unwrap_or(value);
        if let Some(next) = t.apply(input) {
            current = Some(next);
        }
    }
    current.map(Arc::from)
}

/// What a transaction knows of whole collections, by [`UnionIds`].
struct Unions {
    /// The union of a collection's hits under a chain (indices `0..chain_unions`) or
    /// under its values' own bytes (`chain_unions + own`), as its start in `hits`;
    /// [`UNION_UNKNOWN`] until computed, [`UNION_NONE`] when the collection cannot be
    /// prefiltered.
    by_id: Vec<u32>,
    /// Per union: which automata's hits it holds (besides the one-byte literals', which
    /// answer the slots that need nothing more).
    walked: Vec<Walks>,
    hits: Vec<u64>,
    /// Per collection (`own`): the byte classes of all its values together (0: not
    /// known yet; [`NOT_DATA`]: some value is not request data).
    classes: Vec<u32>,
}

impl Unions {
    /// False when the target `quick` describes yields no value holding the literals of
    /// `link`'s prefilter `slot`.
    #[allow(clippy::too_many_arguments)]
    fn quick_may_match(
        &mut self,
        cache: &mut Cache,
        rules: &RuleSet,
        link: &Link,
        quick: &Quick,
        slot: u32,
        view: &View,
        has_xml: bool,
    ) -> bool {
        match quick {
            Quick::Union(ids) => self.may_match(cache, rules, link, *ids, slot, view),
            Quick::Xml => has_xml,
            Quick::Count | Quick::Selected => true,
        }
    }

    /// False when no value of the whole collection holds the literals of `link`'s
    /// prefilter `slot`.
    #[allow(clippy::too_many_arguments)]
    fn may_match(
        &mut self,
        cache: &mut Cache,
        rules: &RuleSet,
        link: &Link,
        ids: UnionIds,
        slot: u32,
        view: &View,
    ) -> bool {
        let own = ids.own as usize;
        let source = &rules.sources[own];
        if self.classes[own] == 0 {
            self.classes[own] = collection_classes(cache, view, source);
        }
        let Some(index) = union_index(
            self.classes[own],
            ids,
            link.changes_beyond_case,
            link.multi_match,
            rules,
        ) else {
            return true;
        };
        let known = self.by_id[index];
        let walks = rules.prefilters.walks_for(slot) | self.walked[index];
        if known == UNION_UNKNOWN || (walks != self.walked[index] && known != UNION_NONE) {
            self.by_id[index] = collection_hits(
                cache,
                &mut self.hits,
                view,
                &rules.prefilters,
                link,
                source,
                walks,
            )
            .unwrap_or(UNION_NONE);
            self.walked[index] = walks;
        }
        let at = self.by_id[index];
        at == UNION_NONE || prefilter::has(&self.hits[at as usize..], slot)
    }
}

impl Unions {
    /// True when what is already known of the collections proves that the first link
    /// of the rule behind `gate` cannot match (an unknown union: false, the link will
    /// compute it).
    fn gate_closed(&self, rules: &RuleSet, gate: &Gate, has_xml: bool) -> bool {
        let (start, len) = gate.quick;
        rules.gate_quicks[start as usize..(start + len) as usize]
            .iter()
            .all(|q| match q {
                Quick::Xml => !has_xml,
                Quick::Count | Quick::Selected => false,
                Quick::Union(ids) => {
                    let classes = self.classes[ids.own as usize];
                    let index = (classes != 0)
                        .then(|| {
                            union_index(
                                classes,
                                *ids,
                                gate.changes_beyond_case,
                                gate.multi_match,
                                rules,
                            )
                        })
                        .flatten();
                    index.is_some_and(|i| {
                        let at = self.by_id[i];
                        at != UNION_UNKNOWN
                            && at != UNION_NONE
                            && rules.prefilters.walks_for(gate.slot) & !self.walked[i] == 0
                            && !prefilter::has(&self.hits[at as usize..], gate.slot)
                    })
                }
            })
    }
}

/// Which union answers for a collection with byte classes `classes` read through a
/// chain: the values' own hits when the chain changes at most letter case, else the
/// chain's; None under `multiMatch` when the chain does more (its stages are not all in
/// the chain's union).
fn union_index(
    classes: u32,
    ids: UnionIds,
    changes_beyond_case: u32,
    multi_match: bool,
    rules: &RuleSet,
) -> Option<usize> {
    if classes != NOT_DATA && classes & changes_beyond_case == 0 {
        Some(rules.chain_unions as usize + ids.own as usize)
    } else if multi_match {
        None
    } else {
        Some(ids.chain as usize)
    }
}

const UNION_UNKNOWN: u32 = u32::MAX;
const UNION_NONE: u32 = u32::MAX - 1;
/// Byte classes of a collection some value of which is not request data (real classes
/// always hold [`transforms::class::ANY`]).
const NOT_DATA: u32 = 1;

/// The byte classes of every value of `source` together; [`NOT_DATA`] when some value is
/// not request data.
fn collection_classes(cache: &mut Cache, view: &View, (collection, key): &Source) -> u32 {
    let mut ids = std::mem::take(&mut cache.ids);
    ids.clear();
    let mut classes = NOT_DATA;
    if view.data.value_ids(*collection, key.as_deref(), &mut ids) {
        classes = transforms::class::ANY;
        for id in &ids {
            classes |= cache.classes(*id, view.data.get(*id));
        }
    }
    cache.ids = ids;
    classes
}

/// The union of the prefilter hits of every value of `source` under `link`'s chain,
/// appended to `arena` (with the hits of the automata in `walks`); None when some value cannot
/// be known in advance (then every rule runs).
fn collection_hits(
    cache: &mut Cache,
    arena: &mut Vec<u64>,
    view: &View,
    prefilters: &Prefilters,
    link: &Link,
    (collection, key): &Source,
    walks: Walks,
) -> Option<u32> {
    let mut ids = std::mem::take(&mut cache.ids);
    ids.clear();
    let union = if view.data.value_ids(*collection, key.as_deref(), &mut ids) {
        union_of(cache, &ids, arena, view.data, prefilters, link, walks)
    } else {
        None
    };
    cache.ids = ids;
    union
}

/// The union of the hits of values `ids` under `link`'s chain, appended to `arena`.
fn union_of(
    cache: &mut Cache,
    ids: &[u32],
    arena: &mut Vec<u64>,
    data: &Data,
    prefilters: &Prefilters,
    link: &Link,
    walks: Walks,
) -> Option<u32> {
    let start = arena.len();
    arena.resize(start + prefilters.words(), 0);
    for id in ids {
        let at = cache.hits(*id, data.get(*id), link, prefilters, walks)? as usize;
        for (u, h) in arena[start..].iter_mut().zip(&cache.hits[at..]) {
            *u |= h;
        }
    }
    Some(start as u32)
}

/// With `multiMatch`: the value before and after each transformation that changed it
/// (transformations whose trigger classes the value lacks are not run).
fn every_stage<'a>(item: &'a Item, link: &Link) -> SmallVec<[Cow<'a, [u8]>; 4]> {
    let mut out: SmallVec<[Cow<'a, [u8]>; 4]> = SmallVec::new();
    out.push(Cow::Borrowed(item.value.as_ref()));
    let mut classes = transforms::byte_classes(&item.value);
    for t in &link.transforms {
        if classes & t.trigger() == 0 {
            continue;
        }
        let last = out.last().map(|c| c.as_ref()).unwrap_or(b"");
        if let Some(next) = t.apply(last) {
            classes = transforms::byte_classes(&next);
            out.push(Cow::Owned(next));
        }
    }
    out
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

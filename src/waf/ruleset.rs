//! Compiling SecLang directives into a [`RuleSet`]: rules with their chains, markers,
//! per-phase default actions, removals and target updates, and a [`LoadReport`] naming
//! every rule or directive the engine could not take as written (it is reported, never
//! skipped silently).

use super::actions::{parse_id_ranges, Actions, Ctl, Disruptive, EngineMode, SetVar};
use super::intern::Tag;
use super::macros::Macro;
use super::operators::Operator;
use super::prefilter::{required_literals, Prefilters};
use super::seclang::Directive;
use super::targets::{parse_targets, Collection, Selector, Target};
use super::transaction::Data;
use super::transforms::Transform;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// One link of a rule: what to read, how to transform it, what to look for, and the
/// per-match actions.
#[derive(Debug)]
pub struct Link {
    pub targets: Vec<Target>,
    /// None for `SecAction` (matches once, unconditionally).
    pub operator: Option<Operator>,
    pub negated: bool,
    pub transforms: Vec<Transform>,
    /// Index of `transforms` in [`RuleSet::chains`]: equal lists share cached results.
    pub transform_chain: u32,
    /// Byte classes ([`super::transforms::class`]) without which the chain leaves a
    /// value unchanged; and without which it changes at most the case of its letters.
    pub changes: u32,
    pub changes_beyond_case: u32,
    pub multi_match: bool,
    pub capture: bool,
    pub setvars: Vec<SetVar>,
    pub ctls: Vec<Ctl>,
    /// Slot in [`RuleSet::prefilters`] when the operator is a regex with required literals.
    pub prefilter_slot: Option<u32>,
    /// A lone `TX:name` (or `&TX:name`) target read untransformed, as in CRS's
    /// bookkeeping tests (`TX:DETECTION_PARANOIA_LEVEL "@lt 1"`): read straight from TX.
    pub tx_key: Option<Box<str>>,
    /// Whether `targets` holds exclusions (`!REQUEST_COOKIES:/__utm/`), known once the
    /// rule files are read (`SecRuleUpdateTargetById` adds them): most links have none,
    /// and their target lists are not searched for them per request.
    pub has_exclusions: bool,
    /// With a prefilter slot, per target that is not an exclusion (in order): what
    /// proves it yields no value holding the literals, kept inline so that a link is
    /// skipped before its target list is read (CRS's ~120 prefiltered rules mostly stay
    /// quiet). Empty without a slot.
    pub quick: SmallVec<[Quick; 8]>,
    /// The link's bit in a value's memo of links that found nothing in it, when what it
    /// finds depends on the value's bytes alone (no macro, no TX): a value seen before
    /// skips the transformations, stages and operator of such a link.
    pub quiet_bit: Option<u32>,
}

/// What proves, without reading the rule, that its first link cannot match: the link's
/// prefilter slot and per-target summaries, copied into [`RuleSet::gates`] so that
/// skipping one of CRS's ~120 quiet prefiltered rules reads a few bytes kept together,
/// not the rule and its link.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    pub slot: u32,
    pub changes_beyond_case: u32,
    pub multi_match: bool,
    /// The link's [`Link::quick`], as a range of [`RuleSet::gate_quicks`].
    pub quick: (u32, u32),
}

/// One target's part of [`Link::quick`].
#[derive(Debug, Clone, Copy)]
pub enum Quick {
    /// Its values are in a [`Source`] (the collection whatever the selector, or the
    /// values of one key, as `REQUEST_HEADERS:User-Agent`): the union of the source's
    /// hits under the link's chain (or own bytes) covers them.
    Union(UnionIds),
    /// `XML:...`: yields nothing unless the body was parsed as XML.
    Xml,
    /// One key of a collection that is not request data (`TX:x`): never skipped.
    Selected,
    /// A count (`&ARGS`): a number made here, not a value; never skipped.
    Count,
}

/// Where a union's values come from: a whole collection, or the values of one key (lower
/// case) of a keyed collection (headers, arguments, cookies...).
pub type Source = (Collection, Option<Box<str>>);

/// Dense indices, fixed when the rule set is built, of what a transaction learns about
/// [`Source`]s: the union of hits of (source, chain), that of the source's own bytes,
/// and the source's byte classes (one per source, so `own` indexes both, and
/// [`RuleSet::sources`]).
#[derive(Debug, Clone, Copy)]
pub struct UnionIds {
    pub chain: u32,
    pub own: u32,
}

#[derive(Debug)]
pub struct Rule {
    pub id: u32,
    pub phase: u8,
    pub links: Vec<Link>,
    pub disruptive: Disruptive,
    pub status: Option<u16>,
    pub msg: Option<Macro>,
    pub logdata: Option<Macro>,
    pub tags: Vec<Tag>,
    pub severity: Option<u8>,
    pub log: bool,
    pub skip_after: Option<Arc<str>>,
    pub skip: u32,
    pub file: Arc<str>,
    pub line: usize,
}

impl Rule {
    pub fn has_tag(&self, tag: Tag) -> bool {
        self.tags.contains(&tag)
    }
}

#[derive(Debug, Clone)]
pub enum Step {
    Rule(usize),
    Marker(Arc<str>),
    /// A test answered at load ([`super::folding`]) that always matches: unless the rule
    /// was removed at runtime, go on at step `to` (its marker, or the phase's end).
    Jump {
        rule: usize,
        to: usize,
    },
    /// Phase 1's first step: TX gets the values the folded initialisation rules leave
    /// ([`RuleSet::initial_tx`]).
    Preset,
}

/// What `SecDefaultAction` set for a phase.
#[derive(Debug, Clone)]
pub struct DefaultAction {
    pub disruptive: Disruptive,
    pub status: Option<u16>,
    pub transforms: Vec<Transform>,
    pub log: bool,
}

impl Default for DefaultAction {
    fn default() -> Self {
        DefaultAction {
            disruptive: Disruptive::Pass,
            status: None,
            transforms: Vec::new(),
            log: true,
        }
    }
}

/// A problem found at load: where, which rule, what.
#[derive(Debug, Clone)]
pub struct LoadProblem {
    pub location: String,
    pub rule_id: Option<u32>,
    pub message: String,
    /// True when the rule was dropped; false when it loaded with something ignored.
    pub dropped: bool,
}

impl std::fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rule_id {
            Some(id) => write!(f, "{}: rule {id}: {}", self.location, self.message)?,
            None => write!(f, "{}: {}", self.location, self.message)?,
        }
        if self.dropped {
            write!(f, " (rule not loaded)")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub problems: Vec<LoadProblem>,
}

/// Engine settings from the `Sec*` engine directives.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub mode: EngineMode,
    pub request_body_access: bool,
    pub argument_separator: u8,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            mode: EngineMode::On,
            request_body_access: true,
            argument_separator: b'&',
        }
    }
}

#[derive(Debug)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Steps per phase (index 1..=5): rules of that phase and every marker, in file order.
    pub phases: [Vec<Step>; 6],
    pub defaults: [DefaultAction; 6],
    pub chains: Vec<Vec<Transform>>,
    pub prefilters: Prefilters,
    /// How many (source, chain) unions [`UnionIds`] name, and the sources (by `own`).
    pub chain_unions: u32,
    pub sources: Vec<Source>,
    /// Per (source, chain) union (by [`UnionIds::chain`]), its source's `own` index: what
    /// a transaction forgets when that source's collection changes.
    pub chain_union_sources: Vec<u32>,
    pub settings: EngineSettings,
    pub report: LoadReport,
    /// TX after the initialisation rules folded at load ([`super::folding`]).
    pub initial_tx: super::tx::TxMap,
    /// Per rule (by index), its first link's [`Gate`] when it has a prefilter.
    pub gates: Vec<Option<Gate>>,
    pub gate_quicks: Vec<Quick>,
    /// Unique to this rule set in the process: what a thread's memo of values (kept
    /// from one transaction to the next) is for.
    pub memo_id: u64,
    /// How many links have a [`Link::quiet_bit`].
    pub quiet_bits: u32,
}

impl RuleSet {
    pub fn rule_by_id(&self, id: u32) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// Builds a rule set from directives (already read, `Include`s followed).
pub fn compile(directives: &[Directive]) -> RuleSet {
    let mut b = Builder::default();
    for d in directives {
        b.directive(d);
    }
    b.finish()
}

#[derive(Default)]
struct Builder {
    rules: Vec<Rule>,
    order: Vec<Step>,
    defaults: [DefaultAction; 6],
    chains: HashMap<Vec<Transform>, u32>,
    chain_list: Vec<Vec<Transform>>,
    settings: EngineSettings,
    report: LoadReport,
    /// A rule whose last link said `chain`, waiting for its next link.
    open: Option<Rule>,
    /// The chain being skipped because an earlier link failed to compile.
    skipping_chain: bool,
    removed: Vec<(u32, u32)>,
    removed_tags: Vec<Tag>,
}

impl Builder {
    fn problem(&mut self, d: &Directive, rule_id: Option<u32>, message: String, dropped: bool) {
        // One line per problem (regex errors come on several), reported once.
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        let location = d.location();
        if self
            .report
            .problems
            .iter()
            .any(|p| p.location == location && p.message == message)
        {
            return;
        }
        self.report.problems.push(LoadProblem {
            location,
            rule_id,
            message,
            dropped,
        });
    }

    fn chain_id(&mut self, transforms: &[Transform]) -> u32 {
        if let Some(id) = self.chains.get(transforms) {
            return *id;
        }
        let id = self.chain_list.len() as u32;
        self.chain_list.push(transforms.to_vec());
        self.chains.insert(transforms.to_vec(), id);
        id
    }

    fn directive(&mut self, d: &Directive) {
        let name = d.name.to_ascii_lowercase();
        let is_rule = name == "secrule" || name == "secaction";
        if !is_rule && (self.open.is_some() || self.skipping_chain) {
            if let Some(open) = self.open.take() {
                self.problem(
                    d,
                    Some(open.id),
                    "chain ends without its next rule".into(),
                    true,
                );
            }
            self.skipping_chain = false;
        }
        let result = match name.as_str() {
            "secrule" | "secaction" => {
                self.rule(d, name == "secaction");
                Ok(())
            }
            "secmarker" => match d.args.first() {
                Some(m) => {
                    self.order.push(Step::Marker(Arc::from(m.as_str())));
                    Ok(())
                }
                None => Err("SecMarker needs a name".to_string()),
            },
            "secdefaultaction" => self.default_action(d),
            "secruleremovebyid" => d
                .args
                .iter()
                .map(|a| parse_id_ranges(a))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| self.removed.extend(v.into_iter().flatten())),
            "secruleremovebytag" => {
                self.removed_tags.extend(d.args.iter().map(|t| Tag::new(t)));
                Ok(())
            }
            "secruleupdatetargetbyid" => self.update_targets(d),
            "secruleengine" => d
                .args
                .first()
                .ok_or_else(|| "SecRuleEngine needs On, Off or DetectionOnly".to_string())
                .and_then(|m| EngineMode::parse(m))
                .map(|m| self.settings.mode = m),
            "secrequestbodyaccess" => {
                self.settings.request_body_access = on(d);
                Ok(())
            }
            "secargumentseparator" => d
                .args
                .first()
                .and_then(|a| a.bytes().next())
                .map(|b| self.settings.argument_separator = b)
                .ok_or_else(|| "SecArgumentSeparator needs a character".to_string()),
            // Settings for logging, storage and limits this engine handles in its own
            // configuration (the proxy's YAML: body_limit, response rules): accepted, and
            // without effect here.
            "seccomponentsignature"
            | "secrequestbodylimit"
            | "secresponsebodyaccess"
            | "secrequestbodynofileslimit"
            | "secrequestbodylimitaction"
            | "secrequestbodyinmemorylimit"
            | "secresponsebodymimetype"
            | "secresponsebodylimit"
            | "secresponsebodylimitaction"
            | "secpcrematchlimit"
            | "secpcrematchlimitrecursion"
            | "secauditengine"
            | "secauditlog"
            | "secauditlogparts"
            | "secauditlogtype"
            | "secauditlogrelevantstatus"
            | "secauditlogstoragedir"
            | "secauditlogformat"
            | "secdebuglog"
            | "secdebugloglevel"
            | "sectmpdir"
            | "secdatadir"
            | "secuploaddir"
            | "secuploadkeepfiles"
            | "secuploadfilemode"
            | "seccookieformat"
            | "secunicodemapfile"
            | "secstatusengine"
            | "seccollectiontimeout"
            | "secserversignature"
            | "secwebappid"
            | "secargumentslimit"
            | "sechttpblkey"
            | "secruleperftime"
            | "secxmlexternalentity" => Ok(()),
            _ => Err(format!("unsupported directive {}", d.name)),
        };
        if let Err(message) = result {
            self.problem(d, None, message, false);
        }
    }

    fn default_action(&mut self, d: &Directive) -> Result<(), String> {
        let text = d.args.first().ok_or("SecDefaultAction needs actions")?;
        let a = Actions::parse(text)?;
        let phase = a.phase.ok_or("SecDefaultAction needs a phase")?;
        self.defaults[usize::from(phase)] = DefaultAction {
            disruptive: a.disruptive.unwrap_or(Disruptive::Pass),
            status: a.status,
            transforms: a.transforms,
            log: a.log.unwrap_or(true),
        };
        Ok(())
    }

    fn update_targets(&mut self, d: &Directive) -> Result<(), String> {
        let [ids, targets, ..] = d.args.as_slice() else {
            return Err("SecRuleUpdateTargetById needs an id and targets".into());
        };
        if d.args.len() > 2 {
            return Err("SecRuleUpdateTargetById with a replaced target is not supported".into());
        }
        let ranges = parse_id_ranges(ids)?;
        let targets = parse_targets(targets)?;
        let mut found = false;
        for rule in &mut self.rules {
            if ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&rule.id)) {
                if let Some(head) = rule.links.first_mut() {
                    head.targets.extend(targets.iter().cloned());
                    found = true;
                }
            }
        }
        if !found {
            return Err(format!(
                "SecRuleUpdateTargetById {ids}: no such rule loaded before"
            ));
        }
        Ok(())
    }

    fn rule(&mut self, d: &Directive, is_action: bool) {
        let continuing = self.open.is_some() || self.skipping_chain;
        let (targets, operator, actions_text) = if is_action {
            (None, None, d.args.first().map(String::as_str).unwrap_or(""))
        } else {
            match d.args.as_slice() {
                [t, o] => (Some(t.as_str()), Some(o.as_str()), ""),
                [t, o, a] => (Some(t.as_str()), Some(o.as_str()), a.as_str()),
                _ => {
                    self.problem(
                        d,
                        None,
                        "SecRule needs targets, an operator and actions".into(),
                        true,
                    );
                    self.skipping_chain = continuing;
                    self.open = None;
                    return;
                }
            }
        };
        let actions = match Actions::parse(actions_text) {
            Ok(a) => a,
            Err(e) => {
                let id = self.open.as_ref().map(|r| r.id);
                self.problem(d, id, e, true);
                self.open = None;
                self.skipping_chain = true;
                return;
            }
        };
        let rule_id = if continuing {
            self.open.as_ref().map(|r| r.id)
        } else {
            actions.id
        };
        if self.skipping_chain && self.open.is_none() {
            // The rest of a chain whose start failed: drop it with its start.
            self.skipping_chain = actions.chain;
            return;
        }
        for u in &actions.unsupported {
            self.problem(d, rule_id, u.clone(), false);
        }
        let link = match self.link(d, targets, operator, &actions, continuing) {
            Ok(link) => link,
            Err(e) => {
                self.problem(d, rule_id, e, true);
                self.open = None;
                self.skipping_chain = actions.chain;
                return;
            }
        };
        let rule = match self.open.take() {
            Some(mut open) => {
                open.links.push(link);
                open
            }
            None => {
                let Some(id) = actions.id else {
                    self.problem(d, None, "rule without an id".into(), true);
                    self.skipping_chain = actions.chain;
                    return;
                };
                let phase = actions.phase.unwrap_or(2);
                let default = &self.defaults[usize::from(phase)];
                Rule {
                    id,
                    phase,
                    links: vec![link],
                    disruptive: actions.disruptive.unwrap_or(default.disruptive),
                    status: actions.status.or(default.status),
                    msg: actions.msg.clone(),
                    logdata: actions.logdata.clone(),
                    tags: actions.tags.clone(),
                    severity: actions.severity,
                    log: actions.log.unwrap_or(default.log),
                    skip_after: actions.skip_after.as_deref().map(Arc::from),
                    skip: actions.skip,
                    file: Arc::from(d.file.display().to_string().as_str()),
                    line: d.line,
                }
            }
        };
        if actions.chain {
            self.open = Some(rule);
            return;
        }
        let index = self.rules.len();
        self.order.push(Step::Rule(index));
        self.rules.push(rule);
    }

    fn link(
        &mut self,
        d: &Directive,
        targets: Option<&str>,
        operator: Option<&str>,
        actions: &Actions,
        continuing: bool,
    ) -> Result<Link, String> {
        let targets = match targets {
            Some(t) => parse_targets(t)?,
            None => Vec::new(),
        };
        let (operator, negated) = match operator {
            Some(text) => {
                let (negated, text) = match text.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, text),
                };
                let (name, arg) = match text.strip_prefix('@') {
                    Some(rest) => match rest.split_once(|c: char| c.is_whitespace()) {
                        Some((n, a)) => (n, a.trim_start()),
                        None => (rest, ""),
                    },
                    None => ("rx", text),
                };
                let dir = d.file.parent().unwrap_or(Path::new("."));
                (Some(Operator::compile(name, arg, dir)?), negated)
            }
            None => (None, false),
        };
        let phase = if continuing {
            self.open.as_ref().map(|r| r.phase).unwrap_or(2)
        } else {
            actions.phase.unwrap_or(2)
        };
        let mut transforms = if actions.transforms_reset {
            Vec::new()
        } else {
            self.defaults[usize::from(phase)].transforms.clone()
        };
        transforms.extend(actions.transforms.iter().copied());
        let transform_chain = self.chain_id(&transforms);
        let changes = transforms.iter().fold(0, |a, t| a | t.trigger());
        let changes_beyond_case = transforms
            .iter()
            .fold(0, |a, t| a | t.trigger_beyond_case());
        Ok(Link {
            targets,
            operator,
            negated,
            transforms,
            transform_chain,
            changes,
            changes_beyond_case,
            multi_match: actions.multi_match,
            capture: actions.capture,
            setvars: actions.setvars.clone(),
            ctls: actions.ctls.clone(),
            prefilter_slot: None,
            tx_key: None,
            has_exclusions: false,
            quick: SmallVec::new(),
            quiet_bit: None,
        })
    }

    fn finish(mut self) -> RuleSet {
        if let Some(open) = self.open.take() {
            self.report.problems.push(LoadProblem {
                location: format!("{}:{}", open.file, open.line),
                rule_id: Some(open.id),
                message: "chain ends without its next rule".into(),
                dropped: true,
            });
        }
        let removed = |rule: &Rule| {
            self.removed
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(&rule.id))
                || self.removed_tags.iter().any(|t| rule.has_tag(*t))
        };
        let mut phases: [Vec<Step>; 6] = Default::default();
        for step in &self.order {
            match step {
                Step::Marker(_) => {
                    for phase in phases.iter_mut().skip(1) {
                        phase.push(step.clone());
                    }
                }
                Step::Rule(index) => {
                    let rule = &self.rules[*index];
                    if !removed(rule) {
                        phases[usize::from(rule.phase)].push(step.clone());
                    }
                }
                // Made by folding, after this.
                Step::Jump { .. } | Step::Preset => {}
            }
        }
        for link in self.rules.iter_mut().flat_map(|r| &mut r.links) {
            link.has_exclusions = link.targets.iter().any(|t| t.exclude);
            link.tx_key = match link.targets.as_slice() {
                [t] if t.collection == Collection::Tx
                    && !t.exclude
                    && link.transforms.is_empty()
                    && !link.multi_match =>
                {
                    match &t.selector {
                        Selector::Key(k) => Some(k.as_str().into()),
                        _ => None,
                    }
                }
                _ => None,
            };
        }
        let initial_tx = super::folding::fold(&self.rules, &mut phases);
        let reachable = super::folding::reachable(&self.rules, &phases);
        let mut entries = Vec::new();
        let mut groups = Vec::new();
        let mut chain_unions: HashMap<(u32, u32), u32> = HashMap::new();
        let mut sources: Vec<Source> = Vec::new();
        let mut quiet_bits = 0;
        for (rule, reachable) in self.rules.iter_mut().zip(reachable) {
            // A rule no request reaches (above the paranoia level, removed) needs no
            // prefilter: its literals would only make every scan slower.
            if !reachable {
                continue;
            }
            for link in &mut rule.links {
                if link.tx_key.is_none() && link.operator.as_ref().is_some_and(Operator::value_only)
                {
                    link.quiet_bit = Some(quiet_bits);
                    quiet_bits += 1;
                }
                // (With `multiMatch`, the engine uses the slot only where every stage
                // of a value holds the same literals as the value.)
                if link.negated {
                    continue;
                }
                // A regex's required literals, or a phrase list itself: a value without
                // any of them cannot match.
                let literals = match &link.operator {
                    Some(Operator::Rx(re)) => required_literals(re.as_str()),
                    Some(Operator::Pm(_, phrases)) => Some(phrases.clone())
                        .filter(|p| !p.is_empty() && p.iter().all(|l| !l.is_empty())),
                    _ => None,
                };
                if let Some(literals) = literals {
                    link.prefilter_slot = Some(entries.len() as u32);
                    entries.push((link.transform_chain, literals));
                    // Request rules' literals apart from the response's: the request's
                    // values never walk the response rules' error-message lists.
                    groups.push(u8::from(rule.phase > 2));
                    let chain = link.transform_chain;
                    let mut ids_of = |source: Source| {
                        let own = match sources.iter().position(|s| *s == source) {
                            Some(own) => own as u32,
                            None => {
                                sources.push(source);
                                sources.len() as u32 - 1
                            }
                        };
                        let next = chain_unions.len() as u32;
                        let chain = *chain_unions.entry((own, chain)).or_insert(next);
                        UnionIds { chain, own }
                    };
                    // One key of a keyed collection: the union of that key's values (an
                    // absent header has none); any other selector picks values of its
                    // collection: the collection's union answers for it.
                    link.quick = link
                        .targets
                        .iter()
                        .filter(|t| !t.exclude)
                        .map(|t| match t.collection {
                            _ if t.count => Quick::Count,
                            Collection::Xml => Quick::Xml,
                            c => match &t.selector {
                                Selector::Key(k) if Data::is_keyed(c) => {
                                    Quick::Union(ids_of((c, Some(k.to_ascii_lowercase().into()))))
                                }
                                Selector::Key(_) => Quick::Selected,
                                _ => Quick::Union(ids_of((c, None))),
                            },
                        })
                        .collect();
                }
            }
        }
        let prefilters = Prefilters::build_grouped(self.chain_list.len(), &entries, &groups);
        let mut gate_quicks = Vec::new();
        let gates = self
            .rules
            .iter()
            .map(|rule| {
                let link = rule.links.first()?;
                let slot = link.prefilter_slot?;
                let start = gate_quicks.len() as u32;
                gate_quicks.extend(link.quick.iter().copied());
                Some(Gate {
                    slot,
                    changes_beyond_case: link.changes_beyond_case,
                    multi_match: link.multi_match,
                    quick: (start, link.quick.len() as u32),
                })
            })
            .collect();
        let mut chain_union_sources = vec![0; chain_unions.len()];
        for ((own, _), id) in &chain_unions {
            chain_union_sources[*id as usize] = *own;
        }
        static BUILT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        RuleSet {
            memo_id: BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            quiet_bits,
            initial_tx,
            chain_union_sources,
            gates,
            gate_quicks,
            rules: self.rules,
            prefilters,
            chain_unions: chain_unions.len() as u32,
            sources,
            phases,
            defaults: self.defaults,
            chains: self.chain_list,
            settings: self.settings,
            report: self.report,
        }
    }
}

fn on(d: &Directive) -> bool {
    d.args.first().is_some_and(|a| a.eq_ignore_ascii_case("on"))
}

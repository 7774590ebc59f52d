//! Running a [`RuleSet`] over one request: phases in order, rules in file order, chains,
//! `skipAfter` to markers, `setvar` per match, `ctl` at a full match, and the disruptive
//! action. The result is the list of rules that fired and, maybe, an [`Interruption`].

use super::actions::{Ctl, Disruptive, EngineMode, SetVarOp};
use super::operators::atoi;
use super::ruleset::{Link, Rule, RuleSet, Step};
use super::targets::Target;
use super::transaction::{Data, Item, RequestHead, Vars, View};
use fnv::FnvHashMap;
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

/// Cached transformed values: (arena id, chain id) -> result (None: unchanged).
type Cache = FnvHashMap<(u32, u32), Option<Arc<[u8]>>>;

pub struct Transaction<'r> {
    rules: &'r RuleSet,
    data: Data,
    vars: Vars,
    cache: Cache,
    mode: EngineMode,
    removed_ids: Vec<(u32, u32)>,
    removed_tags: Vec<String>,
    removed_targets: Vec<(Scope, Target)>,
    allowed: bool,
    fired: Vec<Fired>,
    interruption: Option<Interruption>,
}

struct Match {
    name: String,
    value: Vec<u8>,
    captures: Vec<Vec<u8>>,
}

impl<'r> Transaction<'r> {
    pub fn new(rules: &'r RuleSet, head: RequestHead) -> Transaction<'r> {
        let data = Data::from_head(head, rules.settings.argument_separator);
        let body_processor = data.header("content-type").and_then(processor_for);
        Transaction {
            rules,
            data,
            vars: Vars {
                body_processor,
                ..Default::default()
            },
            cache: Cache::default(),
            mode: rules.settings.mode,
            removed_ids: Vec::new(),
            removed_tags: Vec::new(),
            removed_targets: Vec::new(),
            allowed: false,
            fired: Vec::new(),
            interruption: None,
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
        }
        self.run_phase(2);
        self.interruption.as_ref()
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
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
    }

    fn run_phase(&mut self, phase: u8) {
        if self.mode == EngineMode::Off || self.interruption.is_some() || self.allowed {
            return;
        }
        let rules = self.rules;
        let mut skip_to: Option<&str> = None;
        let mut skip_n = 0;
        for step in &rules.phases[usize::from(phase)] {
            let index = match step {
                Step::Marker(name) => {
                    if skip_to == Some(name.as_ref()) {
                        skip_to = None;
                    }
                    continue;
                }
                Step::Rule(index) => *index,
            };
            if skip_to.is_some() {
                continue;
            }
            if skip_n > 0 {
                skip_n -= 1;
                continue;
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

    /// Evaluates a rule and its chain; true when every link matched.
    fn eval_rule(&mut self, rule: &Rule) -> bool {
        self.vars.matched_vars.clear();
        for link in &rule.links {
            let matches = self.eval_link(rule, link);
            if matches.is_empty() {
                return false;
            }
            for m in matches {
                if link.capture && !m.captures.is_empty() {
                    for (i, c) in m.captures.iter().enumerate() {
                        self.vars.tx.insert(i.to_string(), c.clone());
                    }
                }
                self.vars.matched_var = Some((m.name.clone(), m.value.clone()));
                self.vars.matched_vars.push((m.name, m.value));
                for sv in &link.setvars {
                    self.setvar(rule, sv);
                }
            }
        }
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
        let msg = rule
            .msg
            .as_ref()
            .map(|m| m.expand_string(&view))
            .unwrap_or_default();
        let data = rule
            .logdata
            .as_ref()
            .map(|m| m.expand_string(&view))
            .unwrap_or_default();
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

    fn eval_link(&mut self, rule: &Rule, link: &Link) -> Vec<Match> {
        let view = View {
            data: &self.data,
            vars: &self.vars,
            rule: Some(rule),
        };
        let Some(operator) = &link.operator else {
            return vec![Match {
                name: String::new(),
                value: Vec::new(),
                captures: Vec::new(),
            }];
        };
        let mut exclusions: Vec<&Target> = link.targets.iter().filter(|t| t.exclude).collect();
        for (scope, target) in &self.removed_targets {
            let applies = match scope {
                Scope::Ids(ranges) => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&rule.id)),
                Scope::Tag(tag) => rule.has_tag(tag),
            };
            if applies {
                exclusions.push(target);
            }
        }
        let mut matches = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        for target in link.targets.iter().filter(|t| !t.exclude) {
            items.clear();
            view.collect(target, &exclusions, &mut items);
            if target.count {
                let count = items.len().to_string().into_bytes();
                let name = target.collection.name().to_string();
                if let Some(captures) = operator.matches(&count, &view, link.capture) {
                    if !link.negated {
                        matches.push(Match {
                            name,
                            value: count,
                            captures,
                        });
                    }
                } else if link.negated {
                    matches.push(Match {
                        name,
                        value: count,
                        captures: Vec::new(),
                    });
                }
                continue;
            }
            for item in &items {
                let candidates = transformed(&mut self.cache, item, link);
                for value in candidates.iter() {
                    let hit = operator.matches(value, &view, link.capture && !link.negated);
                    let matched = hit.is_some() != link.negated;
                    if matched {
                        matches.push(Match {
                            name: item.display_name(),
                            value: value.to_vec(),
                            captures: hit.unwrap_or_default(),
                        });
                        break;
                    }
                }
            }
        }
        matches
    }

    fn setvar(&mut self, rule: &Rule, sv: &super::actions::SetVar) {
        let view = View {
            data: &self.data,
            vars: &self.vars,
            rule: Some(rule),
        };
        let name = sv.name.expand_string(&view).to_ascii_lowercase();
        let value = match &sv.op {
            SetVarOp::Delete => {
                self.vars.tx.remove(&name);
                return;
            }
            SetVarOp::Set(m) => m.expand(&view).into_owned(),
            SetVarOp::Add(m) | SetVarOp::Sub(m) => {
                let current = self.vars.tx.get(&name).map(|v| atoi(v)).unwrap_or(0);
                let delta = atoi(&m.expand(&view));
                let result = if matches!(sv.op, SetVarOp::Add(_)) {
                    current + delta
                } else {
                    current - delta
                };
                result.to_string().into_bytes()
            }
        };
        self.vars.tx.insert(name, value);
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

/// The values the operator sees for one item: the fully transformed value, or with
/// `multiMatch` the value before and after each transformation that changed it.
fn transformed(cache: &mut Cache, item: &Item, link: &Link) -> Vec<Arc<[u8]>> {
    if link.transforms.is_empty() {
        return vec![Arc::from(item.value.as_ref())];
    }
    if link.multi_match {
        let mut out: Vec<Arc<[u8]>> = vec![Arc::from(item.value.as_ref())];
        let mut current: Vec<u8> = item.value.to_vec();
        for t in &link.transforms {
            if let Some(next) = t.apply(&current) {
                current = next;
                out.push(Arc::from(current.as_slice()));
            }
        }
        return out;
    }
    let key = item.cache_id.map(|id| (id, link.transform_chain));
    if let Some(key) = key {
        if let Some(hit) = cache.get(&key) {
            return vec![hit
                .clone()
                .unwrap_or_else(|| Arc::from(item.value.as_ref()))];
        }
    }
    let mut current: Option<Vec<u8>> = None;
    for t in &link.transforms {
        let input = current.as_deref().unwrap_or(item.value.as_ref());
        if let Some(next) = t.apply(input) {
            current = Some(next);
        }
    }
    let result: Option<Arc<[u8]>> = current.map(Arc::from);
    if let Some(key) = key {
        cache.insert(key, result.clone());
    }
    vec![result.unwrap_or_else(|| Arc::from(item.value.as_ref()))]
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

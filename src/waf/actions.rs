//! A rule's action list (`"id:1,phase:2,block,t:lowercase,setvar:'tx.x=+1'"`) read into
//! what the engine needs: metadata, transformations, flow (chain, skipAfter), variable
//! updates, runtime controls (`ctl:`) and the disruptive action.

use super::intern::{intern, Tag};
use super::macros::Macro;
use super::targets::{parse_target, Target};
use super::transforms::Transform;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disruptive {
    Pass,
    /// Whatever `SecDefaultAction` says for the phase (`pass` in CRS's anomaly mode).
    Block,
    Deny,
    Drop,
    /// `allow`: stop inspecting the whole request; `allow:phase`: the rest of the phase.
    Allow {
        phase_only: bool,
    },
    Redirect,
}

#[derive(Debug, Clone)]
pub enum SetVarOp {
    Set(Macro),
    Add(Macro),
    Sub(Macro),
    Delete,
}

impl SetVarOp {
    /// `=+n` / `=-n` on a variable holding `current` (0 when unset): saturating, as the
    /// operand may come from the request through a macro.
    pub fn combine(&self, current: i64, operand: i64) -> i64 {
        match self {
            SetVarOp::Sub(_) => current.saturating_sub(operand),
            _ => current.saturating_add(operand),
        }
    }
}

/// `setvar:tx.name=value` (only the TX collection is kept per transaction).
#[derive(Debug, Clone)]
pub struct SetVar {
    pub name: Macro,
    /// The name's process-wide copy when it is literal ([`super::intern::intern`]).
    pub interned: Option<&'static str>,
    pub op: SetVarOp,
}

#[derive(Debug, Clone)]
pub enum Ctl {
    RuleRemoveById(Vec<(u32, u32)>),
    RuleRemoveByTag(Tag),
    RuleRemoveTargetById(Vec<(u32, u32)>, Target),
    RuleRemoveTargetByTag(Tag, Target),
    RuleEngine(EngineMode),
    RequestBodyProcessor(String),
    /// REQUEST_BODY is filled for the URL-encoded processor, or when this is on.
    ForceRequestBodyVariable(bool),
    /// Controls that change nothing in this engine (audit and debug logs).
    NoEffect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineMode {
    On,
    Off,
    DetectionOnly,
}

impl EngineMode {
    pub fn parse(s: &str) -> Result<EngineMode, String> {
        match s.to_ascii_lowercase().as_str() {
            "on" => Ok(EngineMode::On),
            "off" => Ok(EngineMode::Off),
            "detectiononly" => Ok(EngineMode::DetectionOnly),
            other => Err(format!(
                "rule engine mode {other:?} (On, Off or DetectionOnly)"
            )),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Actions {
    pub id: Option<u32>,
    pub phase: Option<u8>,
    pub disruptive: Option<Disruptive>,
    pub status: Option<u16>,
    pub chain: bool,
    pub capture: bool,
    pub multi_match: bool,
    /// `t:none` seen: the default action's transformations do not apply.
    pub transforms_reset: bool,
    pub transforms: Vec<Transform>,
    pub msg: Option<Macro>,
    pub logdata: Option<Macro>,
    pub tags: Vec<Tag>,
    pub severity: Option<u8>,
    pub log: Option<bool>,
    pub setvars: Vec<SetVar>,
    pub skip_after: Option<String>,
    pub skip: u32,
    pub ctls: Vec<Ctl>,
    /// Actions this engine cannot perform (reported at load, never silently dropped).
    pub unsupported: Vec<String>,
}

/// Splits an action list on commas outside single quotes; yields (name, value).
pub fn split_actions(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == ':' || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let name = name.trim().to_string();
        if chars.peek() != Some(&':') {
            out.push((name, None));
            continue;
        }
        chars.next();
        while chars.peek().is_some_and(|c| *c == ' ') {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'\'') => {
                        value.push('\'');
                        chars.next();
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("action {name}: quote not closed"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim_end().to_string();
        }
        out.push((name, Some(value)));
    }
    Ok(out)
}

impl Actions {
    pub fn parse(text: &str) -> Result<Actions, String> {
        let mut a = Actions::default();
        for (name, value) in split_actions(text)? {
            a.apply(&name, value.as_deref())?;
        }
        Ok(a)
    }

    fn apply(&mut self, name: &str, value: Option<&str>) -> Result<(), String> {
        let need = || value.ok_or_else(|| format!("action {name} needs a value"));
        match name.to_ascii_lowercase().as_str() {
            "id" => {
                self.id = Some(
                    need()?
                        .trim()
                        .parse()
                        .map_err(|_| format!("id:{} is not a number", need().unwrap_or("")))?,
                )
            }
            "phase" => {
                self.phase = Some(match need()?.trim().to_ascii_lowercase().as_str() {
                    "request" => 2,
                    "response" => 4,
                    "logging" => 5,
                    n => match n.parse::<u8>() {
                        Ok(p @ 1..=5) => p,
                        _ => return Err(format!("phase:{n} (1-5, request, response, logging)")),
                    },
                })
            }
            "pass" => self.disruptive = Some(Disruptive::Pass),
            "block" => self.disruptive = Some(Disruptive::Block),
            "deny" => self.disruptive = Some(Disruptive::Deny),
            "drop" => self.disruptive = Some(Disruptive::Drop),
            "allow" => {
                self.disruptive = Some(Disruptive::Allow {
                    phase_only: value.is_some_and(|v| v.eq_ignore_ascii_case("phase")),
                })
            }
            "redirect" => self.disruptive = Some(Disruptive::Redirect),
            "status" => {
                self.status = Some(
                    need()?
                        .trim()
                        .parse()
                        .map_err(|_| "status needs a number".to_string())?,
                )
            }
            "chain" => self.chain = true,
            "capture" => self.capture = true,
            "multimatch" => self.multi_match = true,
            "t" => match Transform::from_name(need()?.trim())? {
                None => {
                    self.transforms.clear();
                    self.transforms_reset = true;
                }
                Some(t) => self.transforms.push(t),
            },
            "msg" => self.msg = Some(Macro::parse(need()?)?),
            "logdata" => self.logdata = Some(Macro::parse(need()?)?),
            "tag" => self.tags.push(Tag::new(need()?)),
            "severity" => self.severity = Some(parse_severity(need()?)?),
            "log" => self.log = Some(true),
            "nolog" => self.log = Some(false),
            "setvar" => self.setvars.push(parse_setvar(need()?)?),
            "skipafter" => self.skip_after = Some(need()?.trim().to_string()),
            "skip" => {
                self.skip = need()?
                    .trim()
                    .parse()
                    .map_err(|_| "skip needs a number".to_string())?
            }
            "ctl" => self.ctls.push(parse_ctl(need()?)?),
            // Metadata and logging switches with no effect on the verdict.
            "ver"
            | "rev"
            | "maturity"
            | "accuracy"
            | "auditlog"
            | "noauditlog"
            | "sanitisearg"
            | "sanitizearg"
            | "sanitisematched"
            | "sanitizematched"
            | "sanitisematchedbytes"
            | "sanitizematchedbytes" => {}
            "initcol" | "setuid" | "setsid" | "setenv" | "expirevar" | "deprecatevar" | "exec"
            | "append" | "prepend" | "proxy" | "pause" | "xmlns" => {
                self.unsupported.push(format!(
                    "action {name} (persistent collections, environment and external programs are not supported; the action does nothing)"
                ));
            }
            other => return Err(format!("unknown action {other}")),
        }
        Ok(())
    }
}

fn parse_severity(s: &str) -> Result<u8, String> {
    let s = s.trim();
    Ok(match s.to_ascii_uppercase().as_str() {
        "EMERGENCY" => 0,
        "ALERT" => 1,
        "CRITICAL" => 2,
        "ERROR" => 3,
        "WARNING" => 4,
        "NOTICE" => 5,
        "INFO" => 6,
        "DEBUG" => 7,
        n => n
            .parse::<u8>()
            .ok()
            .filter(|v| *v <= 7)
            .ok_or_else(|| format!("severity {s}"))?,
    })
}

fn parse_setvar(s: &str) -> Result<SetVar, String> {
    let s = s.trim();
    let (delete, s) = match s.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (name, value) = match s.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (s, None),
    };
    let Some((collection, var)) = name.split_once('.') else {
        return Err(format!("setvar:{s}: expected collection.name"));
    };
    if !collection.eq_ignore_ascii_case("tx") {
        return Err(format!(
            "setvar on collection {collection} (only TX is supported)"
        ));
    }
    let name = Macro::parse(&var.to_ascii_lowercase())?;
    let op = if delete {
        SetVarOp::Delete
    } else {
        match value {
            None => SetVarOp::Set(Macro::parse("1")?),
            Some(v) => {
                if let Some(rest) = v.strip_prefix('+') {
                    SetVarOp::Add(Macro::parse(rest)?)
                } else if let Some(rest) = v.strip_prefix('-') {
                    SetVarOp::Sub(Macro::parse(rest)?)
                } else {
                    SetVarOp::Set(Macro::parse(v)?)
                }
            }
        }
    };
    let interned = name.is_literal().then(|| intern(name.raw()));
    Ok(SetVar { name, interned, op })
}

/// `1-5,7` style id lists.
pub fn parse_id_ranges(s: &str) -> Result<Vec<(u32, u32)>, String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            match (lo.trim().parse(), hi.trim().parse()) {
                (Ok(lo), Ok(hi)) => Ok((lo, hi)),
                _ => Err(format!("rule id range {part:?}")),
            }
        })
        .collect()
}

fn parse_ctl(s: &str) -> Result<Ctl, String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("ctl:{s}: expected name=value"))?;
    let value = value.trim();
    let target = |v: &str| -> Result<(String, Target), String> {
        let (what, target) = v
            .split_once(';')
            .ok_or_else(|| format!("ctl:{name}={v}: expected ID;TARGET"))?;
        Ok((what.to_string(), parse_target(target)?))
    };
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "ruleremovebyid" => Ctl::RuleRemoveById(parse_id_ranges(value)?),
        "ruleremovebytag" => Ctl::RuleRemoveByTag(Tag::new(value)),
        "ruleremovetargetbyid" => {
            let (ids, t) = target(value)?;
            Ctl::RuleRemoveTargetById(parse_id_ranges(&ids)?, t)
        }
        "ruleremovetargetbytag" => {
            let (tag, t) = target(value)?;
            Ctl::RuleRemoveTargetByTag(Tag::new(&tag), t)
        }
        "ruleengine" => Ctl::RuleEngine(EngineMode::parse(value)?),
        "requestbodyprocessor" => Ctl::RequestBodyProcessor(value.to_ascii_uppercase()),
        "forcerequestbodyvariable" => {
            Ctl::ForceRequestBodyVariable(value.eq_ignore_ascii_case("on"))
        }
        "auditengine" | "auditlogparts" | "debugloglevel" | "requestbodyaccess"
        | "responsebodyaccess" | "hashengine" | "hashenforcement" => Ctl::NoEffect,
        other => return Err(format!("unsupported ctl:{other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setvar_arithmetic_saturates_instead_of_overflowing() {
        let add = parse_setvar("tx.score=+%{request_headers.x-n}").expect("parses");
        let sub = parse_setvar("tx.score=-5").expect("parses");
        assert_eq!(add.op.combine(3, 4), 7);
        assert_eq!(add.op.combine(i64::MAX, 1), i64::MAX);
        assert_eq!(sub.op.combine(3, 5), -2);
        assert_eq!(sub.op.combine(i64::MIN, 1), i64::MIN);
    }

    #[test]
    fn parses_a_crs_action_list() {
        let a = Actions::parse(
            "id:942100,    phase:2,    block,    capture,    t:none,t:utf8toUnicode,t:urlDecodeUni,    msg:'SQL Injection, libinjection',    logdata:'Matched Data: %{TX.0} found',    tag:'paranoia-level/1',    severity:'CRITICAL',    setvar:'tx.sql_injection_score=+%{tx.critical_anomaly_score}',    ctl:ruleRemoveTargetById=942100;ARGS:pwd,    skipAfter:END",
        )
        .expect("parses");
        assert_eq!(a.id, Some(942100));
        assert_eq!(a.phase, Some(2));
        assert_eq!(a.disruptive, Some(Disruptive::Block));
        assert!(a.capture && a.transforms_reset);
        assert_eq!(a.transforms.len(), 2);
        assert_eq!(
            a.msg.as_ref().map(|m| m.raw()),
            Some("SQL Injection, libinjection")
        );
        assert_eq!(a.tags, vec![Tag::new("paranoia-level/1")]);
        assert_eq!(a.severity, Some(2));
        assert!(matches!(a.setvars[0].op, SetVarOp::Add(_)));
        assert!(matches!(a.ctls[0], Ctl::RuleRemoveTargetById(_, _)));
        assert_eq!(a.skip_after.as_deref(), Some("END"));
    }

    #[test]
    fn rejects_unknown_actions() {
        assert!(Actions::parse("id:1,frobnicate").is_err());
        assert!(Actions::parse("id:1,setvar:ip.x=1").is_err());
    }
}

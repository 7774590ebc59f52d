//! A WAF profile as the proxy uses it: the compiled rule set (the embedded default set,
//! or an OWASP CRS directory with its setup file), the paranoia level and threshold
//! written in front of the rules, exclusions after them, and the body policy.

use super::ruleset::{LoadReport, RuleSet};
use crate::config::waf::{OverLimit, WafMode, WafProfileSection};
use std::path::Path;
use std::sync::Arc;

/// The embedded rule set, compiled into the binary.
pub const DEFAULT_RULES: &str = include_str!("default_rules.conf");

#[derive(Debug)]
pub struct WafProfile {
    pub name: String,
    pub mode: WafMode,
    pub rules: Arc<RuleSet>,
    pub body_limit: usize,
    pub over_limit: OverLimit,
}

impl WafProfile {
    /// Compiles a profile. Rules the engine cannot run are in the returned report (and
    /// logged by the caller); a file that cannot be read or parsed is an error.
    pub fn compile(name: &str, section: &WafProfileSection) -> Result<WafProfile, String> {
        // `Include` paths resolve against the including file: make them absolute first.
        let absolute = |p: &String| {
            std::fs::canonicalize(p)
                .map(|a| a.display().to_string())
                .unwrap_or_else(|_| p.clone())
        };
        let mut resolved = section.clone();
        resolved.crs = section.crs.as_ref().map(absolute);
        resolved.crs_setup = section.crs_setup.as_ref().map(absolute);
        let section = &resolved;
        let text = directives(section);
        let origin = match &section.crs {
            Some(dir) => Path::new(dir).join("gatehouse-profile.conf"),
            None => Path::new("embedded").join("default_rules.conf"),
        };
        let rules =
            super::load_text(&text, &origin).map_err(|e| format!("WAF profile {name}: {e}"))?;
        Ok(WafProfile {
            name: name.to_string(),
            mode: section.mode,
            rules: Arc::new(rules),
            body_limit: section.body_limit.0 as usize,
            over_limit: section.body_over_limit,
        })
    }

    pub fn report(&self) -> &LoadReport {
        &self.rules.report
    }
}

/// The SecLang text a profile stands for.
fn directives(section: &WafProfileSection) -> String {
    let settings = format!(
        "SecAction \"id:9000001,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level={p},setvar:tx.detection_paranoia_level={p},setvar:tx.inbound_anomaly_score_threshold={t}\"\n",
        p = section.paranoia,
        t = section.inbound_threshold
    );
    let mut text = String::new();
    match (&section.crs, section.setup_file()) {
        (Some(dir), Some(setup)) => {
            text.push_str(&format!("Include \"{}\"\n", setup.display()));
            text.push_str(&settings);
            text.push_str(&format!(
                "Include \"{}\"\n",
                Path::new(dir).join("rules").join("*.conf").display()
            ));
        }
        _ => {
            text.push_str(&settings);
            text.push_str(DEFAULT_RULES);
            text.push('\n');
        }
    }
    for id in &section.exclude_rules {
        text.push_str(&format!("SecRuleRemoveById {id}\n"));
    }
    for tag in &section.exclude_tags {
        text.push_str(&format!("SecRuleRemoveByTag \"{tag}\"\n"));
    }
    text
}

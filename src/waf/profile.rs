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
    /// Set when the profile runs the response-phase rules (shared with every response
    /// being watched).
    pub response: Option<Arc<ResponsePolicy>>,
}

/// Which responses the response-phase rules see, and how much of their bodies.
#[derive(Debug, Clone)]
pub struct ResponsePolicy {
    pub body_limit: usize,
    /// Lower-case media types (no parameters) whose bodies are inspected.
    pub body_types: Vec<String>,
}

impl ResponsePolicy {
    /// Whether a response with this Content-Type has its body held and inspected.
    pub fn inspects_body(&self, content_type: Option<&[u8]>) -> bool {
        let Some(ct) = content_type else {
            return false;
        };
        let mime = ct.split(|b| *b == b';').next().unwrap_or(b"").trim_ascii();
        self.body_types
            .iter()
            .any(|t| t.as_bytes().eq_ignore_ascii_case(mime))
    }
}

impl WafProfile {
    /// Compiles a profile. Rules the engine cannot run are in the returned report (and
    /// logged by the caller); a file that cannot be read or parsed is an error.
    pub fn compile(name: &str, section: &WafProfileSection) -> Result<WafProfile, String> {
        Self::compile_shared(name, section, &mut Vec::new())
    }

    /// As [`Self::compile`], reusing the rule set of an earlier profile in `compiled`
    /// whose SecLang text is the same (profiles that differ only in mode, body or
    /// response settings share one compiled rule set).
    pub fn compile_shared(
        name: &str,
        section: &WafProfileSection,
        compiled: &mut Vec<(String, Arc<RuleSet>)>,
    ) -> Result<WafProfile, String> {
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
        let text = directives(section).map_err(|e| format!("WAF profile {name}: {e}"))?;
        let origin = match &section.crs {
            Some(dir) => Path::new(dir).join("gatehouse-profile.conf"),
            None => Path::new("embedded").join("default_rules.conf"),
        };
        let rules = match compiled.iter().find(|(t, _)| *t == text) {
            Some((_, rules)) => Arc::clone(rules),
            None => {
                let rules = super::load_text(&text, &origin)
                    .map_err(|e| format!("WAF profile {name}: {e}"))?;
                let rules = Arc::new(rules);
                compiled.push((text, Arc::clone(&rules)));
                rules
            }
        };
        Ok(WafProfile {
            name: name.to_string(),
            mode: section.mode,
            rules,
            body_limit: section.body_limit.0 as usize,
            over_limit: section.body_over_limit,
            response: section.inspect_response.then(|| {
                Arc::new(ResponsePolicy {
                    body_limit: section.response_body_limit.0 as usize,
                    body_types: section
                        .response_body_types
                        .iter()
                        .map(|t| t.trim().to_ascii_lowercase())
                        .collect(),
                })
            }),
        })
    }

    pub fn report(&self) -> &LoadReport {
        &self.rules.report
    }
}

/// The SecLang text a profile stands for.
fn directives(section: &WafProfileSection) -> Result<String, String> {
    let settings = format!(
        "SecAction \"id:9000001,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level={p},setvar:tx.detection_paranoia_level={p},setvar:tx.inbound_anomaly_score_threshold={t},setvar:tx.outbound_anomaly_score_threshold={o}\"\n",
        p = section.paranoia,
        t = section.inbound_threshold,
        o = section.outbound_threshold
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
        // (The configuration check refuses such a directory first; it may have gone
        // since. Never the embedded rules in place of the operator's.)
        (Some(dir), None) => {
            return Err(format!(
                "crs: {dir} has no crs-setup.conf or crs-setup.conf.example; set `crs_setup:` to your setup file"
            ))
        }
        (None, _) => {
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
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(yaml: &str) -> WafProfileSection {
        serde_yaml::from_str(yaml).expect("profile section")
    }

    #[test]
    fn profiles_with_the_same_rules_share_one_compiled_set() {
        let mut compiled = Vec::new();
        let block = WafProfile::compile_shared("a", &section("mode: block\n"), &mut compiled)
            .expect("compiles");
        let responses = section("mode: detect\ninspect_response: true\n");
        let detect = WafProfile::compile_shared("b", &responses, &mut compiled).expect("compiles");
        let stricter = WafProfile::compile_shared("c", &section("paranoia: 2\n"), &mut compiled)
            .expect("compiles");
        assert!(Arc::ptr_eq(&block.rules, &detect.rules));
        assert!(!Arc::ptr_eq(&block.rules, &stricter.rules));
        assert!(block.response.is_none());
        assert!(detect
            .response
            .as_ref()
            .is_some_and(|r| r.body_limit == 512 * 1024));
    }

    #[test]
    fn a_crs_directory_without_setup_file_is_an_error_not_the_embedded_rules() {
        let dir = tempfile::tempdir().expect("temp dir");
        let yaml = format!("crs: {}\n", dir.path().display());
        let Err(err) = WafProfile::compile("p", &section(&yaml)) else {
            panic!("a directory without a setup file compiled");
        };
        assert!(err.contains("crs-setup.conf"), "{err}");
        assert!(err.contains("WAF profile p"), "{err}");
    }

    #[test]
    fn response_bodies_are_inspected_by_media_type() {
        let policy = ResponsePolicy {
            body_limit: 1024,
            body_types: vec!["text/html".into()],
        };
        assert!(policy.inspects_body(Some(b"Text/HTML; charset=utf-8")));
        assert!(!policy.inspects_body(Some(b"application/json")));
        assert!(!policy.inspects_body(None));
    }
}

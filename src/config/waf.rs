//! `waf:` — named WAF profiles that routes refer to (`waf: default` on a route): the mode,
//! the rule set (the embedded default set or an OWASP CRS directory), the paranoia level,
//! anomaly thresholds, exclusions, and how request bodies are inspected.

use super::errors::Problems;
use super::values::Size;
use serde::Deserialize;
use std::path::Path;

/// Pingora replays a request body it buffered only while it fits in 64 KiB; a body the
/// WAF holds back for inspection must fit in that.
pub const MAX_BODY_LIMIT: u64 = 64 * 1024;

/// A response body held back for inspection is memory per request in flight: cap it.
pub const MAX_RESPONSE_BODY_LIMIT: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WafMode {
    /// Refuse requests the rules decide against (403).
    #[default]
    Block,
    /// Run the rules, log and count what they find, let everything through.
    Detect,
    Off,
}

/// What to do with a body larger than `body_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OverLimit {
    /// 413, as ModSecurity's `SecRequestBodyLimitAction Reject`.
    #[default]
    Reject,
    /// Inspect the first `body_limit` bytes and let the rest stream.
    InspectPrefix,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WafProfileSection {
    #[serde(default)]
    pub mode: WafMode,
    /// An OWASP CRS directory (with `rules/`); without it, the embedded rule set.
    #[serde(default)]
    pub crs: Option<String>,
    /// The CRS setup file; default `<crs>/crs-setup.conf`, else its `.example`.
    #[serde(default)]
    pub crs_setup: Option<String>,
    /// 1 (few false positives) to 4 (most checks).
    #[serde(default = "default_paranoia")]
    pub paranoia: u8,
    /// Anomaly score at which a request is blocked (CRS default 5: one critical rule).
    #[serde(default = "default_inbound")]
    pub inbound_threshold: u32,
    /// Rule ids never run for this profile.
    #[serde(default)]
    pub exclude_rules: Vec<u32>,
    /// Rule tags never run for this profile (e.g. `attack-sqli`).
    #[serde(default)]
    pub exclude_tags: Vec<String>,
    /// How much of a request body is held and inspected before it goes upstream.
    #[serde(default = "default_body_limit")]
    pub body_limit: Size,
    #[serde(default)]
    pub body_over_limit: OverLimit,
    /// Run the response-phase rules (CRS RESPONSE-95x: data leakages, web shells, the
    /// outbound anomaly score). Off by default, as in CRS deployments behind nginx.
    #[serde(default)]
    pub inspect_response: bool,
    /// Outbound anomaly score at which a response is stopped (CRS default 4).
    #[serde(default = "default_outbound")]
    pub outbound_threshold: u32,
    /// How much of a response body is held back and inspected; past it the rest of
    /// the body is not inspected (ModSecurity's `SecResponseBodyLimitAction
    /// ProcessPartial`).
    #[serde(default = "default_response_body_limit")]
    pub response_body_limit: Size,
    /// Response media types whose bodies are inspected (ModSecurity's
    /// `SecResponseBodyMimeType`); other responses are judged on status and headers.
    #[serde(default = "default_response_body_types")]
    pub response_body_types: Vec<String>,
}

fn default_outbound() -> u32 {
    4
}

fn default_response_body_limit() -> Size {
    Size(512 * 1024)
}

fn default_response_body_types() -> Vec<String> {
    ["text/plain", "text/html", "text/xml"]
        .map(String::from)
        .to_vec()
}

fn default_paranoia() -> u8 {
    1
}

fn default_inbound() -> u32 {
    5
}

fn default_body_limit() -> Size {
    Size(MAX_BODY_LIMIT)
}

impl WafProfileSection {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if !(1..=4).contains(&self.paranoia) {
            problems.add(
                format!("{path}.paranoia"),
                format!(
                    "paranoia {} is out of range; use 1, 2, 3 or 4",
                    self.paranoia
                ),
            );
        }
        if self.inbound_threshold == 0 {
            problems.add(
                format!("{path}.inbound_threshold"),
                "must be at least 1 (0 would block every request)",
            );
        }
        if self.body_limit.0 == 0 || self.body_limit.0 > MAX_BODY_LIMIT {
            problems.add(
                format!("{path}.body_limit"),
                "must be between 1B and 64KiB (the request body Pingora can hold and replay to the origin)",
            );
        }
        if self.outbound_threshold == 0 {
            problems.add(
                format!("{path}.outbound_threshold"),
                "must be at least 1 (0 would stop every response)",
            );
        }
        if self.response_body_limit.0 == 0 || self.response_body_limit.0 > MAX_RESPONSE_BODY_LIMIT {
            problems.add(
                format!("{path}.response_body_limit"),
                "must be between 1B and 8MiB (the response body is held in memory while it is inspected)",
            );
        }
        for (i, t) in self.response_body_types.iter().enumerate() {
            if t.contains(';') || !t.contains('/') {
                problems.add(
                    format!("{path}.response_body_types[{i}]"),
                    format!("{t:?} is not a media type; write it as type/subtype, e.g. text/html"),
                );
            }
        }
        if self.crs_setup.is_some() && self.crs.is_none() {
            problems.add(
                format!("{path}.crs_setup"),
                "only meaningful with `crs:` (the CRS directory)",
            );
        }
        if let Some(dir) = &self.crs {
            if !Path::new(dir).join("rules").is_dir() {
                problems.add(
                    format!("{path}.crs"),
                    format!("{dir} is not a CRS directory (no rules/ in it); give the directory of an OWASP CRS release, e.g. /usr/share/modsecurity-crs"),
                );
            } else if self.setup_file().is_none() {
                problems.add(
                    format!("{path}.crs"),
                    format!("{dir} has no crs-setup.conf or crs-setup.conf.example; set `crs_setup:` to your setup file"),
                );
            }
        }
        if let Some(setup) = &self.crs_setup {
            if !Path::new(setup).is_file() {
                problems.add(
                    format!("{path}.crs_setup"),
                    format!("{setup}: no such file"),
                );
            }
        }
    }

    /// The CRS setup file to load before the rules.
    pub fn setup_file(&self) -> Option<std::path::PathBuf> {
        if let Some(setup) = &self.crs_setup {
            return Some(setup.into());
        }
        let dir = Path::new(self.crs.as_ref()?);
        ["crs-setup.conf", "crs-setup.conf.example"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
    }
}

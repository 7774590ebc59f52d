//! `routes:` — which requests go where: match conditions, the upstream, and header rewrites.

use super::errors::Problems;
use super::split::SplitSection;
use super::values::{HeaderName, HeaderValue, Method, Regex};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub name: String,
    #[serde(default, rename = "match")]
    pub matches: MatchSection,
    pub upstream: String,
    /// Send part of the traffic to other upstreams (canary, A/B).
    #[serde(default)]
    pub split: Option<SplitSection>,
    #[serde(default)]
    pub request_headers: HeaderRewriteSection,
    #[serde(default)]
    pub response_headers: HeaderRewriteSection,
    /// The WAF profile (a name under `waf:`) that inspects this route's requests.
    #[serde(default)]
    pub waf: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSection {
    /// `api.example.com` (exact) or `*.example.com` (any subdomain, at any depth).
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub path: Option<PathMatchSection>,
    #[serde(default)]
    pub methods: Option<Vec<Method>>,
    #[serde(default)]
    pub headers: Vec<HeaderConditionSection>,
}

/// Exactly one of the three.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathMatchSection {
    #[serde(default)]
    pub exact: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub regex: Option<Regex>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderConditionSection {
    pub name: HeaderName,
    /// Without a value, the header only has to be present.
    #[serde(default)]
    pub value: Option<String>,
}

/// Applied in this order: remove, set (replace), add (append).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRewriteSection {
    #[serde(default)]
    pub remove: Vec<HeaderName>,
    #[serde(default)]
    pub set: BTreeMap<String, HeaderValue>,
    #[serde(default)]
    pub add: BTreeMap<String, HeaderValue>,
}

impl HeaderRewriteSection {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        for (kind, map) in [("set", &self.set), ("add", &self.add)] {
            for name in map.keys() {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    problems.add(
                        format!("{path}.{kind}.{name}"),
                        format!("{name:?} is not a valid header name"),
                    );
                }
            }
        }
    }
}

impl RouteSection {
    pub fn validate(&self, path: &str, upstreams: &HashSet<&str>, problems: &mut Problems) {
        if self.name.is_empty() {
            problems.add(format!("{path}.name"), "must not be empty");
        }
        if !upstreams.contains(self.upstream.as_str()) {
            let mut known: Vec<&str> = upstreams.iter().copied().collect();
            known.sort_unstable();
            problems.add(
                format!("{path}.upstream"),
                format!(
                    "no upstream named {:?}; defined: {}",
                    self.upstream,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
        if let Some(host) = &self.matches.host {
            validate_host(host, &format!("{path}.match.host"), problems);
        }
        if let Some(p) = &self.matches.path {
            let given = [p.exact.is_some(), p.prefix.is_some(), p.regex.is_some()]
                .iter()
                .filter(|set| **set)
                .count();
            if given != 1 {
                problems.add(
                    format!("{path}.match.path"),
                    "give exactly one of `exact`, `prefix` or `regex`",
                );
            }
            for (kind, value) in [("exact", &p.exact), ("prefix", &p.prefix)] {
                if let Some(v) = value {
                    if !v.starts_with('/') {
                        problems.add(
                            format!("{path}.match.path.{kind}"),
                            format!("must start with / (got {v:?})"),
                        );
                    }
                }
            }
        }
        if let Some(methods) = &self.matches.methods {
            if methods.is_empty() {
                problems.add(
                    format!("{path}.match.methods"),
                    "an empty list matches nothing; remove the key to match every method",
                );
            }
        }
        if let Some(split) = &self.split {
            split.validate(
                &format!("{path}.split"),
                &self.upstream,
                upstreams,
                problems,
            );
        }
        self.request_headers
            .validate(&format!("{path}.request_headers"), problems);
        self.response_headers
            .validate(&format!("{path}.response_headers"), problems);
    }
}

fn validate_host(host: &str, path: &str, problems: &mut Problems) {
    let bare = host.strip_prefix("*.").unwrap_or(host);
    let valid = !bare.is_empty()
        && bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !bare.starts_with('.')
        && !bare.ends_with('.');
    if !valid {
        problems.add(
            path,
            format!(
                "{host:?} is not a host name; write `api.example.com` or `*.example.com` (no port, no scheme)"
            ),
        );
    }
}

pub fn validate_names(routes: &[(usize, RouteSection)], problems: &mut Problems) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, route) in routes {
        if let Some(first) = seen.insert(&route.name, *i) {
            problems.add(
                format!("routes[{i}].name"),
                format!(
                    "duplicate route name {:?} (also routes[{first}])",
                    route.name
                ),
            );
        }
    }
}

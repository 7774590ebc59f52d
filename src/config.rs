//! The one YAML file: read, parse strictly, validate, and report every problem at once.
//!
//! Each section (and each route, upstream and listener in it) is deserialized on its own,
//! so that one typo does not hide the next: all problems come back together, each with
//! its key path and line. Unknown keys are errors everywhere (`deny_unknown_fields`),
//! unlike Pingora's own `ServerConf`, which ignores them.

pub mod access_log;
pub mod admin;
pub mod errors;
pub mod listeners;
pub mod locate;
pub mod routes;
pub mod server;
pub mod split;
pub mod upstreams;
pub mod values;
pub mod waf;

pub use errors::{ConfigError, Problem};

use access_log::AccessLogSection;
use admin::AdminSection;
use errors::Problems;
use listeners::Listener;
use locate::LineIndex;
use routes::RouteSection;
use serde::de::DeserializeOwned;
use serde_yaml::Value;
use server::ServerSection;
use std::collections::HashSet;
use std::path::Path;
use upstreams::UpstreamSection;
use values::{Cidr, HeaderName, Size};
use waf::WafProfileSection;

/// A config file that parsed and passed every check.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSection,
    pub listeners: Vec<Listener>,
    /// Clients whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Response headers taken off every upstream response.
    pub hide_headers: Vec<HeaderName>,
    /// The largest request body accepted (413 past it).
    pub max_request_body: Size,
    /// In file order.
    pub upstreams: Vec<(String, UpstreamSection)>,
    /// In file order.
    pub routes: Vec<RouteSection>,
    pub admin: Option<AdminSection>,
    pub access_log: Option<AccessLogSection>,
    /// Named WAF profiles, in file order.
    pub waf: Vec<(String, WafProfileSection)>,
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "server",
    "listeners",
    "trusted_proxies",
    "hide_headers",
    "max_request_body",
    "upstreams",
    "routes",
    "admin",
    "access_log",
    "waf",
];

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses and checks config text; `file` names it in messages.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let invalid = |problems: Vec<Problem>| ConfigError::Invalid {
        file: file.to_string(),
        problems,
    };
    let document: Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let line = e.location().map(|l| l.line());
            return Err(invalid(vec![Problem {
                path: String::new(),
                line,
                message: format!("not valid YAML: {e}"),
            }]));
        }
    };
    let index = LineIndex::new(text);
    let mut problems = Problems::default();
    if let Some(parts) = Sections::read(&document, &mut problems) {
        validate(&parts, &mut problems);
        if problems.is_empty() {
            if let Some(config) = parts.complete() {
                return Ok(config);
            }
        }
    }
    let mut list = problems.into_vec();
    for problem in &mut list {
        if problem.line.is_none() {
            problem.line = index.line_of(&problem.path);
        }
    }
    list.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Err(invalid(list))
}

/// Deserializes `value` as a `T`, recording a problem at `path` (plus the inner key path)
/// when it does not fit.
fn typed<T: DeserializeOwned>(value: &Value, path: &str, problems: &mut Problems) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let full = match (path.is_empty(), inner == ".") {
                (_, true) => path.to_string(),
                (true, false) => inner,
                (false, false) if inner.starts_with('[') => format!("{path}{inner}"),
                (false, false) => format!("{path}.{inner}"),
            };
            problems.add(full, clean_message(&e.into_inner().to_string()));
            None
        }
    }
}

/// serde_yaml appends its own position, which is meaningless for a value taken out of the
/// document; the real line comes from the index.
fn clean_message(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_string(),
        None => message.to_string(),
    }
}

/// The items of a list that deserialized, each with its index in the file, so that later
/// checks name the right item even when an earlier one failed.
type Indexed<T> = Vec<(usize, T)>;

fn typed_list<T: DeserializeOwned>(
    value: Option<&Value>,
    path: &str,
    problems: &mut Problems,
) -> Option<Indexed<T>> {
    let Some(value) = value else {
        return Some(Vec::new());
    };
    let Value::Sequence(items) = value else {
        problems.add(path, "must be a list (`- item` lines)");
        return None;
    };
    let parsed = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| typed(item, &format!("{path}[{i}]"), problems).map(|v| (i, v)))
        .collect();
    Some(parsed)
}

/// An optional section: `Some(None)` when absent, `None` when present but invalid.
fn optional<T: DeserializeOwned>(
    value: Option<&Value>,
    path: &str,
    problems: &mut Problems,
) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(v) => typed::<T>(v, path, problems).map(Some),
    }
}

fn strip<T>(list: Indexed<T>) -> Vec<T> {
    list.into_iter().map(|(_, v)| v).collect()
}

struct Sections;

/// The sections that deserialized; one that did not is `None`, and the others are still
/// validated so that their problems are reported in the same run.
struct Parts {
    server: Option<ServerSection>,
    listeners: Option<Indexed<Listener>>,
    trusted_proxies: Option<Indexed<Cidr>>,
    hide_headers: Option<Indexed<HeaderName>>,
    max_request_body: Option<Size>,
    upstreams: Option<Vec<(String, UpstreamSection)>>,
    routes: Option<Indexed<RouteSection>>,
    admin: Option<Option<AdminSection>>,
    access_log: Option<Option<AccessLogSection>>,
    waf: Option<Vec<(String, WafProfileSection)>>,
}

impl Parts {
    fn complete(self) -> Option<Config> {
        Some(Config {
            server: self.server?,
            listeners: strip(self.listeners?),
            trusted_proxies: strip(self.trusted_proxies?),
            hide_headers: strip(self.hide_headers?),
            max_request_body: self.max_request_body?,
            upstreams: self.upstreams?,
            routes: strip(self.routes?),
            admin: self.admin?,
            access_log: self.access_log?,
            waf: self.waf?,
        })
    }
}

impl Sections {
    fn read(document: &Value, problems: &mut Problems) -> Option<Parts> {
        let root = match document {
            Value::Mapping(m) => m,
            Value::Null => {
                problems.add("", "the file is empty; see conf/minimal.yaml for a start");
                return None;
            }
            _ => {
                problems.add(
                    "",
                    "the file must be a mapping of sections (`server:`, `routes:` ...)",
                );
                return None;
            }
        };
        for key in root.keys() {
            let name = key.as_str().unwrap_or("?");
            if !TOP_LEVEL_KEYS.contains(&name) {
                problems.add(
                    name,
                    format!(
                        "unknown key `{name}`; expected one of: {}",
                        TOP_LEVEL_KEYS.join(", ")
                    ),
                );
            }
        }
        let server = match root.get("server") {
            Some(v) => typed::<ServerSection>(v, "server", problems),
            None => Some(ServerSection::default()),
        };
        let listeners = typed_list::<Listener>(root.get("listeners"), "listeners", problems);
        let trusted_proxies =
            typed_list::<Cidr>(root.get("trusted_proxies"), "trusted_proxies", problems);
        let hide_headers = match root.get("hide_headers") {
            Some(v) => typed_list::<HeaderName>(Some(v), "hide_headers", problems),
            None => Some(default_hidden_headers().into_iter().enumerate().collect()),
        };
        let max_request_body = match root.get("max_request_body") {
            Some(v) => typed::<Size>(v, "max_request_body", problems),
            None => Some(Size(10 * 1024 * 1024)),
        };
        let upstreams = Self::named::<UpstreamSection>(
            root.get("upstreams"),
            "upstreams",
            "a mapping of names to upstreams (`app: { backends: [...] }`)",
            problems,
        );
        let waf = Self::named::<WafProfileSection>(
            root.get("waf"),
            "waf",
            "a mapping of profile names to WAF profiles (`default: { mode: block }`)",
            problems,
        );
        let routes = typed_list::<RouteSection>(root.get("routes"), "routes", problems);
        let admin = optional::<AdminSection>(root.get("admin"), "admin", problems);
        let access_log =
            optional::<AccessLogSection>(root.get("access_log"), "access_log", problems);
        Some(Parts {
            server,
            listeners,
            trusted_proxies,
            hide_headers,
            max_request_body,
            upstreams,
            routes,
            admin,
            access_log,
            waf,
        })
    }

    /// A mapping of names to sections of type `T` (upstreams, WAF profiles).
    fn named<T: DeserializeOwned>(
        value: Option<&Value>,
        section: &str,
        shape: &str,
        problems: &mut Problems,
    ) -> Option<Vec<(String, T)>> {
        let Some(value) = value else {
            return Some(Vec::new());
        };
        let Value::Mapping(map) = value else {
            problems.add(section, format!("must be {shape}"));
            return None;
        };
        let mut out = Vec::with_capacity(map.len());
        let mut ok = true;
        for (key, item) in map {
            let Some(name) = key.as_str() else {
                problems.add(section, "names must be strings");
                ok = false;
                continue;
            };
            match typed::<T>(item, &format!("{section}.{name}"), problems) {
                Some(s) => out.push((name.to_string(), s)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

fn default_hidden_headers() -> Vec<HeaderName> {
    vec![
        HeaderName(http::header::SERVER),
        HeaderName(http::HeaderName::from_static("x-powered-by")),
    ]
}

fn validate(parts: &Parts, problems: &mut Problems) {
    if let Some(server) = &parts.server {
        server.validate(problems);
    }
    if let Some(list) = &parts.listeners {
        listeners::validate(list, problems);
    }
    if let Some(upstreams) = &parts.upstreams {
        for (name, upstream) in upstreams {
            if name.is_empty() {
                problems.add("upstreams", "upstream names must not be empty");
            }
            upstream.validate(&format!("upstreams.{name}"), problems);
        }
    }
    if let Some(routes) = &parts.routes {
        if routes.is_empty() && problems.is_empty() {
            problems.add(
                "routes",
                "at least one route is needed, e.g. `- { name: all, upstream: app }`",
            );
        }
        if let Some(upstreams) = &parts.upstreams {
            let names: HashSet<&str> = upstreams.iter().map(|(n, _)| n.as_str()).collect();
            for (i, route) in routes {
                route.validate(&format!("routes[{i}]"), &names, problems);
            }
        }
        if let Some(profiles) = &parts.waf {
            let names: Vec<&str> = profiles.iter().map(|(n, _)| n.as_str()).collect();
            for (i, route) in routes {
                if let Some(profile) = &route.waf {
                    if !names.contains(&profile.as_str()) {
                        let known = if names.is_empty() {
                            "no profiles are defined; add one under `waf:`".to_string()
                        } else {
                            format!("defined profiles: {}", names.join(", "))
                        };
                        problems.add(
                            format!("routes[{i}].waf"),
                            format!("no WAF profile named `{profile}`; {known}"),
                        );
                    }
                }
            }
        }
        routes::validate_names(routes, problems);
    }
    if let (Some(Some(admin)), Some(listeners)) = (&parts.admin, &parts.listeners) {
        admin.validate(listeners, problems);
    }
    if let Some(Some(log)) = &parts.access_log {
        if log.path.is_empty() {
            problems.add("access_log.path", "give a file path or `stdout`");
        }
    }
    for (name, profile) in parts.waf.iter().flatten() {
        profile.validate(&format!("waf.{name}"), problems);
    }
    if parts.max_request_body.is_some_and(|size| size.0 == 0) {
        problems.add("max_request_body", "must be more than 0B");
    }
}

#[cfg(test)]
mod tests;

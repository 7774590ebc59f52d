//! The conditions a route can put on a request, each matched on its own, and the rank
//! that orders routes from most to least specific.

use http::{HeaderMap, HeaderName, Method};

/// What the route asks of the Host.
#[derive(Debug, Clone)]
pub enum HostMatch {
    Any,
    /// `api.example.com`, compared without case.
    Exact(String),
    /// `*.example.com` kept as `.example.com`: any subdomain at any depth, not the apex.
    Suffix(String),
}

impl HostMatch {
    pub fn new(pattern: Option<&str>) -> Self {
        match pattern {
            None => HostMatch::Any,
            Some(p) => match p.strip_prefix('*') {
                Some(suffix) => HostMatch::Suffix(suffix.to_ascii_lowercase()),
                None => HostMatch::Exact(p.to_ascii_lowercase()),
            },
        }
    }

    /// `host` is already stripped of its port.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Any => true,
            HostMatch::Exact(name) => host.eq_ignore_ascii_case(name),
            HostMatch::Suffix(suffix) => {
                host.len() > suffix.len()
                    && host.is_char_boundary(host.len() - suffix.len())
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }

    /// Exact beats wildcard beats none; a longer wildcard beats a shorter one.
    fn rank(&self) -> (u8, usize) {
        match self {
            HostMatch::Any => (0, 0),
            HostMatch::Suffix(s) => (1, s.len()),
            HostMatch::Exact(s) => (2, s.len()),
        }
    }
}

/// What the route asks of the path (the URI without its query).
#[derive(Debug, Clone)]
pub enum PathMatch {
    Any,
    Exact(String),
    /// A plain string prefix: `/api` also matches `/apiary`; write `/api/` to mean a folder.
    Prefix(String),
    Regex(regex::Regex),
}

impl PathMatch {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Regex(re) => re.is_match(path),
        }
    }

    /// Exact beats prefix (longer first) beats regex beats none.
    fn rank(&self) -> (u8, usize) {
        match self {
            PathMatch::Any => (0, 0),
            PathMatch::Regex(_) => (1, 0),
            PathMatch::Prefix(p) => (2, p.len()),
            PathMatch::Exact(p) => (3, p.len()),
        }
    }
}

/// A header that must be present, or present with one exact value.
#[derive(Debug, Clone)]
pub struct HeaderCondition {
    pub name: HeaderName,
    pub value: Option<String>,
}

impl HeaderCondition {
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(&self.name).iter();
        match &self.value {
            None => values.next().is_some(),
            Some(wanted) => values.any(|v| v.as_bytes() == wanted.as_bytes()),
        }
    }
}

/// Everything a route asks of a request.
#[derive(Debug, Clone)]
pub struct Conditions {
    pub host: HostMatch,
    pub path: PathMatch,
    /// Empty: any method.
    pub methods: Vec<Method>,
    pub headers: Vec<HeaderCondition>,
}

/// How specific a set of conditions is; higher sorts first. Host counts before path, path
/// before the number of method and header conditions.
pub type Specificity = ((u8, usize), (u8, usize), usize);

impl Conditions {
    pub fn matches(&self, host: &str, path: &str, method: &Method, headers: &HeaderMap) -> bool {
        self.host.matches(host)
            && self.path.matches(path)
            && (self.methods.is_empty() || self.methods.contains(method))
            && self.headers.iter().all(|h| h.matches(headers))
    }

    pub fn specificity(&self) -> Specificity {
        let extra = usize::from(!self.methods.is_empty()) + self.headers.len();
        (self.host.rank(), self.path.rank(), extra)
    }
}

/// The host of a request without its port or trailing dot: `Example.com:8080` -> `Example.com`.
pub fn host_without_port(host: &str) -> &str {
    let host = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        match rest.find(']') {
            Some(end) => &host[..end + 2],
            None => host,
        }
    } else {
        match host.rfind(':') {
            Some(colon) => &host[..colon],
            None => host,
        }
    };
    host.strip_suffix('.').unwrap_or(host)
}

//! Which route a request takes.
//!
//! Precedence: the most specific route wins, and ties go to config order. Specificity is
//! compared in this order: the host (exact, then the longest `*.` wildcard, then none),
//! then the path (exact, then the longest prefix, then regex, then none), then the number
//! of method and header conditions. Routes are sorted once when the config is built, so a
//! lookup is the first match in that order.

pub mod matcher;
pub mod split;

use crate::config::routes::RouteSection;
use crate::metrics::RouteMetrics;
use crate::rewrite::HeaderRewrite;
use crate::waf::profile::WafProfile;
use http::{HeaderMap, Method};
use matcher::{Conditions, HeaderCondition, HostMatch, PathMatch};
use split::Split;
use std::sync::Arc;

/// One route, ready to match.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    conditions: Conditions,
    /// Index of the upstream in the snapshot's upstream set (the baseline of a split).
    pub upstream: usize,
    /// Traffic sent to other upstreams by weight; shared with the next config when a reload
    /// leaves it unchanged, so weights, ramps and rollback windows carry over.
    pub split: Option<Arc<Split>>,
    pub request_headers: HeaderRewrite,
    pub response_headers: HeaderRewrite,
    pub metrics: RouteMetrics,
    /// The WAF profile inspecting this route's requests.
    pub waf: Option<Arc<WafProfile>>,
}

impl Route {
    /// `upstream` is the index the route's upstream name resolved to.
    pub fn from_config(
        section: &RouteSection,
        upstream: usize,
        split: Option<Arc<Split>>,
        metrics: RouteMetrics,
    ) -> Self {
        let m = &section.matches;
        let path = match &m.path {
            None => PathMatch::Any,
            Some(p) => match (&p.exact, &p.prefix, &p.regex) {
                (Some(e), _, _) => PathMatch::Exact(e.clone()),
                (_, Some(pre), _) => PathMatch::Prefix(pre.clone()),
                (_, _, Some(re)) => PathMatch::Regex(re.0.clone()),
                _ => PathMatch::Any,
            },
        };
        Route {
            name: section.name.clone(),
            conditions: Conditions {
                host: HostMatch::new(m.host.as_deref()),
                path,
                methods: m
                    .methods
                    .iter()
                    .flatten()
                    .map(|method| method.0.clone())
                    .collect(),
                headers: m
                    .headers
                    .iter()
                    .map(|h| HeaderCondition {
                        name: h.name.0.clone(),
                        value: h.value.clone(),
                    })
                    .collect(),
            },
            upstream,
            split,
            request_headers: HeaderRewrite::from_config(&section.request_headers),
            response_headers: HeaderRewrite::from_config(&section.response_headers),
            metrics,
            waf: None,
        }
    }
}

/// What routing looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// Host header (or URI authority), with or without a port.
    pub host: &'a str,
    /// The path without the query.
    pub path: &'a str,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
}

/// The routes of one config, most specific first.
#[derive(Debug, Default)]
pub struct Router {
    /// (index in the config file, route), sorted by specificity then file order.
    routes: Vec<(usize, Route)>,
}

impl Router {
    /// `routes` in config order.
    pub fn new(routes: Vec<Route>) -> Self {
        let mut routes: Vec<(usize, Route)> = routes.into_iter().enumerate().collect();
        // Stable: equal specificity keeps file order.
        routes.sort_by_key(|(_, route)| std::cmp::Reverse(route.conditions.specificity()));
        Router { routes }
    }

    /// The route for a request, and its position (for [`Router::route`]).
    pub fn find(&self, req: &RequestInfo<'_>) -> Option<(usize, &Route)> {
        let host = matcher::host_without_port(req.host);
        self.routes
            .iter()
            .enumerate()
            .find(|(_, (_, r))| {
                r.conditions
                    .matches(host, req.path, req.method, req.headers)
            })
            .map(|(position, (_, r))| (position, r))
    }

    /// The route at a position returned by [`Router::find`].
    pub fn route(&self, position: usize) -> Option<&Route> {
        self.routes.get(position).map(|(_, r)| r)
    }

    /// Every route's split, with the route's name.
    pub fn splits(&self) -> impl Iterator<Item = (&str, &Arc<Split>)> {
        self.routes
            .iter()
            .filter_map(|(_, r)| r.split.as_ref().map(|s| (r.name.as_str(), s)))
    }

    /// The route named `name`.
    pub fn named(&self, name: &str) -> Option<&Route> {
        self.routes.iter().map(|(_, r)| r).find(|r| r.name == name)
    }

    /// Routes in config order.
    pub fn in_file_order(&self) -> Vec<&Route> {
        let mut routes: Vec<&(usize, Route)> = self.routes.iter().collect();
        routes.sort_by_key(|(i, _)| *i);
        routes.into_iter().map(|(_, r)| r).collect()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests;

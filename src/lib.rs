//! Gatehouse: a programmable edge proxy on Pingora, configured by one strict YAML file.
//!
//! The modules below are the features; each owns one concern and the proxy hooks in
//! [`proxy`] call into them.

pub mod access_log;
pub mod admin;
pub mod config;
pub mod daemon;
pub mod forwarding;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod request_id;
pub mod rewrite;
pub mod routing;
pub mod server;
pub mod signals;
pub mod snapshot;
pub mod upstream;
pub mod waf;

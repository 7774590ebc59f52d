//! End-to-end tests: the real `gatehouse` binary, real YAML files, real HTTP over loopback
//! to real origins on ephemeral ports. One test binary, one module per capability.

mod e2e {
    mod access_log;
    mod admin;
    pub mod harness;
    pub mod raw_client;

    mod balancing;
    mod cli;
    mod config_check;
    mod errors;
    mod forwarding;
    mod health;
    mod keepalive;
    mod reload;
    mod routing;
    mod split;
    mod steady;
    mod upgrade;
    mod waf;
    mod waf_crs;
    mod waf_libinjection;
    mod waf_response;
}

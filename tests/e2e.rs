//! End-to-end tests: the real `gatehouse` binary, real YAML files, real HTTP over loopback
//! to real origins on ephemeral ports. One test binary, one module per capability.

mod e2e {
    pub mod harness;

    mod balancing;
    mod cli;
    mod config_check;
    mod errors;
    mod forwarding;
    mod health;
    mod keepalive;
    mod routing;
    mod split;
}

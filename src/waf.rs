//! The web application firewall: a native engine for SecLang, the rule language of
//! ModSecurity, so that the OWASP Core Rule Set runs in-process.
//!
//! Layers, each in its own module: [`seclang`] reads rule files into directives,
//! [`ruleset`] compiles them (targets, operators, transformations, actions) and reports
//! anything it cannot run, [`transaction`] turns a request into collections, and
//! [`engine`] runs the phases and decides.

pub mod actions;
pub mod body;
pub mod conformance;
pub mod engine;
pub mod folding;
pub mod guard;
pub mod injection;
pub mod intern;
pub mod macros;
pub mod operators;
pub mod prefilter;
pub mod profile;
pub mod response_guard;
pub mod ruleset;
pub mod seclang;
pub mod targets;
pub mod transaction;
pub mod transforms;
pub mod tx;

pub use engine::{Fired, Interruption, Transaction};
pub use ruleset::{LoadProblem, LoadReport, RuleSet};
pub use transaction::{RequestHead, ResponseHead};

use std::path::Path;

/// Loads rule files in order (each may `Include` others) into one rule set.
pub fn load_files(files: &[&Path]) -> Result<RuleSet, seclang::SecLangError> {
    let mut directives = Vec::new();
    for file in files {
        directives.extend(seclang::read_file(file)?);
    }
    Ok(ruleset::compile(&directives))
}

/// Compiles SecLang text (for rules given inline, and the embedded set).
pub fn load_text(text: &str, origin: &Path) -> Result<RuleSet, seclang::SecLangError> {
    Ok(ruleset::compile(&seclang::parse_text(text, origin)?))
}

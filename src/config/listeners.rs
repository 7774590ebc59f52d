//! `listeners:` — the addresses the proxy accepts client connections on.

use super::errors::Problems;
use super::values::Address;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    pub address: Address,
}

pub fn validate(listeners: &[(usize, Listener)], problems: &mut Problems) {
    if listeners.is_empty() {
        problems.add(
            "listeners",
            "at least one listener is needed, e.g. `- { name: public, address: \"0.0.0.0:8080\" }`",
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut addresses: HashMap<Address, usize> = HashMap::new();
    for (i, listener) in listeners {
        let i = *i;
        if listener.name.is_empty() {
            problems.add(format!("listeners[{i}].name"), "must not be empty");
        }
        if let Some(first) = names.insert(&listener.name, i) {
            problems.add(
                format!("listeners[{i}].name"),
                format!(
                    "duplicate listener name {:?} (also listeners[{first}])",
                    listener.name
                ),
            );
        }
        let overlap = addresses.iter().find(|(other, _)| {
            let (a, b) = (listener.address.0, other.0);
            a.port() == b.port()
                && a.is_ipv4() == b.is_ipv4()
                && a.ip() != b.ip()
                && (a.ip().is_unspecified() || b.ip().is_unspecified())
        });
        if let Some((other, first)) = overlap {
            problems.add(
                format!("listeners[{i}].address"),
                format!(
                    "{} overlaps {other} (listeners[{first}]): a wildcard address already takes that port on every interface",
                    listener.address
                ),
            );
        }
        if let Some(first) = addresses.insert(listener.address, i) {
            problems.add(
                format!("listeners[{i}].address"),
                format!(
                    "duplicate listen address {} (also listeners[{first}]); each address can be bound once",
                    listener.address
                ),
            );
        }
    }
}

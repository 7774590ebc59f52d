//! `admin:` — the admin API's own listener (loopback by default) and where its bearer token
//! comes from.

use super::errors::Problems;
use super::listeners::Listener;
use super::values::Address;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    #[serde(default = "default_address")]
    pub address: Address,
    /// The environment variable holding the bearer token that state-changing calls need.
    /// Unset or empty: those calls are refused.
    #[serde(default = "default_token_env")]
    pub token_env: String,
}

fn default_address() -> Address {
    Address(([127, 0, 0, 1], 9900).into())
}
fn default_token_env() -> String {
    "GATEHOUSE_ADMIN_TOKEN".into()
}

impl AdminSection {
    pub fn validate(&self, listeners: &[(usize, Listener)], problems: &mut Problems) {
        for (i, listener) in listeners {
            let (a, b) = (self.address.0, listener.address.0);
            let clash = a.port() == b.port()
                && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified());
            if clash {
                problems.add(
                    "admin.address",
                    format!(
                        "{} clashes with listeners[{i}] ({}): the admin API needs its own port",
                        self.address, listener.address
                    ),
                );
            }
        }
        if self.token_env.is_empty() {
            problems.add("admin.token_env", "must name an environment variable");
        }
    }
}

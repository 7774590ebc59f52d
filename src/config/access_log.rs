//! `access_log:` — one line per request, as JSON or nginx's "combined" format, to a file
//! (reopened on SIGUSR1 for rotation) or to stdout.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogSection {
    /// A file path, or `stdout`.
    pub path: String,
    #[serde(default)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Json,
    Combined,
}

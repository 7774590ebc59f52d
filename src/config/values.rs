//! Typed scalar values of the config file: durations, sizes, header names and values,
//! regexes, methods, socket addresses.
//!
//! Each one parses itself while the file is deserialized, so a bad value is reported with
//! the key path and line of the value itself, and the rest of the program never sees a
//! string it would have to parse again.

use serde::de::{Deserialize, Deserializer, Error as _};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Reads a string, whatever type the YAML scalar was written as, and names the expected form
/// in the error.
fn string_of<'de, D: Deserializer<'de>>(d: D, expected: &str) -> Result<String, D::Error> {
    let value = serde_yaml::Value::deserialize(d)?;
    match value {
        serde_yaml::Value::String(s) => Ok(s),
        serde_yaml::Value::Number(n) => Ok(n.to_string()),
        other => Err(D::Error::custom(format!(
            "expected {expected}, got {}",
            describe(&other)
        ))),
    }
}

fn describe(value: &serde_yaml::Value) -> &'static str {
    match value {
        serde_yaml::Value::Null => "nothing (null)",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a mapping",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

/// A duration written with a unit: `500ms`, `2s`, `1m`, `1h`, `30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const FORM: &str = "a duration with a unit, such as \"500ms\", \"2s\", \"1m\"";
        let text = string_of(d, FORM)?;
        if text.trim().chars().all(|c| c.is_ascii_digit()) {
            return Err(D::Error::custom(format!(
                "duration {text:?} has no unit; write e.g. \"{text}s\" or \"{text}ms\""
            )));
        }
        humantime::parse_duration(text.trim())
            .map(Duration)
            .map_err(|e| D::Error::custom(format!("invalid duration {text:?} ({e}); use {FORM}")))
    }
}

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
    pub fn get(self) -> std::time::Duration {
        self.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A size in bytes written with a unit: `512B`, `64KiB`, `10MiB`, `1GB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const FORM: &str = "a size such as \"64KiB\", \"10MiB\", \"1GB\"";
        let text = string_of(d, FORM)?;
        if text.trim().chars().all(|c| c.is_ascii_digit()) {
            return Err(D::Error::custom(format!(
                "size {text:?} has no unit; write e.g. \"{text}B\" or \"{text}KiB\""
            )));
        }
        bytesize::ByteSize::from_str(text.trim())
            .map(|b| Size(b.as_u64()))
            .map_err(|e| D::Error::custom(format!("invalid size {text:?} ({e}); use {FORM}")))
    }
}

/// An HTTP header name, checked for legal characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderName(pub http::HeaderName);

impl<'de> Deserialize<'de> for HeaderName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = string_of(d, "a header name")?;
        http::HeaderName::from_bytes(text.as_bytes())
            .map(HeaderName)
            .map_err(|_| {
                D::Error::custom(format!(
                    "{text:?} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"
                ))
            })
    }
}

/// An HTTP header value, checked for legal characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderValue(pub http::HeaderValue);

impl<'de> Deserialize<'de> for HeaderValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = string_of(d, "a header value")?;
        http::HeaderValue::from_str(&text)
            .map(HeaderValue)
            .map_err(|_| {
                D::Error::custom(format!(
                    "{text:?} is not a valid header value (no control characters or newlines)"
                ))
            })
    }
}

/// A regular expression, compiled when the file is read.
#[derive(Debug, Clone)]
pub struct Regex(pub regex::Regex);

impl<'de> Deserialize<'de> for Regex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = string_of(d, "a regular expression")?;
        regex::Regex::new(&text).map(Regex).map_err(|e| {
            let first_line = e.to_string();
            let detail = first_line.lines().last().unwrap_or("invalid").trim();
            D::Error::custom(format!("invalid regex {text:?}: {detail}"))
        })
    }
}

/// An HTTP method name such as `GET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method(pub http::Method);

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = string_of(d, "an HTTP method")?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(D::Error::custom(format!(
                "{text:?} is not an HTTP method; write it in capitals, e.g. GET or POST"
            )));
        }
        http::Method::from_bytes(text.as_bytes())
            .map(Method)
            .map_err(|_| D::Error::custom(format!("{text:?} is not an HTTP method")))
    }
}

/// An `IP:port` socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address(pub SocketAddr);

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = string_of(d, "an address such as \"127.0.0.1:8080\"")?;
        SocketAddr::from_str(text.trim()).map(Address).map_err(|_| {
            D::Error::custom(format!(
                "{text:?} is not an IP:port address; write e.g. \"127.0.0.1:8080\" or \"[::1]:8080\" (host names are not resolved)"
            ))
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A percentage written `5%` (or a bare number of percent), 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = string_of(d, "a percentage such as \"5%\"")?;
        let number = text.trim().strip_suffix('%').unwrap_or(text.trim()).trim();
        match number.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(Percent(p)),
            _ => Err(D::Error::custom(format!(
                "{text:?} is not a percentage from 0% to 100%; write e.g. \"5%\""
            ))),
        }
    }
}

impl Percent {
    /// As a fraction: 5% is 0.05.
    pub fn fraction(self) -> f64 {
        self.0 / 100.0
    }
}

/// An IP network in CIDR notation; a bare address means a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub ipnet::IpNet);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = string_of(d, "a CIDR such as \"10.0.0.0/8\"")?;
        let text = text.trim();
        if let Ok(net) = ipnet::IpNet::from_str(text) {
            return Ok(Cidr(net));
        }
        std::net::IpAddr::from_str(text)
            .map(|ip| Cidr(ipnet::IpNet::from(ip)))
            .map_err(|_| {
                D::Error::custom(format!(
                    "{text:?} is not a network; write e.g. \"10.0.0.0/8\" or \"192.0.2.7\""
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: for<'de> Deserialize<'de>>(yaml: &str) -> Result<T, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse::<Duration>("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse::<Duration>("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(
            parse::<Duration>("30d"),
            Ok(Duration::from_secs(30 * 86_400))
        );
        let err = parse::<Duration>("5").expect_err("a bare number is ambiguous");
        assert!(err.contains("no unit"), "{err}");
        assert!(parse::<Duration>("soon").is_err());
    }

    #[test]
    fn sizes_need_a_unit() {
        assert_eq!(parse::<Size>("64KiB"), Ok(Size(64 * 1024)));
        assert_eq!(parse::<Size>("1MB"), Ok(Size(1_000_000)));
        assert!(parse::<Size>("1024").is_err());
        assert!(parse::<Size>("lots").is_err());
    }

    #[test]
    fn header_names_and_values_are_checked() {
        assert!(parse::<HeaderName>("X-Env").is_ok());
        assert!(parse::<HeaderName>("\"X Env\"").is_err());
        assert!(parse::<HeaderValue>("prod").is_ok());
        assert!(parse::<HeaderValue>("\"a\\nb\"").is_err());
    }

    #[test]
    fn methods_are_capitalised_tokens() {
        assert_eq!(parse::<Method>("GET").map(|m| m.0), Ok(http::Method::GET));
        assert!(parse::<Method>("get").is_err());
    }

    #[test]
    fn cidrs_accept_bare_addresses() {
        let net = parse::<Cidr>("192.0.2.7").expect("bare address");
        assert_eq!(net.0.prefix_len(), 32);
        assert!(parse::<Cidr>("10.0.0.0/8").is_ok());
        assert!(parse::<Cidr>("10.0.0.0/33").is_err());
    }

    #[test]
    fn percentages_take_a_sign_or_not() {
        assert_eq!(parse::<Percent>("\"5%\""), Ok(Percent(5.0)));
        assert_eq!(parse::<Percent>("12.5"), Ok(Percent(12.5)));
        assert!(parse::<Percent>("\"150%\"").is_err());
        assert!(parse::<Percent>("lots").is_err());
    }

    #[test]
    fn addresses_are_ip_and_port() {
        assert!(parse::<Address>("\"127.0.0.1:8080\"").is_ok());
        assert!(parse::<Address>("localhost:80").is_err());
        assert!(parse::<Address>("\"127.0.0.1\"").is_err());
    }

    #[test]
    fn bad_regex_names_the_pattern() {
        let err = parse::<Regex>("\"^/(a\"").expect_err("unclosed group");
        assert!(err.contains("^/(a"), "{err}");
    }
}

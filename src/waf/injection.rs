//! libinjection's detectors behind `@detectSQLi` / `@detectXSS`. SQL injection is our
//! own port of the C reference ([`sqli`]); XSS comes from the `libinjectionrs` crate,
//! which agrees with the reference on every XSS line of its corpus. Both are checked
//! against the reference's verdicts on its whole corpus by tests/e2e/waf_libinjection.rs.

pub mod sqli;

/// The libinjection fingerprint when `input` is SQL injection.
pub fn sqli_fingerprint(input: &[u8]) -> Option<String> {
    sqli::detect(input)
}

pub fn is_xss(input: &[u8]) -> bool {
    libinjectionrs::detect_xss(input).is_injection()
}

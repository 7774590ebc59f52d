//! libinjection's SQL-injection and XSS detectors, behind `@detectSQLi` / `@detectXSS`.
//! XSS comes from the `libinjectionrs` crate (it agrees with the C reference on every
//! line of its test corpus); SQLi also does for now, with its known gaps recorded in
//! the corpus test.

/// The libinjection fingerprint when `input` is SQL injection.
pub fn sqli_fingerprint(input: &[u8]) -> Option<String> {
    let result = libinjectionrs::detect_sqli(input);
    if !result.is_injection() {
        return None;
    }
    Some(
        result
            .fingerprint
            .map(|f| f.to_string())
            .unwrap_or_default(),
    )
}

pub fn is_xss(input: &[u8]) -> bool {
    libinjectionrs::detect_xss(input).is_injection()
}

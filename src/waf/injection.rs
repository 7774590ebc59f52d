//! libinjection's detectors behind `@detectSQLi` / `@detectXSS`. SQL injection is our
//! own port of the C reference ([`sqli`]); XSS comes from the `libinjectionrs` crate,
//! which agrees with the reference on every XSS line of its corpus. Both are checked
//! against the reference's verdicts on its whole corpus by tests/e2e/waf_libinjection.rs.

pub mod sqli;

/// The libinjection fingerprint when `input` is SQL injection.
pub fn sqli_fingerprint(input: &[u8]) -> Option<String> {
    sqli::detect(input)
}

/// libinjection's XSS verdict. Its detector answers yes only on a doctype, a tag, a
/// comment (each opened by `<`) or an attribute value after a listed attribute name
/// (reached only through `=`), in each of its five HTML contexts: a value with neither
/// byte is answered here without running the five tokenizers (most request values).
pub fn is_xss(input: &[u8]) -> bool {
    memchr::memchr2(b'<', b'=', input).is_some() && libinjectionrs::detect_xss(input).is_injection()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs that look like script but hold neither `<` nor `=`: the detector itself
    /// answers no to each, so the shortcut changes no verdict. (The whole reference
    /// corpus is checked through `is_xss` by tests/e2e/waf_libinjection.rs.)
    #[test]
    fn values_without_angle_bracket_or_equals_are_not_xss_for_the_detector_either() {
        for input in [
            "javascript:alert(1)",
            "x onerror alert(1) onload",
            "\" onmouseover alert(1) \"",
            "' style expression(alert(1)) '",
            "` onfocus autofocus `",
            "!DOCTYPE html",
            "[if IE]> xss",
            "vbscript:msgbox(1) data:text/html;base64,PHNjcmlwdD4",
        ] {
            assert!(
                !libinjectionrs::detect_xss(input.as_bytes()).is_injection(),
                "{input}"
            );
            assert!(!is_xss(input.as_bytes()));
        }
        assert!(is_xss(b"<script>alert(1)</script>"));
        assert!(is_xss(b"x onerror=alert(1)"));
    }
}

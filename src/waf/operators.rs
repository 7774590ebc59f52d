//! Rule operators (`@rx`, `@pm`, `@detectSQLi`, ...), compiled once at load. Every regex
//! is built once with PCRE's byte semantics (`.` matches any byte, newline included);
//! phrase lists become one Aho-Corasick automaton.

use super::injection;
use super::macros::{Macro, MacroSource};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use ipnet::IpNet;
use regex::bytes::{Regex, RegexBuilder};
use smallvec::{smallvec, SmallVec};
use std::borrow::Cow;
use std::net::IpAddr;
use std::path::Path;

#[derive(Debug)]
pub enum Operator {
    Rx(Regex),
    /// A regex every value matches whole (`^.*$`, as CRS 920450 uses to capture each
    /// header name): no regex to run, and TX.0 is the value.
    RxWhole,
    /// The automaton, and the phrases (for the rule set's literal prefilter).
    Pm(AhoCorasick, Vec<Vec<u8>>),
    StrEq(Macro),
    Contains(Macro),
    ContainsWord(Macro),
    BeginsWith(Macro),
    EndsWith(Macro),
    Within(Macro),
    Eq(Macro),
    Ge(Macro),
    Gt(Macro),
    Le(Macro),
    Lt(Macro),
    IpMatch(Vec<IpNet>),
    ValidateByteRange(Box<[bool; 256]>),
    ValidateUrlEncoding,
    ValidateUtf8Encoding,
    DetectSqli,
    DetectXss,
    UnconditionalMatch,
    NoMatch,
}

impl Operator {
    /// Whether its answer on a value depends on the value's bytes alone (not on TX or
    /// other macros).
    pub fn value_only(&self) -> bool {
        self.argument().is_none_or(|m| m.is_literal())
    }

    /// The argument, when it may hold macros (`@streq %{tx.x}`).
    pub fn argument(&self) -> Option<&Macro> {
        match self {
            Operator::StrEq(m)
            | Operator::Contains(m)
            | Operator::ContainsWord(m)
            | Operator::BeginsWith(m)
            | Operator::EndsWith(m)
            | Operator::Within(m)
            | Operator::Eq(m)
            | Operator::Ge(m)
            | Operator::Gt(m)
            | Operator::Le(m)
            | Operator::Lt(m) => Some(m),
            _ => None,
        }
    }
}

/// What a match captured (TX.0 to TX.9); one capture, the usual case, is kept inline.
pub type Captures = SmallVec<[Capture; 1]>;

/// One captured group: inline up to 32 bytes (a header name, a phrase, a fingerprint).
pub type Capture = SmallVec<[u8; 32]>;

/// Builds a regex the way ModSecurity's PCRE sees it.
pub fn build_regex(pattern: &str) -> Result<Regex, String> {
    let pattern = &byte_escapes(pattern);
    let build = |unicode: bool| {
        RegexBuilder::new(pattern)
            .unicode(unicode)
            .dot_matches_new_line(true)
            .size_limit(256 << 20)
            .dfa_size_limit(64 << 20)
            .build()
    };
    build(false)
        .or_else(|_| build(true))
        .map_err(|e| format!("regex does not compile: {e}"))
}

/// PCRE without UTF mode reads `\x{e2}` as the byte 0xE2; the regex crate reads it as
/// the code point U+00E2 even with Unicode off. Rewrite the one- and two-digit forms to
/// `\xE2`, which it reads as a byte.
pub fn byte_escapes(pattern: &str) -> String {
    let b = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if b[i + 1] == b'x' && b.get(i + 2) == Some(&b'{') {
                let digits = b[i + 3..]
                    .iter()
                    .take_while(|c| c.is_ascii_hexdigit())
                    .count();
                if (1..=2).contains(&digits) && b.get(i + 3 + digits) == Some(&b'}') {
                    let hex = &pattern[i + 3..i + 3 + digits];
                    out.push_str(&format!("\\x{hex:0>2}"));
                    i += 4 + digits;
                    continue;
                }
            }
            // PCRE lets any punctuation be escaped (`\!`, `\<`); the regex crate only
            // its own metacharacters. A hex escape means the same byte to both.
            let escaped = pattern[i + 1..].chars().next().unwrap_or('\\');
            if escaped.is_ascii_punctuation() {
                out.push_str(&format!("\\x{:02x}", escaped as u32));
            } else {
                // Kept whole (the escaped character may be multi-byte).
                out.push('\\');
                out.push(escaped);
            }
            i += 1 + escaped.len_utf8();
            continue;
        }
        // PCRE reads a `{` that starts no counted repetition ({2}, {2,}, {2,5}) as a
        // literal; the regex crate refuses it.
        if b[i] == b'{' && !counted_repetition(&b[i + 1..]) {
            out.push_str("\\x7b");
            i += 1;
            continue;
        }
        let ch = pattern[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Whether `rest` (after a `{`) is `n}`, `n,}` or `n,m}`.
fn counted_repetition(rest: &[u8]) -> bool {
    let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    let n = digits(rest);
    if n == 0 {
        return false;
    }
    match rest.get(n) {
        Some(b'}') => true,
        Some(b',') => {
            let m = digits(&rest[n + 1..]);
            rest.get(n + 1 + m) == Some(&b'}')
        }
        _ => false,
    }
}

impl Operator {
    /// Compiles `@name argument`; `rules_dir` resolves `@pmFromFile`.
    pub fn compile(name: &str, arg: &str, rules_dir: &Path) -> Result<Operator, String> {
        let macro_arg = || Macro::parse(arg);
        Ok(match name.to_ascii_lowercase().as_str() {
            "rx" if matches!(arg, "^.*$" | ".*" | "^.*" | ".*$") => Operator::RxWhole,
            "rx" => Operator::Rx(build_regex(arg)?),
            "pm" => phrases(arg.split_whitespace().map(str::to_string).collect())?,
            "pmfromfile" | "pmf" => {
                let mut all = Vec::new();
                for file in arg.split_whitespace() {
                    let path = rules_dir.join(file);
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("@pmFromFile {}: {e}", path.display()))?;
                    all.extend(
                        text.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && !l.starts_with('#'))
                            .map(str::to_string),
                    );
                }
                phrases(all)?
            }
            "streq" => Operator::StrEq(macro_arg()?),
            "contains" => Operator::Contains(macro_arg()?),
            "containsword" => Operator::ContainsWord(macro_arg()?),
            "beginswith" => Operator::BeginsWith(macro_arg()?),
            "endswith" => Operator::EndsWith(macro_arg()?),
            "within" => Operator::Within(macro_arg()?),
            "eq" => Operator::Eq(macro_arg()?),
            "ge" => Operator::Ge(macro_arg()?),
            "gt" => Operator::Gt(macro_arg()?),
            "le" => Operator::Le(macro_arg()?),
            "lt" => Operator::Lt(macro_arg()?),
            "ipmatch" => Operator::IpMatch(
                arg.split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(parse_net)
                    .collect::<Result<_, _>>()?,
            ),
            "validatebyterange" => Operator::ValidateByteRange(byte_ranges(arg)?),
            "validateurlencoding" => Operator::ValidateUrlEncoding,
            "validateutf8encoding" => Operator::ValidateUtf8Encoding,
            "detectsqli" => Operator::DetectSqli,
            "detectxss" => Operator::DetectXss,
            "unconditionalmatch" => Operator::UnconditionalMatch,
            "nomatch" => Operator::NoMatch,
            other => return Err(format!("unsupported operator @{other}")),
        })
    }

    /// Runs the operator on one (transformed) value. With `capture`, the capture groups
    /// are returned on a match.
    pub fn matches(
        &self,
        value: &[u8],
        source: &dyn MacroSource,
        capture: bool,
    ) -> Option<Captures> {
        let yes = |c: Captures| Some(c);
        match self {
            Operator::RxWhole => match capture {
                true => yes(smallvec![Capture::from_slice(value)]),
                false => Some(Captures::new()),
            },
            Operator::Rx(re) => {
                // The lazy DFA answers "does it match" fast; groups only for a match.
                if !re.is_match(value) {
                    return None;
                }
                if capture {
                    let caps = re.captures(value)?;
                    yes((0..caps.len().min(10))
                        .map(|i| {
                            caps.get(i)
                                .map(|m| Capture::from_slice(m.as_bytes()))
                                .unwrap_or_default()
                        })
                        .collect())
                } else {
                    Some(Captures::new())
                }
            }
            Operator::Pm(ac, _) => {
                let m = ac.find(value)?;
                yes(smallvec![Capture::from_slice(&value[m.start()..m.end()])])
            }
            Operator::StrEq(m) => (m.expand(source).as_ref() == value).then(Captures::new),
            Operator::Contains(m) => {
                let needle = m.expand(source);
                find(value, &needle).map(|_| smallvec![Capture::from_slice(&needle)])
            }
            Operator::ContainsWord(m) => {
                let needle = m.expand(source);
                contains_word(value, &needle).then(|| smallvec![Capture::from_slice(&needle)])
            }
            Operator::BeginsWith(m) => {
                let needle = m.expand(source);
                value
                    .starts_with(&needle)
                    .then(|| smallvec![Capture::from_slice(&needle)])
            }
            Operator::EndsWith(m) => {
                let needle = m.expand(source);
                value
                    .ends_with(&needle)
                    .then(|| smallvec![Capture::from_slice(&needle)])
            }
            Operator::Within(m) => {
                let haystack = m.expand(source);
                (value.is_empty() || find(&haystack, value).is_some())
                    .then(|| smallvec![Capture::from_slice(value)])
            }
            Operator::Eq(m) => compare(value, m, source, |a, b| a == b),
            Operator::Ge(m) => compare(value, m, source, |a, b| a >= b),
            Operator::Gt(m) => compare(value, m, source, |a, b| a > b),
            Operator::Le(m) => compare(value, m, source, |a, b| a <= b),
            Operator::Lt(m) => compare(value, m, source, |a, b| a < b),
            Operator::IpMatch(nets) => {
                let ip: IpAddr = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
                nets.iter().any(|n| n.contains(&ip)).then(Captures::new)
            }
            Operator::ValidateByteRange(allowed) => value
                .iter()
                .any(|b| !allowed[usize::from(*b)])
                .then(Captures::new),
            Operator::ValidateUrlEncoding => (!valid_url_encoding(value)).then(Captures::new),
            Operator::ValidateUtf8Encoding => {
                std::str::from_utf8(value).is_err().then(Captures::new)
            }
            Operator::DetectSqli => injection::sqli_fingerprint(value)
                .map(|fp| smallvec![Capture::from_slice(fp.as_bytes())]),
            Operator::DetectXss => injection::is_xss(value).then(Captures::new),
            Operator::UnconditionalMatch => Some(Captures::new()),
            Operator::NoMatch => None,
        }
    }
}

fn phrases(list: Vec<String>) -> Result<Operator, String> {
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(&list)
        .map_err(|e| format!("phrase list: {e}"))?;
    Ok(Operator::Pm(
        ac,
        list.into_iter().map(String::into_bytes).collect(),
    ))
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("@ipMatch: {s:?} is not an address or network"))
}

fn byte_ranges(arg: &str) -> Result<Box<[bool; 256]>, String> {
    let mut allowed = Box::new([false; 256]);
    for part in arg.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: u8 = lo
            .trim()
            .parse()
            .map_err(|_| format!("bad byte range {part}"))?;
        let hi: u8 = hi
            .trim()
            .parse()
            .map_err(|_| format!("bad byte range {part}"))?;
        for b in lo..=hi {
            allowed[usize::from(b)] = true;
        }
    }
    Ok(allowed)
}

/// Haystacks up to this long are searched without building a searcher.
const SHORT_HAYSTACK: usize = 256;

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if haystack.len() > SHORT_HAYSTACK {
        return memchr::memmem::find(haystack, needle);
    }
    // A short list (CRS's `@within %{tx.restricted_headers_basic}`, once per request
    // header): `memmem` would build (and allocate) a searcher per call, which costs more
    // than the search. Candidates by the needle's second byte (its first is often a
    // separator such as `/`, on every entry of the list).
    let at = usize::from(needle.len() > 1);
    memchr::memchr_iter(needle[at], haystack.get(at..)?)
        .find(|&start| haystack[start..].starts_with(needle))
}

fn contains_word(value: &[u8], word: &[u8]) -> bool {
    if word.is_empty() {
        return true;
    }
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    memchr::memmem::find_iter(value, word).any(|start| {
        let end = start + word.len();
        (start == 0 || !is_word(value[start - 1])) && (end == value.len() || !is_word(value[end]))
    })
}

/// C's `atoi`: leading spaces, a sign, digits; anything else ends it (0 if none).
pub fn atoi(value: &[u8]) -> i64 {
    let mut i = 0;
    while i < value.len() && super::transforms::is_space(value[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < value.len() && (value[i] == b'-' || value[i] == b'+') {
        negative = value[i] == b'-';
        i += 1;
    }
    let mut n: i64 = 0;
    while i < value.len() && value[i].is_ascii_digit() {
        n = n
            .saturating_mul(10)
            .saturating_add(i64::from(value[i] - b'0'));
        i += 1;
    }
    if negative {
        -n
    } else {
        n
    }
}

fn compare(
    value: &[u8],
    arg: &Macro,
    source: &dyn MacroSource,
    op: fn(i64, i64) -> bool,
) -> Option<Captures> {
    let target: Cow<[u8]> = arg.expand(source);
    op(atoi(value), atoi(&target)).then(Captures::new)
}

fn valid_url_encoding(value: &[u8]) -> bool {
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            if i + 2 >= value.len() {
                return false;
            }
            if !(value[i + 1].is_ascii_hexdigit() && value[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::targets::Collection;

    struct NoVars;
    impl MacroSource for NoVars {
        fn lookup(&self, _: Collection, _: Option<&str>) -> Option<Cow<'_, [u8]>> {
            None
        }
        fn rule_field(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn op(name: &str, arg: &str) -> Operator {
        Operator::compile(name, arg, Path::new(".")).expect("compiles")
    }

    #[test]
    fn short_and_long_haystacks_are_searched_alike() {
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..20_000 {
            let hay: Vec<u8> = (0..rng.usize(0..300))
                .map(|_| b"/ab"[rng.usize(0..3)])
                .collect();
            let needle: Vec<u8> = (0..rng.usize(0..5))
                .map(|_| b"/ab"[rng.usize(0..3)])
                .collect();
            assert_eq!(
                find(&hay, &needle),
                memchr::memmem::find(&hay, &needle),
                "{hay:?} {needle:?}"
            );
        }
    }

    #[test]
    fn regex_has_pcre_byte_semantics_and_captures() {
        let rx = op("rx", "a.c(\\d+)");
        assert_eq!(
            rx.matches(b"xa\nc42", &NoVars, true),
            Some(smallvec![
                Capture::from_slice(b"a\nc42"),
                Capture::from_slice(b"42")
            ])
        );
        assert!(op("rx", "^\\xff$")
            .matches(&[0xff], &NoVars, false)
            .is_some());
        // PCRE reads \x{e2} as a byte: a UTF-8 quotation mark matches byte by byte.
        assert!(op("rx", r"\x{e2}\x80[\x98\x99]")
            .matches("\u{2019}".as_bytes(), &NoVars, false)
            .is_some());
        assert_eq!(
            byte_escapes(r"\\x{e2}\x{9}\x{2019}"),
            r"\x5cx\x7be2}\x09\x{2019}"
        );
        assert_eq!(byte_escapes(r"[^\!\<\w]"), r"[^\x21\x3c\w]");
        assert_eq!(byte_escapes(r"a{2,3}\s+{x}"), r"a{2,3}\s+\x7bx}");
        // Found by fuzzing: an escaped multi-byte character.
        assert_eq!(byte_escapes("a\\\u{e9}b"), "a\\\u{e9}b");
    }

    /// `^.*$` needs no regex: it matches every value, the empty one and one with line
    /// breaks too, and captures it whole, as the regex does.
    #[test]
    fn a_whole_value_regex_matches_everything() {
        for value in [&b""[..], b"x-custom-header", b"a\nb\r\n"] {
            let regex = Operator::Rx(build_regex("^.*$").expect("builds"));
            let expected = regex.matches(value, &NoVars, true);
            assert_eq!(op("rx", "^.*$").matches(value, &NoVars, true), expected);
            assert_eq!(expected, Some(smallvec![Capture::from_slice(value)]));
        }
    }

    #[test]
    fn phrases_numbers_and_ranges() {
        assert!(op("pm", "union select")
            .matches(b"1 UNION all", &NoVars, false)
            .is_some());
        assert!(op("lt", "5").matches(b"4", &NoVars, false).is_some());
        assert!(op("eq", "0").matches(b"abc", &NoVars, false).is_some());
        assert!(op("within", "GET POST")
            .matches(b"POST", &NoVars, false)
            .is_some());
        assert!(op("validateByteRange", "32-126")
            .matches(b"ok", &NoVars, false)
            .is_none());
        assert!(op("validateByteRange", "32-126")
            .matches(b"\x01", &NoVars, false)
            .is_some());
        assert!(op("validateUrlEncoding", "")
            .matches(b"%zz", &NoVars, false)
            .is_some());
        assert!(op("validateUrlEncoding", "")
            .matches(b"%41%4", &NoVars, false)
            .is_some());
        assert!(op("validateUrlEncoding", "")
            .matches(b"%41", &NoVars, false)
            .is_none());
        assert!(op("ipMatch", "127.0.0.1,::1,10.0.0.0/8")
            .matches(b"10.1.2.3", &NoVars, false)
            .is_some());
        assert!(op("containsWord", "select")
            .matches(b"a select b", &NoVars, false)
            .is_some());
        assert!(op("containsWord", "select")
            .matches(b"selected", &NoVars, false)
            .is_none());
    }
}

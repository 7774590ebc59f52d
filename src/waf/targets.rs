//! Rule targets ("variables" in SecLang): `ARGS|!ARGS:foo|&TX:score|REQUEST_HEADERS:/^x-/`.
//! A target names a collection, optionally a key or a `/regex/` key selector, and is
//! either a value list, a count (`&`) or an exclusion (`!`) from the same collection.

use regex::bytes::{Regex, RegexBuilder};

/// Every collection the engine can read. Response ones are filled only in the response
/// phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    Args,
    ArgsGet,
    ArgsPost,
    ArgsNames,
    ArgsGetNames,
    ArgsPostNames,
    ArgsCombinedSize,
    RequestHeaders,
    RequestHeadersNames,
    RequestCookies,
    RequestCookiesNames,
    RequestFilename,
    RequestBasename,
    RequestUri,
    RequestUriRaw,
    RequestLine,
    RequestMethod,
    RequestProtocol,
    QueryString,
    RequestBody,
    RequestBodyLength,
    ReqbodyProcessor,
    ReqbodyError,
    ReqbodyErrorMsg,
    Files,
    FilesNames,
    FilesSizes,
    FilesCombinedSize,
    MultipartPartHeaders,
    MultipartFilename,
    MultipartName,
    MultipartStrictError,
    MultipartUnmatchedBoundary,
    Tx,
    MatchedVar,
    MatchedVarName,
    MatchedVars,
    MatchedVarsNames,
    RemoteAddr,
    RemotePort,
    ServerPort,
    UniqueId,
    Xml,
    Env,
    ResponseHeaders,
    ResponseHeadersNames,
    ResponseStatus,
    ResponseProtocol,
    ResponseBody,
    ResponseContentType,
    ResponseContentLength,
    Duration,
}

impl Collection {
    pub fn from_name(name: &str) -> Option<Collection> {
        use Collection::*;
        Some(match name.to_ascii_uppercase().as_str() {
            "ARGS" => Args,
            "ARGS_GET" => ArgsGet,
            "ARGS_POST" => ArgsPost,
            "ARGS_NAMES" => ArgsNames,
            "ARGS_GET_NAMES" => ArgsGetNames,
            "ARGS_POST_NAMES" => ArgsPostNames,
            "ARGS_COMBINED_SIZE" => ArgsCombinedSize,
            "REQUEST_HEADERS" => RequestHeaders,
            "REQUEST_HEADERS_NAMES" => RequestHeadersNames,
            "REQUEST_COOKIES" => RequestCookies,
            "REQUEST_COOKIES_NAMES" => RequestCookiesNames,
            "REQUEST_FILENAME" => RequestFilename,
            "REQUEST_BASENAME" => RequestBasename,
            "REQUEST_URI" => RequestUri,
            "REQUEST_URI_RAW" => RequestUriRaw,
            "REQUEST_LINE" => RequestLine,
            "REQUEST_METHOD" => RequestMethod,
            "REQUEST_PROTOCOL" => RequestProtocol,
            "QUERY_STRING" => QueryString,
            "REQUEST_BODY" => RequestBody,
            "REQUEST_BODY_LENGTH" => RequestBodyLength,
            "REQBODY_PROCESSOR" => ReqbodyProcessor,
            "REQBODY_ERROR" => ReqbodyError,
            "REQBODY_ERROR_MSG" => ReqbodyErrorMsg,
            "FILES" => Files,
            "FILES_NAMES" => FilesNames,
            "FILES_SIZES" => FilesSizes,
            "FILES_COMBINED_SIZE" => FilesCombinedSize,
            "MULTIPART_PART_HEADERS" => MultipartPartHeaders,
            "MULTIPART_FILENAME" => MultipartFilename,
            "MULTIPART_NAME" => MultipartName,
            "MULTIPART_STRICT_ERROR" => MultipartStrictError,
            "MULTIPART_UNMATCHED_BOUNDARY" => MultipartUnmatchedBoundary,
            "TX" => Tx,
            "MATCHED_VAR" => MatchedVar,
            "MATCHED_VAR_NAME" => MatchedVarName,
            "MATCHED_VARS" => MatchedVars,
            "MATCHED_VARS_NAMES" => MatchedVarsNames,
            "REMOTE_ADDR" => RemoteAddr,
            "REMOTE_PORT" => RemotePort,
            "SERVER_PORT" => ServerPort,
            "UNIQUE_ID" => UniqueId,
            "XML" => Xml,
            "ENV" => Env,
            "RESPONSE_HEADERS" => ResponseHeaders,
            "RESPONSE_HEADERS_NAMES" => ResponseHeadersNames,
            "RESPONSE_STATUS" => ResponseStatus,
            "RESPONSE_PROTOCOL" => ResponseProtocol,
            "RESPONSE_BODY" => ResponseBody,
            "RESPONSE_CONTENT_TYPE" => ResponseContentType,
            "RESPONSE_CONTENT_LENGTH" => ResponseContentLength,
            "DURATION" => Duration,
            _ => return None,
        })
    }

    /// The name as SecLang writes it (for MATCHED_VAR_NAME and logs).
    pub fn name(self) -> &'static str {
        use Collection::*;
        match self {
            Args => "ARGS",
            ArgsGet => "ARGS_GET",
            ArgsPost => "ARGS_POST",
            ArgsNames => "ARGS_NAMES",
            ArgsGetNames => "ARGS_GET_NAMES",
            ArgsPostNames => "ARGS_POST_NAMES",
            ArgsCombinedSize => "ARGS_COMBINED_SIZE",
            RequestHeaders => "REQUEST_HEADERS",
            RequestHeadersNames => "REQUEST_HEADERS_NAMES",
            RequestCookies => "REQUEST_COOKIES",
            RequestCookiesNames => "REQUEST_COOKIES_NAMES",
            RequestFilename => "REQUEST_FILENAME",
            RequestBasename => "REQUEST_BASENAME",
            RequestUri => "REQUEST_URI",
            RequestUriRaw => "REQUEST_URI_RAW",
            RequestLine => "REQUEST_LINE",
            RequestMethod => "REQUEST_METHOD",
            RequestProtocol => "REQUEST_PROTOCOL",
            QueryString => "QUERY_STRING",
            RequestBody => "REQUEST_BODY",
            RequestBodyLength => "REQUEST_BODY_LENGTH",
            ReqbodyProcessor => "REQBODY_PROCESSOR",
            ReqbodyError => "REQBODY_ERROR",
            ReqbodyErrorMsg => "REQBODY_ERROR_MSG",
            Files => "FILES",
            FilesNames => "FILES_NAMES",
            FilesSizes => "FILES_SIZES",
            FilesCombinedSize => "FILES_COMBINED_SIZE",
            MultipartPartHeaders => "MULTIPART_PART_HEADERS",
            MultipartFilename => "MULTIPART_FILENAME",
            MultipartName => "MULTIPART_NAME",
            MultipartStrictError => "MULTIPART_STRICT_ERROR",
            MultipartUnmatchedBoundary => "MULTIPART_UNMATCHED_BOUNDARY",
            Tx => "TX",
            MatchedVar => "MATCHED_VAR",
            MatchedVarName => "MATCHED_VAR_NAME",
            MatchedVars => "MATCHED_VARS",
            MatchedVarsNames => "MATCHED_VARS_NAMES",
            RemoteAddr => "REMOTE_ADDR",
            RemotePort => "REMOTE_PORT",
            ServerPort => "SERVER_PORT",
            UniqueId => "UNIQUE_ID",
            Xml => "XML",
            Env => "ENV",
            ResponseHeaders => "RESPONSE_HEADERS",
            ResponseHeadersNames => "RESPONSE_HEADERS_NAMES",
            ResponseStatus => "RESPONSE_STATUS",
            ResponseProtocol => "RESPONSE_PROTOCOL",
            ResponseBody => "RESPONSE_BODY",
            ResponseContentType => "RESPONSE_CONTENT_TYPE",
            ResponseContentLength => "RESPONSE_CONTENT_LENGTH",
            Duration => "DURATION",
        }
    }
}

/// Which members of a collection a target takes.
#[derive(Debug, Clone)]
pub enum Selector {
    All,
    /// A key, lower-cased: keys compare without case, as in ModSecurity.
    Key(String),
    /// A regex, with what a key needs before the regex is worth calling.
    Regex(Regex, KeyFilter),
    /// A `/^word/` regex: the keys that start with `word` (lower-cased), found without
    /// the regex engine (CRS's `TX:/^header_name_920450_/` reads TX this way).
    Prefix(String, Regex),
}

/// What a regex selector's keys must have, checked before the regex runs: at least its
/// shortest match's length (922110's `TX:/MULTIPART_HEADERS_CONTENT_TYPES_*/` is tried on
/// every TX variable, nearly all shorter than its 31 bytes) and, for an anchored pattern,
/// its literal start (CRS's cookie exclusions `/^pbjs-\w+$/` and `/^_ga(?:_\w+)?$/` are
/// tried on every cookie by a dozen rules).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    pub shortest: usize,
    /// Lower-cased; empty when the pattern is not anchored or starts with no literal.
    pub prefix: String,
}

impl KeyFilter {
    fn of(pattern: &str) -> KeyFilter {
        let shortest = regex_syntax::ParserBuilder::new()
            .case_insensitive(true)
            .unicode(false)
            .utf8(false)
            .build()
            .parse(pattern)
            .ok()
            .and_then(|hir| hir.properties().minimum_len())
            .unwrap_or(0);
        // The literal after `^`, up to the first byte that may be special (a quantifier
        // after it would make its last byte optional: that byte is left out).
        let prefix = match pattern.strip_prefix('^') {
            // (`^abc|def` also matches keys without `abc`.)
            Some(_) if has_top_level_alternation(pattern) => String::new(),
            Some(rest) => {
                let literal = rest
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
                    .count();
                let optional_last =
                    matches!(rest.as_bytes().get(literal), Some(b'?' | b'*' | b'{'));
                rest[..literal.saturating_sub(usize::from(optional_last))].to_ascii_lowercase()
            }
            None => String::new(),
        };
        KeyFilter { shortest, prefix }
    }

    fn admits(&self, key: &[u8]) -> bool {
        key.len() >= self.shortest
            && key.len() >= self.prefix.len()
            && key[..self.prefix.len()].eq_ignore_ascii_case(self.prefix.as_bytes())
    }
}

/// Whether `pattern` has a `|` outside every group and class.
fn has_top_level_alternation(pattern: &str) -> bool {
    let mut depth = 0usize;
    let mut bytes = pattern.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => {
                bytes.next();
            }
            b'[' => {
                // A class ends at the first `]` that is not its first byte or escaped.
                let mut first = true;
                while let Some(c) = bytes.next() {
                    match c {
                        b'\\' => {
                            bytes.next();
                        }
                        b']' if !first => break,
                        _ => {}
                    }
                    first = c == b'^' && first;
                }
            }
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b'|' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

impl Selector {
    pub fn accepts(&self, key: &[u8]) -> bool {
        match self {
            Selector::All => true,
            Selector::Key(k) => key.eq_ignore_ascii_case(k.as_bytes()),
            Selector::Regex(r, filter) => filter.admits(key) && r.is_match(key),
            Selector::Prefix(p, _) => {
                key.len() >= p.len() && key[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            }
        }
    }

    /// True when both select the same thing (for exclusions named in `ctl`).
    pub fn same_as(&self, other: &Selector) -> bool {
        match (self, other) {
            (Selector::All, Selector::All) => true,
            (Selector::Key(a), Selector::Key(b)) => a == b,
            (
                Selector::Regex(a, _) | Selector::Prefix(_, a),
                Selector::Regex(b, _) | Selector::Prefix(_, b),
            ) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub collection: Collection,
    pub selector: Selector,
    pub count: bool,
    pub exclude: bool,
}

/// Parses a `|`-separated target list. Unknown collections are errors (the rule cannot
/// run as written).
pub fn parse_targets(text: &str) -> Result<Vec<Target>, String> {
    split_targets(text)?
        .iter()
        .map(|t| parse_target(t))
        .collect()
}

/// Splits on `|` outside of `/regex/` and quoted selectors.
fn split_targets(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut after_colon = false;
    let mut in_regex = false;
    let mut in_quote = false;
    let mut prev = '\0';
    for c in text.chars() {
        if in_quote {
            current.push(c);
            if c == '\'' {
                in_quote = false;
            }
        } else if in_regex {
            current.push(c);
            if c == '/' && prev != '\\' {
                in_regex = false;
            }
        } else if c == '|' {
            out.push(std::mem::take(&mut current));
            after_colon = false;
        } else {
            let is_xml = current
                .trim_start_matches(['!', '&'])
                .eq_ignore_ascii_case("XML:");
            if after_colon && current.ends_with(':') && c == '/' && !is_xml {
                in_regex = true;
            } else if after_colon && current.ends_with(':') && c == '\'' {
                in_quote = true;
            }
            if c == ':' {
                after_colon = true;
            }
            current.push(c);
        }
        prev = c;
    }
    if in_regex || in_quote {
        return Err(format!("unterminated selector in targets {text:?}"));
    }
    out.push(current);
    Ok(out
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

pub fn parse_target(text: &str) -> Result<Target, String> {
    let mut rest = text.trim();
    let mut count = false;
    let mut exclude = false;
    loop {
        if let Some(r) = rest.strip_prefix('&') {
            count = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('!') {
            exclude = true;
            rest = r;
        } else {
            break;
        }
    }
    let (name, selector) = match rest.split_once(':') {
        Some((name, sel)) => (name, Some(sel)),
        None => (rest, None),
    };
    let collection =
        Collection::from_name(name).ok_or_else(|| format!("unsupported variable {name}"))?;
    let selector = match selector {
        None => Selector::All,
        // XPath selectors: the XML collection is read whole.
        Some(sel) if collection == Collection::Xml => match sel {
            "/*" | "//@*" => Selector::Key(sel.to_string()),
            other => {
                return Err(format!(
                    "XPath {other} (only XML:/* and XML://@* are supported)"
                ))
            }
        },
        Some(sel) => parse_selector(sel)?,
    };
    Ok(Target {
        collection,
        selector,
        count,
        exclude,
    })
}

fn parse_selector(sel: &str) -> Result<Selector, String> {
    let sel = sel
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(sel);
    if sel.len() >= 2 && sel.starts_with('/') && sel.ends_with('/') {
        let pattern = &sel[1..sel.len() - 1];
        let regex = RegexBuilder::new(pattern)
            .case_insensitive(true)
            .unicode(false)
            .build()
            .map_err(|e| format!("bad selector regex /{pattern}/: {e}"))?;
        let prefix = pattern
            .strip_prefix('^')
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if let Some(p) = prefix {
            return Ok(Selector::Prefix(p.to_ascii_lowercase(), regex));
        }
        return Ok(Selector::Regex(regex, KeyFilter::of(pattern)));
    }
    Ok(Selector::Key(sel.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regex_selector_refuses_keys_shorter_than_its_shortest_match() {
        let [target] = parse_targets("TX:/MULTIPART_HEADERS_CONTENT_TYPES_*/")
            .expect("parses")
            .try_into()
            .expect("one target");
        assert!(matches!(&target.selector, Selector::Regex(_, f) if f.shortest == 31));
        let s = &target.selector;
        assert!(s.accepts(b"multipart_headers_content_types_part1"));
        assert!(s.accepts(b"x_Multipart_Headers_Content_Types"));
        assert!(!s.accepts(b"multipart_headers_content_type"));
        assert!(!s.accepts(b"anomaly_score"));
        // A pattern that may match nothing at all has no minimum.
        let [t] = parse_targets("ARGS:/a?/")
            .expect("parses")
            .try_into()
            .expect("one");
        assert!(matches!(&t.selector, Selector::Regex(_, f) if f.shortest == 0));
        assert!(t.selector.accepts(b""));
    }

    #[test]
    fn parses_crs_target_lists() {
        let targets = parse_targets(
            "REQUEST_COOKIES|!REQUEST_COOKIES:/__utm|_ga/|&TX:crs_setup_version|XML:/*|ARGS:'/^id_/'",
        )
        .expect("parses");
        assert_eq!(targets.len(), 5);
        assert!(targets[1].exclude);
        assert!(matches!(&targets[1].selector, Selector::Regex(r, _) if r.is_match(b"X__UTMz")));
        assert!(targets[2].count);
        assert!(matches!(&targets[2].selector, Selector::Key(k) if k == "crs_setup_version"));
        assert_eq!(targets[3].collection, Collection::Xml);
        assert!(matches!(&targets[4].selector, Selector::Prefix(p, _) if p == "id_"));
        assert!(targets[4].selector.accepts(b"ID_x") && !targets[4].selector.accepts(b"xid_"));
    }

    #[test]
    fn an_anchored_regex_selector_refuses_keys_without_its_literal_start() {
        let filter = |p: &str| KeyFilter::of(p).prefix;
        assert_eq!(filter(r"^pbjs-\w+$"), "pbjs-");
        assert_eq!(filter(r"^_ga(?:_\w+)?$"), "_ga");
        assert_eq!(filter(r"^ab?c"), "a", "a quantified byte is not required");
        assert_eq!(filter(r"^a{2}"), "");
        assert_eq!(filter(r"^(?:x|y)"), "");
        assert_eq!(filter(r"__utm"), "", "not anchored");
        assert_eq!(filter(r"^abc|def"), "", "an alternation");
        assert_eq!(filter(r"^ab(?:c|d)"), "ab");
        assert_eq!(filter(r"^ab[|]|x"), "");
        // The filter never refuses a key the regex accepts (random keys).
        let mut rng = fastrand::Rng::with_seed(7);
        for pattern in [
            r"^pbjs-\w+$",
            r"^_ga(?:_\w+)?$",
            r"^ab?c",
            r"^a-*b",
            r"^x_?",
            r"^ab|s",
        ] {
            let [target] = parse_targets(&format!("REQUEST_COOKIES:/{pattern}/"))
                .expect("parses")
                .try_into()
                .expect("one target");
            let Selector::Regex(regex, filter) = &target.selector else {
                panic!("{pattern}: not a regex selector");
            };
            for _ in 0..20_000 {
                let key: Vec<u8> = (0..rng.usize(0..9))
                    .map(|_| b"_gapbjs-ABCxs"[rng.usize(0..13)])
                    .collect();
                if regex.is_match(&key) {
                    assert!(filter.admits(&key), "{pattern} {key:?}");
                }
            }
            assert!(!target.selector.accepts(b"theme"));
        }
    }

    #[test]
    fn unknown_variable_is_an_error() {
        assert!(parse_targets("ARGS|GEO:country").is_err());
    }
}

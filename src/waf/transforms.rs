//! The `t:` transformations of SecLang, byte for byte as ModSecurity v3 defines them
//! (CRS rules are tuned to those exact outputs). Each returns `None` when the input is
//! unchanged, so the common case (nothing to decode) allocates nothing.

use base64::Engine as _;
use sha1::Digest as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    Base64Decode,
    Base64DecodeExt,
    Base64Encode,
    CmdLine,
    CompressWhitespace,
    CssDecode,
    EscapeSeqDecode,
    HexDecode,
    HexEncode,
    HtmlEntityDecode,
    JsDecode,
    Length,
    Lowercase,
    Md5,
    NormalizePath,
    NormalizePathWin,
    RemoveComments,
    RemoveCommentsChar,
    RemoveNulls,
    RemoveWhitespace,
    ReplaceComments,
    ReplaceNulls,
    Sha1,
    SqlHexDecode,
    Trim,
    TrimLeft,
    TrimRight,
    Uppercase,
    UrlDecode,
    UrlDecodeUni,
    UrlEncode,
    Utf8ToUnicode,
}

impl Transform {
    /// The transformation a `t:` name stands for; `Ok(None)` for `t:none`.
    pub fn from_name(name: &str) -> Result<Option<Transform>, String> {
        use Transform::*;
        let t = match name.to_ascii_lowercase().as_str() {
            "none" => return Ok(None),
            "base64decode" => Base64Decode,
            "base64decodeext" => Base64DecodeExt,
            "base64encode" => Base64Encode,
            "cmdline" => CmdLine,
            "compresswhitespace" => CompressWhitespace,
            "cssdecode" => CssDecode,
            "escapeseqdecode" => EscapeSeqDecode,
            "hexdecode" => HexDecode,
            "hexencode" => HexEncode,
            "htmlentitydecode" => HtmlEntityDecode,
            "jsdecode" => JsDecode,
            "length" => Length,
            "lowercase" => Lowercase,
            "md5" => Md5,
            "normalizepath" | "normalisepath" => NormalizePath,
            "normalizepathwin" | "normalisepathwin" => NormalizePathWin,
            "removecomments" => RemoveComments,
            "removecommentschar" => RemoveCommentsChar,
            "removenulls" => RemoveNulls,
            "removewhitespace" => RemoveWhitespace,
            "replacecomments" => ReplaceComments,
            "replacenulls" => ReplaceNulls,
            "sha1" => Sha1,
            "sqlhexdecode" => SqlHexDecode,
            "trim" => Trim,
            "trimleft" => TrimLeft,
            "trimright" => TrimRight,
            "uppercase" => Uppercase,
            "urldecode" => UrlDecode,
            "urldecodeuni" => UrlDecodeUni,
            "urlencode" => UrlEncode,
            "utf8tounicode" => Utf8ToUnicode,
            other => return Err(format!("unknown transformation t:{other}")),
        };
        Ok(Some(t))
    }

    /// Applies the transformation; `None` means the value is unchanged.
    /// The byte classes without which this transformation leaves a value unchanged
    /// ([`class::ANY`] for those that change every value).
    pub fn trigger(self) -> u32 {
        use class::*;
        use Transform::*;
        match self {
            Lowercase => UPPER,
            Uppercase => LOWER,
            UrlDecode | UrlDecodeUni => PERCENT_PLUS,
            HtmlEntityDecode => AMP,
            JsDecode | CssDecode | EscapeSeqDecode => BACKSLASH,
            RemoveNulls | ReplaceNulls => NUL,
            RemoveWhitespace | CompressWhitespace => SPACE | HIGH,
            Trim | TrimLeft | TrimRight => SPACE,
            Utf8ToUnicode => HIGH,
            NormalizePath => SLASH | DOT,
            NormalizePathWin => SLASH | DOT | BACKSLASH,
            RemoveComments => SLASH | HASH | DASH,
            ReplaceComments => SLASH,
            RemoveCommentsChar => SLASH | STAR | DASH | HASH,
            SqlHexDecode => ZERO,
            CmdLine => CMD | BACKSLASH | SPACE | UPPER,
            Md5 => 0,
            Base64Decode | Base64DecodeExt | Base64Encode | HexDecode | HexEncode | Length
            | Sha1 | UrlEncode => ANY,
        }
    }

    /// The byte classes without which this transformation changes at most the case of
    /// ASCII letters (the literal prefilter ignores case, so such a change leaves a
    /// value's hits as they were).
    pub fn trigger_beyond_case(self) -> u32 {
        use class::*;
        match self {
            Transform::Lowercase | Transform::Uppercase => 0,
            Transform::CmdLine => CMD | BACKSLASH | SPACE,
            other => other.trigger(),
        }
    }

    /// As [`Transform::apply`], into `out` (its old contents replaced); true when `out`
    /// holds a changed value. The transformations that change benign values (case,
    /// whitespace, URL and HTML decoding, `cmdLine`, base64) write into `out` without an
    /// allocation of their own once `out` has grown: the engine keeps its buffers.
    pub fn apply_into(self, input: &[u8], out: &mut Vec<u8>) -> bool {
        use Transform::*;
        out.clear();
        let kept = |b: &u8| !(is_space(*b) || *b == 0xa0);
        match self {
            Base64Decode | Base64DecodeExt => {
                base64_decode_into(input, self == Base64DecodeExt, out)
            }
            CmdLine => cmd_line_into(input, out),
            CompressWhitespace => compress_whitespace_into(input, out),
            HtmlEntityDecode => {
                if !html_entity_decode_into(input, out) {
                    return false;
                }
            }
            Lowercase | Uppercase => {
                let lower = self == Lowercase;
                let other_case = |b: &u8| match lower {
                    true => b.is_ascii_uppercase(),
                    false => b.is_ascii_lowercase(),
                };
                if !input.iter().any(other_case) {
                    return false;
                }
                out.extend_from_slice(input);
                match lower {
                    true => out.make_ascii_lowercase(),
                    false => out.make_ascii_uppercase(),
                }
            }
            RemoveNulls | ReplaceNulls => {
                if !input.contains(&0) {
                    return false;
                }
                match self {
                    RemoveNulls => out.extend(input.iter().copied().filter(|b| *b != 0)),
                    _ => out.extend(input.iter().map(|b| if *b == 0 { b' ' } else { *b })),
                }
            }
            RemoveWhitespace => {
                if input.iter().all(kept) {
                    return false;
                }
                out.extend(input.iter().copied().filter(kept));
            }
            UrlDecode | UrlDecodeUni => {
                if !url_decode_into(input, self == UrlDecodeUni, out) {
                    return false;
                }
            }
            Base64Encode => out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(input)
                    .as_bytes(),
            ),
            CssDecode => return replaced(css_decode(input), input, out),
            EscapeSeqDecode => return replaced(escape_seq_decode(input), input, out),
            HexDecode => out.extend_from_slice(&hex_decode(input)),
            HexEncode => out.extend_from_slice(&hex_encode(input)),
            JsDecode => return replaced(js_decode(input), input, out),
            Length => out.extend_from_slice(itoa::Buffer::new().format(input.len()).as_bytes()),
            Md5 => return false,
            NormalizePath => return replaced(normalize_path(input, false), input, out),
            NormalizePathWin => return replaced(normalize_path(input, true), input, out),
            RemoveComments => return replaced(remove_comments(input, false), input, out),
            ReplaceComments => return replaced(remove_comments(input, true), input, out),
            RemoveCommentsChar => return replaced(remove_comments_char(input), input, out),
            Sha1 => out.extend_from_slice(&sha1::Sha1::digest(input)),
            SqlHexDecode => return replaced(sql_hex_decode(input), input, out),
            Trim => return replaced(trim(input, true, true), input, out),
            TrimLeft => return replaced(trim(input, true, false), input, out),
            TrimRight => return replaced(trim(input, false, true), input, out),
            UrlEncode => out.extend_from_slice(&url_encode(input)),
            Utf8ToUnicode => return replaced(utf8_to_unicode(input), input, out),
        }
        out.as_slice() != input
    }

    /// The transformed value; None when the transformation leaves it unchanged.
    pub fn apply(self, input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.apply_into(input, &mut out).then_some(out)
    }
}

/// Runs a chain of `transforms` over `value` (of byte `classes`) in the two `buffers`,
/// in turn, skipping each transformation whose trigger classes the current value lacks
/// (the classes are recomputed after each change). After each change, `changed` gets the
/// stage's number (from 1) and bytes, and may end the chain by returning true. Returns
/// which buffer holds the last changed value; None when the chain left it as it was.
pub fn run_chain(
    value: &[u8],
    mut classes: u32,
    transforms: &[Transform],
    buffers: &mut [Vec<u8>; 2],
    mut changed: impl FnMut(usize, &[u8]) -> bool,
) -> Option<usize> {
    let mut current: Option<usize> = None;
    let mut stage = 0;
    for t in transforms {
        if classes & t.trigger() == 0 {
            continue;
        }
        let next = current.map_or(0, |c| 1 - c);
        let [first, second] = buffers;
        let (input, out): (&[u8], &mut Vec<u8>) = match (current, next) {
            (None, _) => (value, first),
            (Some(_), 0) => (second, first),
            (Some(_), _) => (first, second),
        };
        if !t.apply_into(input, out) {
            continue;
        }
        current = Some(next);
        stage += 1;
        classes = byte_classes(out);
        if changed(stage, out) {
            break;
        }
    }
    current
}

/// For the transformations that build their own vector: `out` takes a changed result.
fn replaced(result: Option<Vec<u8>>, input: &[u8], out: &mut Vec<u8>) -> bool {
    match result {
        Some(changed) if changed != input => {
            out.clear();
            out.extend_from_slice(&changed);
            true
        }
        _ => false,
    }
}

/// Byte classes a value holds, one bit each (see [`byte_classes`]); a transformation can
/// change a value only if the value holds one of the classes in its trigger.
pub mod class {
    pub const UPPER: u32 = 1 << 0;
    pub const LOWER: u32 = 1 << 1;
    /// C's `isspace`.
    pub const SPACE: u32 = 1 << 2;
    /// 0x80 and up (0xa0 counts as space for the whitespace transformations).
    pub const HIGH: u32 = 1 << 3;
    pub const NUL: u32 = 1 << 4;
    pub const PERCENT_PLUS: u32 = 1 << 5;
    pub const AMP: u32 = 1 << 6;
    pub const BACKSLASH: u32 = 1 << 7;
    pub const SLASH: u32 = 1 << 8;
    pub const DOT: u32 = 1 << 9;
    pub const STAR: u32 = 1 << 10;
    pub const HASH: u32 = 1 << 11;
    pub const DASH: u32 = 1 << 12;
    /// `"`, `'`, `^`, `,`, `;`: what `cmdLine` drops or turns into spaces.
    pub const CMD: u32 = 1 << 13;
    pub const ZERO: u32 = 1 << 14;
    /// Every value has it: a trigger holding it fires on every value.
    pub const ANY: u32 = 1 << 31;
}

const fn class_of(b: u8) -> u32 {
    use class::*;
    match b {
        b'A'..=b'Z' => UPPER,
        b'a'..=b'z' => LOWER,
        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => SPACE,
        0x80..=0xff => HIGH,
        0 => NUL,
        b'%' | b'+' => PERCENT_PLUS,
        b'&' => AMP,
        b'\\' => BACKSLASH,
        b'/' => SLASH,
        b'.' => DOT,
        b'*' => STAR,
        b'#' => HASH,
        b'-' => DASH,
        b'"' | b'\'' | b'^' | b',' | b';' => CMD,
        b'0' => ZERO,
        _ => 0,
    }
}

const CLASSES: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = class_of(b as u8);
        b += 1;
    }
    table
};

/// The byte classes `value` holds, with [`class::ANY`].
pub fn byte_classes(value: &[u8]) -> u32 {
    value
        .iter()
        .fold(class::ANY, |acc, b| acc | CLASSES[usize::from(*b)])
}

/// C's `isspace` in the C locale.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_pair(a: u8, b: u8) -> Option<u8> {
    Some(hex_value(a)? * 16 + hex_value(b)?)
}

/// `%XX` (and `+` as space); with `uni`, also IIS's `%uXXXX`, taking the low byte and
/// mapping full-width ASCII (U+FF01..U+FF5E) to ASCII, as ModSecurity does without a
/// unicode map.
pub fn url_decode(input: &[u8], uni: bool) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    url_decode_into(input, uni, &mut out).then_some(out)
}

/// As [`url_decode`], into `out` (empty); false (and `out` left empty) when `input` has
/// nothing to decode.
fn url_decode_into(input: &[u8], uni: bool, out: &mut Vec<u8>) -> bool {
    if !input.iter().any(|b| *b == b'%' || *b == b'+') {
        return false;
    }
    out.reserve(input.len());
    let n = input.len();
    let mut i = 0;
    while i < n {
        let c = input[i];
        if c == b'%' {
            if uni && i + 1 < n && (input[i + 1] == b'u' || input[i + 1] == b'U') {
                if i + 5 < n {
                    let quad = &input[i + 2..(i + 6).min(n)];
                    if quad.len() == 4 && quad.iter().all(|b| hex_value(*b).is_some()) {
                        let mut d = hex_pair(quad[2], quad[3]).unwrap_or(0);
                        if d > 0
                            && d < 0x5f
                            && (quad[0] == b'f' || quad[0] == b'F')
                            && (quad[1] == b'f' || quad[1] == b'F')
                        {
                            d += 0x20;
                        }
                        out.push(d);
                        i += 6;
                        continue;
                    }
                }
                out.push(input[i]);
                out.push(input[i + 1]);
                i += 2;
                continue;
            }
            if i + 2 < n {
                if let Some(d) = hex_pair(input[i + 1], input[i + 2]) {
                    out.push(d);
                    i += 3;
                    continue;
                }
            }
            out.push(c);
            i += 1;
        } else if c == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    true
}

fn url_encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for &b in input {
        if b == b' ' {
            out.push(b'+');
        } else if b.is_ascii_alphanumeric() || b"*-._".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02x}").as_bytes());
        }
    }
    out
}

/// ModSecurity's decoder: the standard alphabet, padding optional, trailing bits allowed.
fn base64_engine() -> base64::engine::GeneralPurpose {
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
}

#[cfg(test)]
fn base64_decode(input: &[u8], lenient: bool) -> Vec<u8> {
    let mut out = Vec::new();
    base64_decode_into(input, lenient, &mut out);
    out
}

/// `base64Decode` of `input` appended to `out` (empty).
fn base64_decode_into(input: &[u8], lenient: bool, out: &mut Vec<u8>) {
    let in_alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    // Decoding stops at the first byte outside the alphabet, as ModSecurity's does; the
    // lenient form skips such bytes instead (copied out only when there are some).
    let end = input.iter().position(|b| !in_alphabet(b));
    let skipped: Vec<u8>;
    let clean: &[u8] = match end {
        Some(_) if lenient => {
            skipped = input.iter().copied().filter(in_alphabet).collect();
            &skipped
        }
        Some(end) => &input[..end],
        None => input,
    };
    let usable = clean.len() - clean.len() % 4
        + if clean.len() % 4 > 1 {
            clean.len() % 4
        } else {
            0
        };
    // Into `out`, of the decoded size (CRS decodes every argument and cookie: this ran a
    // dozen per GET through a growing copy and the crate's own buffer).
    out.reserve(usable / 4 * 3 + 3);
    if base64_engine().decode_vec(&clean[..usable], out).is_err() {
        out.clear();
    }
}

fn hex_encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 2);
    for b in input {
        out.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    out
}

fn hex_decode(input: &[u8]) -> Vec<u8> {
    input
        .chunks(2)
        .filter_map(|pair| match pair {
            [a, b] => hex_pair(*a, *b),
            _ => None,
        })
        .collect()
}

/// `0xHEX` runs in SQL decoded to bytes.
fn sql_hex_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let mut changed = false;
    while i < input.len() {
        if input[i] == b'0'
            && i + 3 < input.len()
            && (input[i + 1] == b'x' || input[i + 1] == b'X')
            && hex_value(input[i + 2]).is_some()
            && hex_value(input[i + 3]).is_some()
        {
            i += 2;
            while i + 1 < input.len() {
                match hex_pair(input[i], input[i + 1]) {
                    Some(d) => {
                        out.push(d);
                        i += 2;
                    }
                    None => break,
                }
            }
            changed = true;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    changed.then_some(out)
}

/// Windows command-line normalisation (ModSecurity's `cmdLine`).
fn cmd_line_into(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len());
    let mut space = false;
    for &a in input {
        match a {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                space = false;
                out.push(a);
            }
            _ => {
                out.push(a.to_ascii_lowercase());
                space = false;
            }
        }
    }
}

fn compress_whitespace_into(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len());
    let mut in_space = false;
    for &b in input {
        if is_space(b) || b == 0xa0 {
            if !in_space {
                out.push(b' ');
                in_space = true;
            }
        } else {
            out.push(b);
            in_space = false;
        }
    }
}

fn trim(input: &[u8], left: bool, right: bool) -> Option<Vec<u8>> {
    let mut s = input;
    if left {
        while let [first, rest @ ..] = s {
            if is_space(*first) {
                s = rest;
            } else {
                break;
            }
        }
    }
    if right {
        while let [rest @ .., last] = s {
            if is_space(*last) {
                s = rest;
            } else {
                break;
            }
        }
    }
    (s.len() != input.len()).then(|| s.to_vec())
}

/// JavaScript escapes: `\xHH`, `\uHHHH` (low byte, full-width ASCII mapped), octal, and
/// the one-letter escapes.
fn js_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let n = input.len();
    let mut i = 0;
    while i < n {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        if i + 5 < n && input[i + 1] == b'u' {
            let q = &input[i + 2..i + 6];
            if q.iter().all(|b| hex_value(*b).is_some()) {
                let mut d = hex_pair(q[2], q[3]).unwrap_or(0);
                if d > 0
                    && d < 0x5f
                    && (q[0] == b'f' || q[0] == b'F')
                    && (q[1] == b'f' || q[1] == b'F')
                {
                    d += 0x20;
                }
                out.push(d);
                i += 6;
                continue;
            }
        }
        if i + 3 < n && input[i + 1] == b'x' {
            if let Some(d) = hex_pair(input[i + 2], input[i + 3]) {
                out.push(d);
                i += 4;
                continue;
            }
        }
        if i + 1 < n && (b'0'..=b'7').contains(&input[i + 1]) {
            let mut j = 1;
            let mut value: u32 = 0;
            while j <= 3 && i + j < n && (b'0'..=b'7').contains(&input[i + j]) {
                value = value * 8 + u32::from(input[i + j] - b'0');
                j += 1;
            }
            // Three octal digits may exceed a byte: then only two are taken.
            if value > 0xff && j == 4 {
                value /= 8;
                j -= 1;
            }
            out.push(value as u8);
            i += j;
            continue;
        }
        if i + 1 < n {
            let c = input[i + 1];
            let decoded = match c {
                b'a' => 7,
                b'b' => 8,
                b'f' => 12,
                b'n' => 10,
                b'r' => 13,
                b't' => 9,
                b'v' => 11,
                other => other,
            };
            out.push(decoded);
            i += 2;
            continue;
        }
        out.push(b'\\');
        i += 1;
    }
    Some(out)
}

/// C escape sequences (ModSecurity's `escapeSeqDecode`).
fn escape_seq_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let n = input.len();
    let mut i = 0;
    while i < n {
        if input[i] == b'\\' && i + 1 < n {
            let c = input[i + 1];
            let simple = match c {
                b'a' => Some(7),
                b'b' => Some(8),
                b'f' => Some(12),
                b'n' => Some(10),
                b'r' => Some(13),
                b't' => Some(9),
                b'v' => Some(11),
                b'\\' => Some(b'\\'),
                b'?' => Some(b'?'),
                b'\'' => Some(b'\''),
                b'"' => Some(b'"'),
                _ => None,
            };
            if let Some(d) = simple {
                out.push(d);
                i += 2;
                continue;
            }
            if (c == b'x' || c == b'X') && i + 3 < n {
                if let Some(d) = hex_pair(input[i + 2], input[i + 3]) {
                    out.push(d);
                    i += 4;
                    continue;
                }
            }
            if (b'0'..=b'7').contains(&c) {
                let mut j = 1;
                let mut value: u32 = 0;
                while j <= 3 && i + j < n && (b'0'..=b'7').contains(&input[i + j]) {
                    value = value * 8 + u32::from(input[i + j] - b'0');
                    j += 1;
                }
                out.push(value as u8);
                i += j;
                continue;
            }
            out.push(c);
            i += 2;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    Some(out)
}

/// CSS 2 escapes: `\` + 1-6 hex digits (one optional whitespace after), low byte with
/// full-width ASCII mapped; `\` + newline removed; `\` + other character is that character.
fn css_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let n = input.len();
    let mut i = 0;
    while i < n {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        if i + 1 >= n {
            // A lone trailing backslash is dropped.
            i += 1;
            continue;
        }
        let mut j = 0;
        while j < 6 && i + 1 + j < n && hex_value(input[i + 1 + j]).is_some() {
            j += 1;
        }
        if j > 0 {
            let digits = &input[i + 1..i + 1 + j];
            let mut fullwidth = false;
            let d = match j {
                1 => hex_value(digits[0]).unwrap_or(0),
                _ => {
                    let low = hex_pair(digits[j - 2], digits[j - 1]).unwrap_or(0);
                    if j >= 3 {
                        // Full-width ASCII: ...ff01 - ...ff5e.
                        let hi = &digits[j - 4.min(j)..j - 2];
                        fullwidth = j >= 4
                            && hi.eq_ignore_ascii_case(b"ff")
                            && digits[..j - 4].iter().all(|b| *b == b'0');
                    }
                    low
                }
            };
            let d = if fullwidth && d > 0 && d < 0x5f {
                d + 0x20
            } else {
                d
            };
            out.push(d);
            i += 1 + j;
            if i < n && is_space(input[i]) {
                i += 1;
            }
            continue;
        }
        if input[i + 1] == b'\n' {
            i += 2;
            continue;
        }
        out.push(input[i + 1]);
        i += 2;
    }
    Some(out)
}

/// HTML character references: `&#DDD;`, `&#xHH;` (low byte) and the entities
/// quot, amp, lt, gt, nbsp; the `;` is optional, as in ModSecurity.
fn html_entity_decode_into(input: &[u8], out: &mut Vec<u8>) -> bool {
    if !input.contains(&b'&') {
        return false;
    }
    out.reserve(input.len());
    let n = input.len();
    let mut i = 0;
    while i < n {
        if input[i] != b'&' || i + 1 >= n {
            out.push(input[i]);
            i += 1;
            continue;
        }
        if input[i + 1] == b'#' {
            let hex = i + 2 < n && (input[i + 2] == b'x' || input[i + 2] == b'X');
            let start = if hex { i + 3 } else { i + 2 };
            let mut end = start;
            while end < n
                && (if hex {
                    hex_value(input[end]).is_some()
                } else {
                    input[end].is_ascii_digit()
                })
            {
                end += 1;
            }
            if end > start {
                let digits = std::str::from_utf8(&input[start..end]).unwrap_or("0");
                let value = u64::from_str_radix(digits, if hex { 16 } else { 10 }).unwrap_or(0);
                out.push(value as u8);
                i = end;
                if i < n && input[i] == b';' {
                    i += 1;
                }
                continue;
            }
        } else {
            let mut end = i + 1;
            while end < n && input[end].is_ascii_alphanumeric() {
                end += 1;
            }
            let name = &input[i + 1..end];
            const ENTITIES: [(&[u8], u8); 5] = [
                (b"quot", b'"'),
                (b"amp", b'&'),
                (b"lt", b'<'),
                (b"gt", b'>'),
                (b"nbsp", 0xa0),
            ];
            let decoded = ENTITIES
                .iter()
                .find(|(entity, _)| entity.eq_ignore_ascii_case(name))
                .map(|(_, byte)| *byte);
            if let Some(d) = decoded {
                out.push(d);
                i = end;
                if i < n && input[i] == b';' {
                    i += 1;
                }
                continue;
            }
        }
        out.push(b'&');
        i += 1;
    }
    true
}

/// UTF-8 sequences of two to four bytes written as `%uXXXX` (lower-case hex, as
/// ModSecurity writes them); other bytes kept.
fn utf8_to_unicode(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_ascii() {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 2);
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        let (len, init) = match b {
            0xc0..=0xdf => (2, u32::from(b & 0x1f)),
            0xe0..=0xef => (3, u32::from(b & 0x0f)),
            0xf0..=0xf7 => (4, u32::from(b & 0x07)),
            _ => (1, 0),
        };
        let valid = len > 1
            && i + len <= input.len()
            && input[i + 1..i + len].iter().all(|c| c & 0xc0 == 0x80);
        if !valid {
            out.push(b);
            i += 1;
            continue;
        }
        let mut code = init;
        for c in &input[i + 1..i + len] {
            code = (code << 6) | u32::from(c & 0x3f);
        }
        out.extend_from_slice(format!("%u{:04x}", code).as_bytes());
        i += len;
    }
    Some(out)
}

/// `/* ... */` comments (and, for removeComments, `--` and `#` to end of line) removed;
/// with `replace`, each C comment becomes one space (ModSecurity's `replaceComments`).
fn remove_comments(input: &[u8], replace: bool) -> Option<Vec<u8>> {
    let has = input.windows(2).any(|w| w == b"/*")
        || (!replace && (input.contains(&b'#') || input.windows(2).any(|w| w == b"--")));
    if !has {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let n = input.len();
    let mut i = 0;
    while i < n {
        if i + 1 < n && input[i] == b'/' && input[i + 1] == b'*' {
            match input[i + 2..].windows(2).position(|w| w == b"*/") {
                Some(p) => i = i + 2 + p + 2,
                None => i = n,
            }
            if replace {
                out.push(b' ');
            }
            continue;
        }
        if !replace && (input[i] == b'#' || (i + 1 < n && input[i] == b'-' && input[i + 1] == b'-'))
        {
            while i < n && input[i] != b'\n' && input[i] != b'\r' {
                i += 1;
            }
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    Some(out)
}

/// Removes the comment characters `/*`, `*/`, `--` and `#`.
fn remove_comments_char(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let n = input.len();
    let mut i = 0;
    while i < n {
        if i + 1 < n
            && ((input[i] == b'/' && input[i + 1] == b'*')
                || (input[i] == b'*' && input[i + 1] == b'/')
                || (input[i] == b'-' && input[i + 1] == b'-'))
        {
            i += 2;
        } else if input[i] == b'#' {
            i += 1;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    (out.len() != n).then_some(out)
}

/// Removes `.` and `..` segments and repeated slashes (with `win`, `\` first becomes `/`).
fn normalize_path(input: &[u8], win: bool) -> Option<Vec<u8>> {
    if path_is_normal(input, win) {
        return None;
    }
    normalize_path_slowly(input, win)
}

/// True when normalizing `input` would leave it as it is, known without building
/// anything: no empty segment inside it (`//`), no `.` or `..` segment, and for the
/// Windows form no backslash. (Most request paths: CRS normalizes the URI and the file
/// name in several chains per request.)
fn path_is_normal(input: &[u8], win: bool) -> bool {
    if (win && input.contains(&b'\\')) || memchr::memmem::find(input, b"//").is_some() {
        return false;
    }
    input
        .split(|b| *b == b'/')
        .all(|segment| segment != b"." && segment != b"..")
}

fn normalize_path_slowly(input: &[u8], win: bool) -> Option<Vec<u8>> {
    let src: Vec<u8> = if win {
        input
            .iter()
            .map(|b| if *b == b'\\' { b'/' } else { *b })
            .collect()
    } else {
        input.to_vec()
    };
    if !src.contains(&b'/') && !src.starts_with(b".") {
        return (src != input).then_some(src);
    }
    let absolute = src.first() == Some(&b'/');
    let trailing = src.last() == Some(&b'/')
        || src.ends_with(b"/.")
        || src.ends_with(b"/..")
        || src == b"."
        || src == b"..";
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in src.split(|b| *b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !absolute {
                    parts.push(seg);
                }
            }
            _ => parts.push(seg),
        }
    }
    let mut out = Vec::with_capacity(src.len());
    if absolute {
        out.push(b'/');
    }
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if trailing && !parts.is_empty() {
        out.push(b'/');
    }
    (out != input).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::Transform::*;
    use super::*;

    fn t(tr: Transform, input: &str) -> String {
        let out = tr
            .apply(input.as_bytes())
            .unwrap_or_else(|| input.as_bytes().to_vec());
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Every transformation leaves unchanged a value without its trigger's classes:
    /// the engine relies on it to skip transformations.
    #[test]
    fn triggers_cover_every_change() {
        let all = [
            Base64Decode,
            Base64DecodeExt,
            Base64Encode,
            CmdLine,
            CompressWhitespace,
            CssDecode,
            EscapeSeqDecode,
            HexDecode,
            HexEncode,
            HtmlEntityDecode,
            JsDecode,
            Length,
            Lowercase,
            Md5,
            NormalizePath,
            NormalizePathWin,
            RemoveComments,
            RemoveCommentsChar,
            RemoveNulls,
            RemoveWhitespace,
            ReplaceComments,
            ReplaceNulls,
            Sha1,
            SqlHexDecode,
            Trim,
            TrimLeft,
            TrimRight,
            Uppercase,
            UrlDecode,
            UrlDecodeUni,
            UrlEncode,
            Utf8ToUnicode,
        ];
        let mut samples: Vec<Vec<u8>> = vec![b"".to_vec()];
        let alphabet = b"aZ0x9 .-/\\*#%+&;'\"^,(\x00\xa0\xc3\xa9:=<>?!_@uU";
        let mut seed = 7u64;
        for len in 1..12 {
            for _ in 0..400 {
                let v: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        alphabet[(seed >> 33) as usize % alphabet.len()]
                    })
                    .collect();
                samples.push(v);
            }
        }
        for t in all {
            for v in &samples {
                let classes = byte_classes(v);
                if classes & t.trigger() == 0 {
                    assert_eq!(t.apply(v), None, "{t:?} changed {v:?} without its trigger");
                }
                if classes & t.trigger_beyond_case() == 0 {
                    let out = t.apply(v).unwrap_or_else(|| v.clone());
                    assert!(
                        out.eq_ignore_ascii_case(v),
                        "{t:?} changed {v:?} beyond case"
                    );
                }
            }
        }
    }

    #[test]
    fn url_decoding_as_modsecurity() {
        assert_eq!(t(UrlDecodeUni, "a%20b+c%u0041%uff0e%zz%"), "a b cA.%zz%");
        assert_eq!(t(UrlDecode, "%u0041%41"), "%u0041A");
    }

    #[test]
    fn cmd_line_normalises() {
        assert_eq!(
            t(CmdLine, "C:\\WINDOWS\\sys^tem32 ,; /c \"dir\""),
            "c:windowssystem32/c dir"
        );
    }

    #[test]
    fn decoders() {
        assert_eq!(t(JsDecode, "\\x41\\u0042\\103\\n"), "ABC\n");
        assert_eq!(t(HtmlEntityDecode, "&lt;a&#x41;&#66;&quot"), "<aAB\"");
        assert_eq!(t(CssDecode, "\\61 \\000062c\\\n"), "abc");
        assert_eq!(t(EscapeSeqDecode, "\\x41\\101\\t"), "AA\t");
        assert_eq!(t(Utf8ToUnicode, "é"), "%u00e9");
        assert_eq!(t(Base64Decode, "aGVsbG8=!"), "hello");
        assert_eq!(t(Base64Decode, "aGVs bG8="), "hel");
        assert_eq!(t(Base64DecodeExt, "aGVs bG8=!"), "hello");
        assert_eq!(t(Base64Decode, "aGVsbG8"), "hello");
    }

    /// The decoder as it first was (a copy of the alphabet's bytes, the crate's own
    /// output buffer), against which the one-allocation decoder is checked.
    fn base64_reference(input: &[u8], lenient: bool) -> Vec<u8> {
        let ok = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
        let clean: Vec<u8> = if lenient {
            input.iter().copied().filter(ok).collect()
        } else {
            input.iter().copied().take_while(ok).collect()
        };
        let usable = clean.len() - clean.len() % 4
            + if clean.len() % 4 > 1 {
                clean.len() % 4
            } else {
                0
            };
        super::base64_engine()
            .decode(&clean[..usable])
            .unwrap_or_default()
    }

    #[test]
    fn base64_decoding_matches_the_reference_on_random_values() {
        let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
        let mut next = move |n: u64| rng.u64(0..n);
        let alphabet = b"aZ09+/=!% -_\x00";
        for _ in 0..20_000 {
            let value: Vec<u8> = (0..next(40))
                .map(|_| alphabet[next(alphabet.len() as u64) as usize])
                .collect();
            for lenient in [false, true] {
                assert_eq!(
                    super::base64_decode(&value, lenient),
                    base64_reference(&value, lenient),
                    "{value:?} lenient={lenient}"
                );
            }
        }
    }

    #[test]
    // (`apply` is `apply_into` on a fresh buffer: this checks that what a reused buffer
    // held never leaks into the result; each transformation's own output is checked by
    // the tests above.)
    fn apply_into_gives_what_apply_gives_whatever_the_buffer_held() {
        let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
        let mut next = move |n: u64| rng.u64(0..n);
        let alphabet = b"aZ09+/=!% -_\x00\\x%u65/*&#;lt\"',";
        let mut out = b"stale bytes from an earlier stage".to_vec();
        for _ in 0..5_000 {
            let value: Vec<u8> = (0..next(30))
                .map(|_| alphabet[next(alphabet.len() as u64) as usize])
                .collect();
            for t in [
                Base64Decode,
                Base64DecodeExt,
                UrlDecodeUni,
                JsDecode,
                Lowercase,
                RemoveWhitespace,
                ReplaceComments,
                CmdLine,
                CompressWhitespace,
                HtmlEntityDecode,
                UrlDecode,
                RemoveNulls,
            ] {
                let changed = t.apply_into(&value, &mut out);
                match t.apply(&value) {
                    Some(expected) => assert!(changed && out == expected, "{t:?} {value:?}"),
                    None => assert!(!changed, "{t:?} {value:?}"),
                }
            }
        }
    }

    #[test]
    fn a_chain_reports_each_change_in_turn_and_stops_when_asked() {
        let chain = [UrlDecode, Lowercase, RemoveNulls, RemoveWhitespace];
        let mut buffers = [b"stale".to_vec(), Vec::new()];
        // The stages seen and the chain's last value, stopping after stage `stop`.
        let mut run = |value: &[u8], stop: usize| {
            let mut seen = Vec::new();
            let last = run_chain(value, byte_classes(value), &chain, &mut buffers, |n, v| {
                seen.push((n, v.to_vec()));
                n == stop
            });
            (seen, last.map(|b| buffers[b].clone()))
        };
        let stages = [
            (1, b"A B C".to_vec()),
            (2, b"a b c".to_vec()),
            (3, b"abc".to_vec()),
        ];
        let (seen, last) = run(b"A%20B+C", 0);
        assert_eq!(seen, stages, "RemoveNulls changes nothing and is no stage");
        assert_eq!(last, Some(b"abc".to_vec()));
        let (seen, last) = run(b"A%20B+C", 2);
        assert_eq!(seen, stages[..2]);
        assert_eq!(last, Some(b"a b c".to_vec()));
        assert_eq!(run(b"abc", 0), (Vec::new(), None));
    }

    #[test]
    fn a_path_known_normal_is_one_the_full_normalization_leaves_alone() {
        let mut rng = fastrand::Rng::with_seed(0x853c_49e6_748f_ea9b);
        let mut next = move |n: u64| rng.u64(0..n);
        let pieces: [&[u8]; 8] = [b"/", b".", b"..", b"a", b"b.c", b"\\", b"//", b"x/"];
        for _ in 0..20_000 {
            let path: Vec<u8> = (0..next(7))
                .flat_map(|_| pieces[next(pieces.len() as u64) as usize].to_vec())
                .collect();
            for win in [false, true] {
                if super::path_is_normal(&path, win) {
                    assert_eq!(super::normalize_path_slowly(&path, win), None, "{path:?}");
                }
            }
        }
        assert!(super::path_is_normal(b"/products/list", false));
        assert!(!super::path_is_normal(b"/a/../b", false));
    }

    #[test]
    fn comments_and_paths() {
        assert_eq!(t(ReplaceComments, "a/*x*/b/*open"), "a b ");
        assert_eq!(t(RemoveCommentsChar, "a/*b*/--c#"), "abc");
        assert_eq!(
            t(NormalizePath, "/a/./b/../../../etc//passwd"),
            "/etc/passwd"
        );
        assert_eq!(t(NormalizePathWin, "..\\..\\boot.ini"), "../../boot.ini");
        assert_eq!(t(CompressWhitespace, "a  \t b"), "a b");
        assert_eq!(t(Length, "abcd"), "4");
        assert_eq!(t(HexEncode, "AB"), "4142");
    }
}

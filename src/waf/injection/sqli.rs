//! libinjection's SQL-injection detector, written in Rust from the C reference
//! (libinjection/libinjection, BSD licence): the tokenizer, the folding of tokens into a
//! fingerprint of at most five token types, and the fingerprint check (the reference's
//! blacklist plus its false-positive rules). The keyword and fingerprint table and the
//! byte classes are the reference's own data, as the `libinjectionrs` crate publishes
//! them. No allocation per call.
//!
//! Why not the crate's detector: it differs from the reference on 18 lines of the
//! reference's own test corpus (`into outfile` in lower case, and multi-word keywords
//! whose prefixes are barewords, such as `LOCK IN SHARE MODE`); this one agrees on all
//! 19,216 (tests/e2e/waf_libinjection.rs).

use libinjectionrs::sqli::sqli_data::{CharType, CHAR_MAP, SQL_KEYWORDS};

const TOKEN_SIZE: usize = 32;
const MAX_TOKENS: usize = 5;

const FLAG_QUOTE_NONE: u32 = 1;
const FLAG_QUOTE_SINGLE: u32 = 2;
const FLAG_QUOTE_DOUBLE: u32 = 4;
const FLAG_SQL_ANSI: u32 = 8;
const FLAG_SQL_MYSQL: u32 = 16;

const CHAR_NULL: u8 = 0;
const CHAR_SINGLE: u8 = b'\'';
const CHAR_DOUBLE: u8 = b'"';
const CHAR_TICK: u8 = b'`';

// Token types (the fingerprint's letters).
const T_NONE: u8 = 0;
const T_KEYWORD: u8 = b'k';
const T_UNION: u8 = b'U';
const T_GROUP: u8 = b'B';
const T_EXPRESSION: u8 = b'E';
const T_SQLTYPE: u8 = b't';
const T_FUNCTION: u8 = b'f';
const T_BAREWORD: u8 = b'n';
const T_NUMBER: u8 = b'1';
const T_VARIABLE: u8 = b'v';
const T_STRING: u8 = b's';
const T_OPERATOR: u8 = b'o';
const T_LOGIC_OPERATOR: u8 = b'&';
const T_COMMENT: u8 = b'c';
const T_COLLATE: u8 = b'A';
const T_LEFTPARENS: u8 = b'(';
const T_RIGHTPARENS: u8 = b')';
const T_LEFTBRACE: u8 = b'{';
const T_RIGHTBRACE: u8 = b'}';
const T_DOT: u8 = b'.';
const T_COMMA: u8 = b',';
const T_COLON: u8 = b':';
const T_SEMICOLON: u8 = b';';
const T_TSQL: u8 = b'T';
const T_UNKNOWN: u8 = b'?';
const T_EVIL: u8 = b'X';
const T_FINGERPRINT: u8 = b'F';
const T_BACKSLASH: u8 = b'\\';

#[derive(Clone, Copy)]
struct Token {
    kind: u8,
    str_open: u8,
    str_close: u8,
    len: usize,
    val: [u8; TOKEN_SIZE],
}

impl Default for Token {
    fn default() -> Self {
        Token {
            kind: T_NONE,
            str_open: 0,
            str_close: 0,
            len: 0,
            val: [0; TOKEN_SIZE],
        }
    }
}

impl Token {
    fn assign(&mut self, kind: u8, value: &[u8]) {
        let last = value.len().min(TOKEN_SIZE - 1);
        self.kind = kind;
        self.len = last;
        self.val[..last].copy_from_slice(&value[..last]);
        self.val[last] = 0;
    }

    fn assign_char(&mut self, kind: u8, value: u8) {
        self.kind = kind;
        self.len = 1;
        self.val[0] = value;
        self.val[1] = 0;
    }

    fn value(&self) -> &[u8] {
        &self.val[..self.len]
    }

    /// The value as C sees it: up to the first NUL.
    fn c_str(&self) -> &[u8] {
        let v = self.value();
        let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
        &v[..end]
    }

    fn is_arithmetic_op(&self) -> bool {
        self.kind == T_OPERATOR && self.len == 1 && b"*/-+%".contains(&self.val[0])
    }

    fn is_unary_op(&self) -> bool {
        if self.kind != T_OPERATOR {
            return false;
        }
        match self.len {
            1 => b"+-!~".contains(&self.val[0]),
            2 => self.val[0] == b'!' && self.val[1] == b'!',
            3 => upper_eq(b"NOT", self.value()),
            _ => false,
        }
    }
}

/// `upper` (upper case) equals `b` without regard to ASCII case (C's `cstrcasecmp == 0`).
fn upper_eq(upper: &[u8], b: &[u8]) -> bool {
    upper.len() == b.len()
        && upper
            .iter()
            .zip(b)
            .all(|(u, c)| *u == c.to_ascii_uppercase())
}

/// The reference's whitespace: space, \t \n \v \f \r, NUL and Latin-1 NBSP.
fn is_white(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0 | 0)
}

/// C's `strchr(set, c)`: NUL is always "in" a C string.
fn in_set(set: &[u8], c: u8) -> bool {
    c == 0 || set.contains(&c)
}

/// Length of the leading run of bytes in `set`.
fn span(s: &[u8], set: &[u8]) -> usize {
    s.iter().position(|c| !in_set(set, *c)).unwrap_or(s.len())
}

/// Length of the leading run of bytes not in `set`.
fn cspan(s: &[u8], set: &[u8]) -> usize {
    s.iter().position(|c| in_set(set, *c)).unwrap_or(s.len())
}

/// A set of bytes as a table (with NUL, as C's `strcspn` stops there), for the spans the
/// tokenizer measures on every word.
const fn byte_table(set: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    table[0] = true;
    let mut i = 0;
    while i < set.len() {
        table[set[i] as usize] = true;
        i += 1;
    }
    table
}

/// What ends a word (`parse_word`).
static WORD_END: [bool; 256] = byte_table(b" []{}<>:\\?=@!#~+-*/&|^%(),';\t\n\x0b\x0c\r\"\xa0");

/// [`cspan`] over a [`byte_table`].
fn cspan_table(s: &[u8], table: &[bool; 256]) -> usize {
    s.iter()
        .position(|c| table[usize::from(*c)])
        .unwrap_or(s.len())
}

/// Position of the two-byte sequence `c0 c1`.
fn find2(s: &[u8], c0: u8, c1: u8) -> Option<usize> {
    if s.len() < 2 {
        return None;
    }
    s.windows(2).position(|w| w[0] == c0 && w[1] == c1)
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if haystack.len() < needle.len() {
        return None;
    }
    memchr::memmem::find(haystack, needle)
}

/// The keyword table entry for `key` (case-insensitive), or 0.
fn lookup(key: &[u8]) -> u8 {
    if key.is_empty() || key.len() > 40 || !key.is_ascii() {
        return CHAR_NULL;
    }
    let first = key[0].to_ascii_uppercase();
    if KEYWORD_STARTS[key.len()][usize::from(first >> 6)] & (1 << (first & 63)) == 0 {
        // No keyword of this length starts with this letter (most words of a value).
        return CHAR_NULL;
    }
    let mut buf = [0u8; 40];
    for (b, c) in buf.iter_mut().zip(key) {
        *b = c.to_ascii_uppercase();
    }
    let upper = &buf[..key.len()];
    KEYWORDS.get(upper).copied().unwrap_or(CHAR_NULL)
}

/// Per word length (up to 40), the first bytes of the table's keywords of that length.
static KEYWORD_STARTS: std::sync::LazyLock<[[u64; 4]; 41]> = std::sync::LazyLock::new(|| {
    let mut starts = [[0u64; 4]; 41];
    for word in KEYWORDS.keys() {
        if let (Some(first), Some(bits)) = (word.first(), starts.get_mut(word.len())) {
            bits[usize::from(first >> 6)] |= 1 << (first & 63);
        }
    }
    starts
});

/// The keyword table by upper-case word: one hash per lookup instead of a binary search
/// over thousands of words (the tokenizer looks up every word of every value).
static KEYWORDS: std::sync::LazyLock<fnv::FnvHashMap<&'static [u8], u8>> =
    std::sync::LazyLock::new(|| {
        SQL_KEYWORDS
            .iter()
            .map(|k| (k.word.as_bytes(), k.token_type))
            .collect()
    });

struct State<'a> {
    s: &'a [u8],
    flags: u32,
    pos: usize,
    tokens: [Token; MAX_TOKENS + 3],
    current: usize,
    comment_ddx: u32,
    comment_hash: u32,
    stats_tokens: u32,
    fingerprint: [u8; MAX_TOKENS + 1],
    fingerprint_len: usize,
}

impl<'a> State<'a> {
    fn new(s: &'a [u8]) -> State<'a> {
        State {
            s,
            flags: FLAG_QUOTE_NONE | FLAG_SQL_ANSI,
            pos: 0,
            tokens: [Token::default(); MAX_TOKENS + 3],
            current: 0,
            comment_ddx: 0,
            comment_hash: 0,
            stats_tokens: 0,
            fingerprint: [0; MAX_TOKENS + 1],
            fingerprint_len: 0,
        }
    }

    fn reset(&mut self, flags: u32) {
        *self = State::new(self.s);
        self.flags = flags;
    }

    fn cur(&mut self) -> &mut Token {
        &mut self.tokens[self.current]
    }

    fn byte(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    // --- the byte-class parsers; each returns the next position ---------------------

    fn parse(&mut self, class: CharType) -> usize {
        use CharType::*;
        match class {
            White => self.pos + 1,
            Bang | Op2 => self.parse_operator2(),
            String => self.parse_string(),
            Hash => self.parse_hash(),
            Money => self.parse_money(),
            Op1 | Unary => self.parse_operator1(),
            LeftParens | RightParens | Comma | Semicolon | LeftBrace | RightBrace => {
                let c = self.s[self.pos];
                self.cur().assign_char(c, c);
                self.pos + 1
            }
            Dash => self.parse_dash(),
            Number => self.parse_number(),
            Slash => self.parse_slash(),
            Variable => self.parse_var(),
            Word => self.parse_word(),
            BString => self.parse_bxstring(b"01"),
            XString => self.parse_bxstring(b"0123456789ABCDEFabcdef"),
            EString => self.parse_estring(),
            NQString => self.parse_nqstring(),
            QString => self.parse_qstring_core(0),
            UString => self.parse_ustring(),
            BWord => self.parse_bword(),
            Backslash => self.parse_backslash(),
            Tick => self.parse_tick(),
            Other => {
                let c = self.s[self.pos];
                self.cur().assign_char(T_UNKNOWN, c);
                self.pos + 1
            }
        }
    }

    fn parse_operator1(&mut self) -> usize {
        let c = self.s[self.pos];
        self.cur().assign_char(T_OPERATOR, c);
        self.pos + 1
    }

    fn parse_eol_comment(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        match memchr::memchr(b'\n', &s[pos..]) {
            None => {
                self.cur().assign(T_COMMENT, &s[pos..]);
                s.len()
            }
            Some(i) => {
                self.cur().assign(T_COMMENT, &s[pos..pos + i]);
                pos + i + 1
            }
        }
    }

    fn parse_hash(&mut self) -> usize {
        self.comment_hash += 1;
        if self.flags & FLAG_SQL_MYSQL != 0 {
            self.comment_hash += 1;
            self.parse_eol_comment()
        } else {
            self.cur().assign_char(T_OPERATOR, b'#');
            self.pos + 1
        }
    }

    fn parse_dash(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        // "-- " and a final "--" are comments everywhere; "--x" only in ANSI mode.
        let double = pos + 1 < slen && s[pos + 1] == b'-';
        if double && (pos + 2 == slen || (pos + 2 < slen && is_white(s[pos + 2]))) {
            self.parse_eol_comment()
        } else if pos + 1 < slen && s[pos + 1] == b'-' && self.flags & FLAG_SQL_ANSI != 0 {
            self.comment_ddx += 1;
            self.parse_eol_comment()
        } else {
            self.cur().assign_char(T_OPERATOR, b'-');
            pos + 1
        }
    }

    fn parse_slash(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 1 == slen || s[pos + 1] != b'*' {
            return self.parse_operator1();
        }
        let end = find2(&s[pos + 2..], b'*', b'/').map(|i| pos + 2 + i);
        let clen = match end {
            None => slen - pos,
            Some(e) => e + 2 - pos,
        };
        let mut kind = T_COMMENT;
        // A nested comment opener, or MySQL's executable /*! comment: unparseable.
        let nested = end
            .is_some_and(|e| find2(&s[pos + 2..pos + 2 + (e - (pos + 1))], b'/', b'*').is_some());
        if nested || (pos + 2 < slen && s[pos + 2] == b'!') {
            kind = T_EVIL;
        }
        self.cur().assign(kind, &s[pos..pos + clen]);
        pos + clen
    }

    fn parse_backslash(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 1 < s.len() && s[pos + 1] == b'N' {
            self.cur().assign(T_NUMBER, &s[pos..pos + 2]);
            pos + 2
        } else {
            self.cur().assign_char(T_BACKSLASH, s[pos]);
            pos + 1
        }
    }

    fn parse_operator2(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 1 >= slen {
            return self.parse_operator1();
        }
        if pos + 2 < slen && s[pos] == b'<' && s[pos + 1] == b'=' && s[pos + 2] == b'>' {
            self.cur().assign(T_OPERATOR, &s[pos..pos + 3]);
            return pos + 3;
        }
        let ch = lookup(&s[pos..pos + 2]);
        if ch != CHAR_NULL {
            self.cur().assign(ch, &s[pos..pos + 2]);
            return pos + 2;
        }
        if s[pos] == b':' {
            self.cur().assign(T_COLON, &s[pos..pos + 1]);
            pos + 1
        } else {
            self.parse_operator1()
        }
    }

    /// A quoted string from `pos + offset` to the closing `delim` (not escaped by a
    /// backslash or doubled); `offset` 0 means the opening quote is imagined.
    fn parse_string_core(&mut self, pos: usize, delim: u8, offset: usize) -> usize {
        let s = self.s;
        let slen = s.len();
        let start = pos + offset;
        let tok = &mut self.tokens[self.current];
        tok.str_open = if offset > 0 { delim } else { CHAR_NULL };
        let mut q = memchr::memchr(delim, &s[start.min(slen)..]).map(|i| start + i);
        loop {
            match q {
                None => {
                    tok.assign(T_STRING, &s[start.min(slen)..]);
                    tok.str_close = CHAR_NULL;
                    return slen;
                }
                Some(qp) => {
                    // Backslashes just before the quote, back to the string's start.
                    let mut n = 0;
                    while qp > start + n && s[qp - 1 - n] == b'\\' {
                        n += 1;
                    }
                    if n % 2 == 1 {
                        q = memchr::memchr(delim, &s[qp + 1..]).map(|i| qp + 1 + i);
                        continue;
                    }
                    if qp + 1 < slen && s[qp + 1] == s[qp] {
                        q = memchr::memchr(delim, &s[(qp + 2).min(slen)..]).map(|i| qp + 2 + i);
                        continue;
                    }
                    tok.assign(T_STRING, &s[start..qp]);
                    tok.str_close = delim;
                    return qp + 1;
                }
            }
        }
    }

    fn parse_string(&mut self) -> usize {
        let pos = self.pos;
        let delim = self.s[pos];
        self.parse_string_core(pos, delim, 1)
    }

    fn parse_estring(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 2 >= s.len() || s[pos + 1] != CHAR_SINGLE {
            return self.parse_word();
        }
        self.parse_string_core(pos, CHAR_SINGLE, 2)
    }

    fn parse_ustring(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 2 < s.len() && s[pos + 1] == b'&' && s[pos + 2] == b'\'' {
            self.pos += 2;
            let next = self.parse_string();
            let tok = self.cur();
            tok.str_open = b'u';
            if tok.str_close == b'\'' {
                tok.str_close = b'u';
            }
            next
        } else {
            self.parse_word()
        }
    }

    fn parse_qstring_core(&mut self, offset: usize) -> usize {
        let s = self.s;
        let slen = s.len();
        let pos = self.pos + offset;
        if pos >= slen
            || (s[pos] != b'q' && s[pos] != b'Q')
            || pos + 2 >= slen
            || s[pos + 1] != b'\''
        {
            return self.parse_word();
        }
        let mut ch = s[pos + 2];
        // C's char is signed: bytes past 127 count as below 33.
        if (ch as i8) < 33 {
            return self.parse_word();
        }
        ch = match ch {
            b'(' => b')',
            b'[' => b']',
            b'{' => b'}',
            b'<' => b'>',
            c => c,
        };
        let tok = &mut self.tokens[self.current];
        match find2(&s[pos + 3..], ch, b'\'') {
            None => {
                tok.assign(T_STRING, &s[pos + 3..]);
                tok.str_open = b'q';
                tok.str_close = CHAR_NULL;
                slen
            }
            Some(i) => {
                tok.assign(T_STRING, &s[pos + 3..pos + 3 + i]);
                tok.str_open = b'q';
                tok.str_close = b'q';
                pos + 3 + i + 2
            }
        }
    }

    fn parse_nqstring(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 2 < s.len() && s[pos + 1] == CHAR_SINGLE {
            return self.parse_estring();
        }
        self.parse_qstring_core(1)
    }

    /// `b'0101'` and `x'00ff'` literals (numbers).
    fn parse_bxstring(&mut self, digits: &[u8]) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 2 >= slen || s[pos + 1] != b'\'' {
            return self.parse_word();
        }
        let wlen = span(&s[pos + 2..], digits);
        if pos + 2 + wlen >= slen || s[pos + 2 + wlen] != b'\'' {
            return self.parse_word();
        }
        self.cur().assign(T_NUMBER, &s[pos..pos + wlen + 3]);
        pos + 2 + wlen + 1
    }

    /// SQL Server's `[bracketed words]`.
    fn parse_bword(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        match memchr::memchr(b']', &s[pos..]) {
            None => {
                self.cur().assign(T_BAREWORD, &s[pos..]);
                s.len()
            }
            Some(i) => {
                self.cur().assign(T_BAREWORD, &s[pos..pos + i + 1]);
                pos + i + 1
            }
        }
    }

    fn parse_word(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let wlen = cspan_table(&s[pos..], &WORD_END);
        let tok = &mut self.tokens[self.current];
        tok.assign(T_BAREWORD, &s[pos..pos + wlen]);
        for i in 0..tok.len {
            let delim = tok.val[i];
            if delim == b'.' || delim == b'`' {
                let ch = lookup(&tok.val[..i]);
                if ch != T_NONE && ch != T_BAREWORD {
                    *tok = Token::default();
                    tok.assign(ch, &s[pos..pos + i]);
                    return pos + i;
                }
            }
        }
        if wlen < TOKEN_SIZE {
            let ch = lookup(&tok.val[..wlen]);
            tok.kind = if ch == CHAR_NULL { T_BAREWORD } else { ch };
        }
        pos + wlen
    }

    fn parse_tick(&mut self) -> usize {
        let pos = self.parse_string_core(self.pos, CHAR_TICK, 1);
        let tok = self.cur();
        tok.kind = if lookup(tok.value()) == T_FUNCTION {
            T_FUNCTION
        } else {
            T_BAREWORD
        };
        pos
    }

    fn parse_var(&mut self) -> usize {
        let s = self.s;
        let slen = s.len();
        let mut pos = self.pos + 1;
        if pos < slen && s[pos] == b'@' {
            pos += 1;
        }
        if pos < slen {
            if s[pos] == b'`' {
                self.pos = pos;
                let next = self.parse_tick();
                self.cur().kind = T_VARIABLE;
                return next;
            } else if s[pos] == CHAR_SINGLE || s[pos] == CHAR_DOUBLE {
                self.pos = pos;
                let next = self.parse_string();
                self.cur().kind = T_VARIABLE;
                return next;
            }
        }
        let xlen = cspan(
            &s[pos.min(slen)..],
            b" <>:\\?=@!#~+-*/&|^%(),';\t\n\x0b\x0c\r'`\"",
        );
        self.cur()
            .assign(T_VARIABLE, &s[pos.min(slen)..pos.min(slen) + xlen]);
        pos + xlen
    }

    fn parse_money(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 1 == slen {
            self.cur().assign_char(T_BAREWORD, b'$');
            return slen;
        }
        let xlen = span(&s[pos + 1..], b"0123456789.,");
        if xlen == 0 {
            if s[pos + 1] == b'$' {
                // $$ quoted string $$
                return match find2(&s[pos + 2..], b'$', b'$') {
                    None => {
                        let tok = self.cur();
                        tok.assign(T_STRING, &s[pos + 2..]);
                        tok.str_open = b'$';
                        tok.str_close = CHAR_NULL;
                        slen
                    }
                    Some(i) => {
                        let tok = self.cur();
                        tok.assign(T_STRING, &s[pos + 2..pos + 2 + i]);
                        tok.str_open = b'$';
                        tok.str_close = b'$';
                        pos + 2 + i + 2
                    }
                };
            }
            let xlen = span(
                &s[pos + 1..],
                b"abcdefghjiklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
            );
            if xlen == 0 || pos + xlen + 1 == slen || s[pos + xlen + 1] != b'$' {
                self.cur().assign_char(T_BAREWORD, b'$');
                return pos + 1;
            }
            // $tag$ quoted string $tag$
            let tag = &s[pos..pos + xlen + 2];
            let body = pos + xlen + 2;
            let tok = &mut self.tokens[self.current];
            return match find_bytes(&s[body..], tag) {
                None => {
                    tok.assign(T_STRING, &s[body..]);
                    tok.str_open = b'$';
                    tok.str_close = CHAR_NULL;
                    slen
                }
                Some(i) => {
                    tok.assign(T_STRING, &s[body..body + i]);
                    tok.str_open = b'$';
                    tok.str_close = b'$';
                    body + i + xlen + 2
                }
            };
        }
        if xlen == 1 && s[pos + 1] == b'.' {
            return self.parse_word();
        }
        self.cur().assign(T_NUMBER, &s[pos..pos + 1 + xlen]);
        pos + 1 + xlen
    }

    fn parse_number(&mut self) -> usize {
        let s = self.s;
        let slen = s.len();
        let mut pos = self.pos;
        if s[pos] == b'0' && pos + 1 < slen {
            let digits: Option<&[u8]> = match s[pos + 1] {
                b'X' | b'x' => Some(b"0123456789ABCDEFabcdef"),
                b'B' | b'b' => Some(b"01"),
                _ => None,
            };
            if let Some(digits) = digits {
                let xlen = span(&s[pos + 2..], digits);
                let (kind, len) = if xlen == 0 {
                    (T_BAREWORD, 2)
                } else {
                    (T_NUMBER, 2 + xlen)
                };
                self.cur().assign(kind, &s[pos..pos + len]);
                return pos + len;
            }
        }
        let start = pos;
        while pos < slen && s[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos < slen && s[pos] == b'.' {
            pos += 1;
            while pos < slen && s[pos].is_ascii_digit() {
                pos += 1;
            }
            if pos - start == 1 {
                self.cur().assign_char(T_DOT, b'.');
                return pos;
            }
        }
        let (mut have_e, mut have_exp) = (false, false);
        if pos < slen && (s[pos] == b'E' || s[pos] == b'e') {
            have_e = true;
            pos += 1;
            if pos < slen && (s[pos] == b'+' || s[pos] == b'-') {
                pos += 1;
            }
            while pos < slen && s[pos].is_ascii_digit() {
                have_exp = true;
                pos += 1;
            }
        }
        if pos < slen && matches!(s[pos], b'd' | b'D' | b'f' | b'F') {
            // "1.2f" at the end, before white space or ';', or before a U ("1fUNION").
            if pos + 1 == slen || is_white(s[pos + 1]) || matches!(s[pos + 1], b';' | b'u' | b'U') {
                pos += 1;
            }
        }
        // "1.e" without exponent digits is no number (MySQL reads it as nothing, the
        // 2021 scientific-notation bypass): a bareword, as the reference has it.
        let kind = if have_e && !have_exp {
            T_BAREWORD
        } else {
            T_NUMBER
        };
        self.cur().assign(kind, &s[start..pos]);
        pos
    }

    /// Reads the next token into `tokens[current]`; false at the end of input.
    fn tokenize(&mut self) -> bool {
        let s = self.s;
        if s.is_empty() {
            return false;
        }
        *self.cur() = Token::default();
        if self.pos == 0 && self.flags & (FLAG_QUOTE_SINGLE | FLAG_QUOTE_DOUBLE) != 0 {
            let delim = if self.flags & FLAG_QUOTE_SINGLE != 0 {
                CHAR_SINGLE
            } else {
                CHAR_DOUBLE
            };
            self.pos = self.parse_string_core(0, delim, 0);
            self.stats_tokens += 1;
            return true;
        }
        while self.pos < s.len() {
            let class = CHAR_MAP[usize::from(s[self.pos])];
            self.pos = self.parse(class);
            if self.tokens[self.current].kind != CHAR_NULL {
                self.stats_tokens += 1;
                return true;
            }
        }
        false
    }

    /// Merges two words into a compound keyword ("UNION" + "ALL") when the table has it.
    fn merge_words(&mut self, a: usize, b: usize) -> bool {
        let ta = self.tokens[a];
        let tb = self.tokens[b];
        let word = |k: u8| {
            matches!(
                k,
                T_KEYWORD
                    | T_BAREWORD
                    | T_OPERATOR
                    | T_UNION
                    | T_FUNCTION
                    | T_EXPRESSION
                    | T_TSQL
                    | T_SQLTYPE
            )
        };
        if !word(ta.kind) || !(word(tb.kind) || tb.kind == T_LOGIC_OPERATOR) {
            return false;
        }
        let sz3 = ta.len + tb.len + 1;
        if sz3 >= TOKEN_SIZE {
            return false;
        }
        let mut tmp = [0u8; TOKEN_SIZE];
        tmp[..ta.len].copy_from_slice(ta.value());
        tmp[ta.len] = b' ';
        tmp[ta.len + 1..sz3].copy_from_slice(tb.value());
        let ch = lookup(&tmp[..sz3]);
        if ch == CHAR_NULL {
            return false;
        }
        self.tokens[a].assign(ch, &tmp[..sz3]);
        true
    }

    fn kinds(&self, at: usize) -> u8 {
        self.tokens[at].kind
    }

    /// Reads tokens into `tokens[pos..]` until `pos` reaches `until` (or the input or the
    /// token array ends); comments are set aside in `last_comment`, not kept in place.
    /// Returns whether there may be more tokens.
    fn read_until(
        &mut self,
        pos: &mut usize,
        until: usize,
        mut more: bool,
        last_comment: &mut Token,
    ) -> bool {
        while more && *pos <= MAX_TOKENS && *pos < until {
            self.current = *pos;
            more = self.tokenize();
            if more {
                if self.tokens[*pos].kind == T_COMMENT {
                    *last_comment = self.tokens[*pos];
                } else {
                    last_comment.kind = CHAR_NULL;
                    *pos += 1;
                }
            }
        }
        more
    }

    /// Folds the token stream into at most five tokens; returns how many. The branches
    /// follow the reference's folding rules one by one (some share a body: kept apart so
    /// each rule can be read against the reference).
    #[allow(clippy::if_same_then_else)]
    fn fold(&mut self) -> usize {
        let mut last_comment = Token::default();
        let mut pos = 0usize;
        let mut left = 0usize;
        let mut more;
        self.current = 0;
        loop {
            more = self.tokenize();
            let t = &self.tokens[0];
            if !(t.kind == T_COMMENT
                || t.kind == T_LEFTPARENS
                || t.kind == T_SQLTYPE
                || t.is_unary_op())
            {
                break;
            }
            if !more {
                break;
            }
        }
        if !more {
            return 0;
        }
        pos += 1;
        loop {
            if pos >= MAX_TOKENS {
                let k = |i: usize| self.tokens[i].kind;
                if (k(0) == T_NUMBER
                    && (k(1) == T_OPERATOR || k(1) == T_COMMA)
                    && k(2) == T_LEFTPARENS
                    && k(3) == T_NUMBER
                    && k(4) == T_RIGHTPARENS)
                    || (k(0) == T_BAREWORD
                        && k(1) == T_OPERATOR
                        && k(2) == T_LEFTPARENS
                        && (k(3) == T_BAREWORD || k(3) == T_NUMBER)
                        && k(4) == T_RIGHTPARENS)
                    || (k(0) == T_NUMBER
                        && k(1) == T_RIGHTPARENS
                        && k(2) == T_COMMA
                        && k(3) == T_LEFTPARENS
                        && k(4) == T_NUMBER)
                    || (k(0) == T_BAREWORD
                        && k(1) == T_RIGHTPARENS
                        && k(2) == T_OPERATOR
                        && k(3) == T_LEFTPARENS
                        && k(4) == T_BAREWORD)
                {
                    if pos > MAX_TOKENS {
                        self.tokens[1] = self.tokens[MAX_TOKENS];
                        pos = 2;
                    } else {
                        pos = 1;
                    }
                    left = 0;
                }
            }
            if !more || left >= MAX_TOKENS {
                left = pos;
                break;
            }
            // Up to two tokens.
            more = self.read_until(&mut pos, left + 2, more, &mut last_comment);
            if pos - left < 2 {
                left = pos;
                continue;
            }
            let (a, b) = (self.kinds(left), self.kinds(left + 1));
            if (a == T_STRING && b == T_STRING) || (a == T_SEMICOLON && b == T_SEMICOLON) {
                // "foo" "bar" is one string; repeated semicolons are one.
                pos -= 1;
                continue;
            } else if (a == T_OPERATOR || a == T_LOGIC_OPERATOR)
                && (self.tokens[left + 1].is_unary_op() || b == T_SQLTYPE)
            {
                pos -= 1;
                left = 0;
                continue;
            } else if a == T_LEFTPARENS && self.tokens[left + 1].is_unary_op() {
                pos -= 1;
                left = left.saturating_sub(1);
                continue;
            } else if self.merge_words(left, left + 1) {
                pos -= 1;
                left = left.saturating_sub(1);
                continue;
            } else if a == T_SEMICOLON
                && b == T_FUNCTION
                && matches!(self.tokens[left + 1].val[0], b'I' | b'i')
                && matches!(self.tokens[left + 1].val[1], b'F' | b'f')
            {
                self.tokens[left + 1].kind = T_TSQL;
                continue;
            } else if (a == T_BAREWORD || a == T_VARIABLE) && b == T_LEFTPARENS && {
                let v = self.tokens[left].value();
                [
                    &b"USER_ID"[..],
                    b"USER_NAME",
                    b"DATABASE",
                    b"PASSWORD",
                    b"USER",
                    b"CURRENT_USER",
                    b"CURRENT_DATE",
                    b"CURRENT_TIME",
                    b"CURRENT_TIMESTAMP",
                    b"LOCALTIME",
                    b"LOCALTIMESTAMP",
                ]
                .iter()
                .any(|w| upper_eq(w, v))
            } {
                self.tokens[left].kind = T_FUNCTION;
                continue;
            } else if a == T_KEYWORD
                && (upper_eq(b"IN", self.tokens[left].value())
                    || upper_eq(b"NOT IN", self.tokens[left].value()))
            {
                self.tokens[left].kind = if b == T_LEFTPARENS {
                    T_OPERATOR
                } else {
                    T_BAREWORD
                };
                continue;
            } else if a == T_OPERATOR
                && (upper_eq(b"LIKE", self.tokens[left].value())
                    || upper_eq(b"NOT LIKE", self.tokens[left].value()))
            {
                if b == T_LEFTPARENS {
                    self.tokens[left].kind = T_FUNCTION;
                }
            } else if a == T_SQLTYPE
                && matches!(
                    b,
                    T_BAREWORD
                        | T_NUMBER
                        | T_SQLTYPE
                        | T_LEFTPARENS
                        | T_FUNCTION
                        | T_VARIABLE
                        | T_STRING
                )
            {
                self.tokens[left] = self.tokens[left + 1];
                pos -= 1;
                left = 0;
                continue;
            } else if a == T_COLLATE && b == T_BAREWORD {
                if self.tokens[left + 1].c_str().contains(&b'_') {
                    self.tokens[left + 1].kind = T_SQLTYPE;
                    left = 0;
                }
            } else if a == T_BACKSLASH {
                if self.tokens[left + 1].is_arithmetic_op() {
                    self.tokens[left].kind = T_NUMBER;
                } else {
                    self.tokens[left] = self.tokens[left + 1];
                    pos -= 1;
                }
                left = 0;
                continue;
            } else if (a == T_LEFTPARENS && b == T_LEFTPARENS)
                || (a == T_RIGHTPARENS && b == T_RIGHTPARENS)
            {
                pos -= 1;
                left = 0;
                continue;
            } else if a == T_LEFTBRACE && b == T_BAREWORD {
                if self.tokens[left + 1].len == 0 {
                    self.tokens[left + 1].kind = T_EVIL;
                    return left + 2;
                }
                left = 0;
                pos -= 2;
                continue;
            } else if b == T_RIGHTBRACE {
                pos -= 1;
                left = 0;
                continue;
            }
            // Three tokens.
            more = self.read_until(&mut pos, left + 3, more, &mut last_comment);
            if pos - left < 3 {
                left = pos;
                continue;
            }
            let (a, b, c) = (self.kinds(left), self.kinds(left + 1), self.kinds(left + 2));
            let unary_b = self.tokens[left + 1].is_unary_op();
            if a == T_NUMBER && b == T_OPERATOR && c == T_NUMBER {
                pos -= 2;
                left = 0;
                continue;
            } else if a == T_OPERATOR && b != T_LEFTPARENS && c == T_OPERATOR {
                left = 0;
                pos -= 2;
                continue;
            } else if a == T_LOGIC_OPERATOR && c == T_LOGIC_OPERATOR {
                pos -= 2;
                left = 0;
                continue;
            } else if a == T_VARIABLE
                && b == T_OPERATOR
                && matches!(c, T_VARIABLE | T_NUMBER | T_BAREWORD)
            {
                pos -= 2;
                left = 0;
                continue;
            } else if matches!(a, T_BAREWORD | T_NUMBER)
                && b == T_OPERATOR
                && matches!(c, T_NUMBER | T_BAREWORD)
            {
                pos -= 2;
                left = 0;
                continue;
            } else if matches!(a, T_BAREWORD | T_NUMBER | T_VARIABLE | T_STRING)
                && b == T_OPERATOR
                && self.tokens[left + 1].c_str() == b"::"
                && c == T_SQLTYPE
            {
                pos -= 2;
                left = 0;
                continue;
            } else if matches!(a, T_BAREWORD | T_NUMBER | T_STRING | T_VARIABLE)
                && b == T_COMMA
                && matches!(c, T_NUMBER | T_BAREWORD | T_STRING | T_VARIABLE)
            {
                pos -= 2;
                left = 0;
                continue;
            } else if matches!(a, T_EXPRESSION | T_GROUP | T_COMMA) && unary_b && c == T_LEFTPARENS
            {
                self.tokens[left + 1] = self.tokens[left + 2];
                pos -= 1;
                left = 0;
                continue;
            } else if matches!(a, T_KEYWORD | T_EXPRESSION | T_GROUP)
                && unary_b
                && matches!(
                    c,
                    T_NUMBER | T_BAREWORD | T_VARIABLE | T_STRING | T_FUNCTION
                )
            {
                self.tokens[left + 1] = self.tokens[left + 2];
                pos -= 1;
                left = 0;
                continue;
            } else if a == T_COMMA
                && unary_b
                && matches!(c, T_NUMBER | T_BAREWORD | T_VARIABLE | T_STRING)
            {
                self.tokens[left + 1] = self.tokens[left + 2];
                left = 0;
                pos -= 3;
                continue;
            } else if a == T_COMMA && unary_b && c == T_FUNCTION {
                self.tokens[left + 1] = self.tokens[left + 2];
                pos -= 1;
                left = 0;
                continue;
            } else if a == T_BAREWORD && b == T_DOT && c == T_BAREWORD {
                pos -= 2;
                left = 0;
                continue;
            } else if a == T_EXPRESSION && b == T_DOT && c == T_BAREWORD {
                self.tokens[left + 1] = self.tokens[left + 2];
                pos -= 1;
                left = 0;
                continue;
            } else if a == T_FUNCTION
                && b == T_LEFTPARENS
                && c != T_RIGHTPARENS
                && upper_eq(b"USER", self.tokens[left].value())
            {
                // USER() takes no argument: "user(x)" is no function call.
                self.tokens[left].kind = T_BAREWORD;
            }
            left += 1;
        }
        if left < MAX_TOKENS && last_comment.kind == T_COMMENT {
            self.tokens[left] = last_comment;
            left += 1;
        }
        left.min(MAX_TOKENS)
    }

    fn fingerprint(&mut self, flags: u32) {
        self.reset(flags);
        let tlen = self.fold();
        if tlen > 2 {
            let t = &mut self.tokens[tlen - 1];
            if t.kind == T_BAREWORD
                && t.str_open == CHAR_TICK
                && t.len == 0
                && t.str_close == CHAR_NULL
            {
                t.kind = T_COMMENT;
            }
        }
        for i in 0..tlen {
            self.fingerprint[i] = self.tokens[i].kind;
        }
        self.fingerprint_len = tlen;
        if self.fingerprint[..tlen].contains(&T_EVIL) {
            self.fingerprint = [0; MAX_TOKENS + 1];
            self.fingerprint[0] = T_EVIL;
            self.fingerprint_len = 1;
            self.tokens[0].kind = T_EVIL;
            self.tokens[0].val = [0; TOKEN_SIZE];
            self.tokens[0].val[0] = T_EVIL;
            self.tokens[0].len = 1;
            self.tokens[1].kind = CHAR_NULL;
        }
    }

    /// The fingerprint as C reads it: up to the first NUL.
    fn fp(&self) -> &[u8] {
        let fp = &self.fingerprint[..self.fingerprint_len];
        let end = fp.iter().position(|c| *c == 0).unwrap_or(fp.len());
        &fp[..end]
    }

    fn blacklisted(&self) -> bool {
        let fp = self.fp();
        if fp.is_empty() {
            return false;
        }
        let mut key = [0u8; MAX_TOKENS + 2];
        key[0] = b'0';
        for (k, c) in key[1..].iter_mut().zip(fp) {
            *k = c.to_ascii_uppercase();
        }
        lookup(&key[..fp.len() + 1]) == T_FINGERPRINT
    }

    /// The reference's rules against false positives; true means "still SQLi".
    fn not_whitelisted(&self) -> bool {
        let fp = self.fp();
        let tlen = fp.len();
        let t = &self.tokens;
        if tlen > 1 && fp[tlen - 1] == T_COMMENT && find_bytes(self.s, b"sp_password").is_some() {
            return true;
        }
        match tlen {
            2 => {
                if fp[1] == T_UNION {
                    return self.stats_tokens != 2;
                }
                if t[1].val[0] == b'#' {
                    return false;
                }
                if t[0].kind == T_BAREWORD && t[1].kind == T_COMMENT && t[1].val[0] != b'/' {
                    return false;
                }
                if t[0].kind == T_NUMBER && t[1].kind == T_COMMENT && t[1].val[0] == b'/' {
                    return true;
                }
                if t[0].kind == T_NUMBER && t[1].kind == T_COMMENT {
                    if self.stats_tokens > 2 {
                        return true;
                    }
                    let ch = self.byte(t[0].len);
                    if ch <= 32 {
                        return true;
                    }
                    if ch == b'/' && self.byte(t[0].len + 1) == b'*' {
                        return true;
                    }
                    if ch == b'-' && self.byte(t[0].len + 1) == b'-' {
                        return true;
                    }
                    return false;
                }
                if t[1].len > 2 && t[1].val[0] == b'-' {
                    return false;
                }
            }
            3 => {
                if fp == b"sos" || fp == b"s&s" {
                    return t[0].str_open == CHAR_NULL
                        && t[2].str_close == CHAR_NULL
                        && t[0].str_close == t[2].str_open;
                } else if fp == b"s&n"
                    || fp == b"n&1"
                    || fp == b"1&1"
                    || fp == b"1&v"
                    || fp == b"1&s"
                {
                    if self.stats_tokens == 3 {
                        return false;
                    }
                } else if t[1].kind == T_KEYWORD
                    && (t[1].len < 5 || !upper_eq(b"INTO", &t[1].val[..4]))
                {
                    return false;
                }
            }
            _ => {}
        }
        true
    }

    fn check(&self) -> bool {
        self.blacklisted() && self.not_whitelisted()
    }
}

/// The libinjection fingerprint when `input` is SQL injection (as `libinjection_sqli`).
pub fn detect(input: &[u8]) -> Option<String> {
    if one_word_or_number(input) {
        return None;
    }
    detect_by_tokens(input)
}

/// A value the tokenizer reads as exactly one token: a word (a letter or `_`, then
/// letters, digits or `_`: no delimiter, no `.` or backquote to split at, no quote after
/// the `x`/`b`/`e`/`n`/`q`/`u` prefixes) or digits alone (one number). A one-token
/// fingerprint is the token's type: the keyword table's type of the word, bareword, or
/// number; none of them is SQL injection, which
/// `a_single_word_or_number_is_never_sqli_whatever_its_type` checks for every type such
/// a word can have (every keyword of the table spelt this way). Most request values
/// (`shoes`, `price_asc`, `42`, cookie names) are answered here without the tokenizer.
fn one_word_or_number(input: &[u8]) -> bool {
    match input.split_first() {
        Some((first, rest)) if first.is_ascii_alphabetic() || *first == b'_' => {
            rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        Some((first, rest)) if first.is_ascii_digit() => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// [`detect`] without the one-token shortcut: the reference's passes.
fn detect_by_tokens(input: &[u8]) -> Option<String> {
    if input.is_empty() {
        return None;
    }
    let mut st = State::new(input);
    let found = |st: &State| Some(String::from_utf8_lossy(st.fp()).into_owned());
    st.fingerprint(FLAG_QUOTE_NONE | FLAG_SQL_ANSI);
    if st.check() {
        return found(&st);
    } else if st.comment_ddx > 0 || st.comment_hash > 0 {
        st.fingerprint(FLAG_QUOTE_NONE | FLAG_SQL_MYSQL);
        if st.check() {
            return found(&st);
        }
    }
    if memchr::memchr(CHAR_SINGLE, input).is_some() {
        st.fingerprint(FLAG_QUOTE_SINGLE | FLAG_SQL_ANSI);
        if st.check() {
            return found(&st);
        } else if st.comment_ddx > 0 || st.comment_hash > 0 {
            st.fingerprint(FLAG_QUOTE_SINGLE | FLAG_SQL_MYSQL);
            if st.check() {
                return found(&st);
            }
        }
    }
    if memchr::memchr(CHAR_DOUBLE, input).is_some() {
        st.fingerprint(FLAG_QUOTE_DOUBLE | FLAG_SQL_MYSQL);
        if st.check() {
            return found(&st);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_word_or_number_is_never_sqli_whatever_its_type() {
        // Every type a one-token value can have: each keyword spelt as one word (in both
        // cases), a bareword, a word too long to be looked up, numbers.
        let mut inputs: Vec<Vec<u8>> = SQL_KEYWORDS
            .iter()
            .map(|k| k.word.as_bytes().to_vec())
            .filter(|w| one_word_or_number(w))
            .flat_map(|w| [w.to_ascii_lowercase(), w])
            .collect();
        assert!(inputs.len() > 1000, "the table's words: {}", inputs.len());
        inputs.extend(
            [
                &b"price_asc"[..],
                b"_ga",
                b"x",
                b"N",
                b"a1",
                b"42",
                b"0",
                b"007",
            ]
            .iter()
            .map(|w| w.to_vec()),
        );
        inputs.push(vec![b'a'; 40]);
        inputs.push(vec![b'9'; 40]);
        for input in &inputs {
            assert!(one_word_or_number(input));
            assert_eq!(
                detect_by_tokens(input),
                None,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        // Outside the class: split words, quotes, operators are left to the tokenizer.
        for input in [
            &b"1union"[..],
            b"a.b",
            b"x'1'",
            b"1 or 1",
            b"-1",
            b"1e1",
            b"",
        ] {
            assert!(
                !one_word_or_number(input),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert!(detect(b"1 union select 1").is_some());
    }

    #[test]
    fn the_keyword_table_is_sorted_for_binary_search() {
        assert!(SQL_KEYWORDS
            .windows(2)
            .all(|w| w[0].word.as_bytes() < w[1].word.as_bytes()));
        assert_eq!(lookup(b"select"), b'E');
        assert_eq!(lookup(b"lock in"), b'n');
        // The quick reject by length and first letter keeps every word of the table.
        for k in SQL_KEYWORDS.iter().filter(|k| k.word.len() <= 40) {
            let word = k.word.as_bytes();
            assert_eq!(
                lookup(&word.to_ascii_lowercase()),
                k.token_type,
                "{}",
                k.word
            );
        }
        assert_eq!(lookup(b"shop"), CHAR_NULL);
    }

    #[test]
    fn detects_like_the_reference() {
        assert_eq!(detect(b"1' OR '1'='1").as_deref(), Some("s&sos"));
        assert_eq!(detect(b"1 into outfile 'asd'").as_deref(), Some("1ks"));
        assert_eq!(
            detect(b"-1 LOCK IN SHARE MODE UNION SELECT table_name from information_schema.tables")
                .as_deref(),
            Some("1kUEn")
        );
        assert_eq!(detect(b"hello world"), None);
        assert_eq!(detect(b""), None);
    }
}

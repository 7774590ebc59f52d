//! Request body processors: URL-encoded forms, JSON (arguments named as ModSecurity v3's
//! JSON processor names them: `json.a.b`, `json.list.array_0`) and multipart/form-data
//! (fields, files and each part's header lines).

use super::transforms::url_decode;
use std::borrow::Cow;

/// One name/value pair found in a body or a query string.
pub type Pair = (Vec<u8>, Vec<u8>);

/// What a body processor found.
#[derive(Debug, Default)]
pub struct Parsed {
    pub args: Vec<Pair>,
    /// Uploaded files: (field name, file name, size).
    pub files: Vec<(Vec<u8>, Vec<u8>, usize)>,
    /// Every part's header lines, keyed by the part's field name.
    pub part_headers: Vec<Pair>,
    pub error: Option<String>,
}

/// `a=1&b=2`: names and values URL-decoded (`+` is a space), as ModSecurity does for
/// query strings and form bodies. Empty segments are skipped.
pub fn urlencoded(input: &[u8], separator: u8) -> Vec<Pair> {
    let mut pairs = Vec::new();
    each_urlencoded(input, separator, |name, value| {
        pairs.push((name.to_vec(), value.to_vec()))
    });
    pairs
}

/// [`urlencoded`]'s pairs handed to `pair` one by one, borrowed from `input` when they
/// need no decoding (most query strings: no allocation).
pub fn each_urlencoded(input: &[u8], separator: u8, mut pair: impl FnMut(&[u8], &[u8])) {
    for seg in input
        .split(|b| *b == separator)
        .filter(|seg| !seg.is_empty())
    {
        let (name, value) = match seg.iter().position(|b| *b == b'=') {
            Some(i) => (&seg[..i], &seg[i + 1..]),
            None => (seg, &b""[..]),
        };
        let name = url_decode(name, false).map_or(Cow::Borrowed(name), Cow::Owned);
        let value = url_decode(value, false).map_or(Cow::Borrowed(value), Cow::Owned);
        pair(&name, &value);
    }
}

pub fn json(input: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    match serde_json::from_slice::<serde_json::Value>(input) {
        Ok(value) => {
            let mut walker = JsonWalker {
                containers: Vec::new(),
                current_key: String::new(),
                out: &mut parsed.args,
            };
            walker.value(&value);
        }
        Err(e) => parsed.error = Some(format!("JSON parsing error: {e}")),
    }
    parsed
}

enum Container {
    Map(String),
    Array(String, usize),
}

struct JsonWalker<'a> {
    containers: Vec<Container>,
    current_key: String,
    out: &'a mut Vec<Pair>,
}

impl JsonWalker<'_> {
    fn key_for_container(&self) -> String {
        if self.containers.is_empty() {
            "json".to_string()
        } else {
            self.current_key.clone()
        }
    }

    fn value(&mut self, v: &serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::Object(map) => {
                let name = self.key_for_container();
                self.containers.push(Container::Map(name));
                for (k, v) in map {
                    self.current_key = k.clone();
                    self.value(v);
                }
                self.containers.pop();
                self.bump_array();
            }
            Value::Array(items) => {
                let name = self.key_for_container();
                self.containers.push(Container::Array(name, 0));
                for v in items {
                    self.value(v);
                }
                self.containers.pop();
                self.bump_array();
            }
            Value::Null => self.scalar(String::new()),
            Value::Bool(b) => self.scalar(b.to_string()),
            Value::Number(n) => self.scalar(n.to_string()),
            Value::String(s) => self.scalar(s.clone()),
        }
    }

    fn bump_array(&mut self) {
        if let Some(Container::Array(_, n)) = self.containers.last_mut() {
            *n += 1;
        }
    }

    fn scalar(&mut self, value: String) {
        let mut path = String::new();
        for c in &self.containers {
            match c {
                Container::Map(name) => {
                    path.push_str(name);
                    path.push('.');
                }
                Container::Array(name, n) => {
                    path.push_str(name);
                    path.push_str(".array_");
                    path.push_str(&n.to_string());
                }
            }
        }
        let in_array = matches!(self.containers.last(), Some(Container::Array(..)));
        if in_array {
            self.bump_array();
        } else {
            path.push_str(&self.current_key);
        }
        self.out.push((path.into_bytes(), value.into_bytes()));
    }
}

/// An XML body as ModSecurity's XML processor exposes it: `XML:/*` is the text content
/// of the whole document (every text node, in order), `XML://@*` every attribute value.
#[derive(Debug, Default)]
pub struct XmlBody {
    pub text: Vec<u8>,
    pub attributes: Vec<Vec<u8>>,
}

pub fn xml(input: &[u8]) -> Result<XmlBody, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(input);
    let mut out = XmlBody::default();
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("XML parsing error: {e}"))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                seen_root = true;
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| format!("XML parsing error: {e}"))?;
                    let value = attr
                        .unescape_value()
                        .map(|v| v.into_owned().into_bytes())
                        .unwrap_or_else(|_| attr.value.to_vec());
                    out.attributes.push(value);
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) if depth > 0 => match t.decode() {
                Ok(text) => {
                    let unescaped = quick_xml::escape::unescape(&text)
                        .map(|c| c.into_owned())
                        .unwrap_or_else(|_| text.into_owned());
                    out.text.extend_from_slice(unescaped.as_bytes());
                }
                Err(_) => out.text.extend_from_slice(&t),
            },
            Event::GeneralRef(r) if depth > 0 => {
                let name = String::from_utf8_lossy(&r).into_owned();
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.text.extend_from_slice(c.to_string().as_bytes());
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&name) {
                    out.text.extend_from_slice(s.as_bytes());
                } else {
                    out.text.extend_from_slice(format!("&{name};").as_bytes());
                }
            }
            Event::CData(t) => out.text.extend_from_slice(&t),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err("XML parsing error: no root element".into());
    }
    Ok(out)
}

/// The boundary parameter of a multipart Content-Type, unquoted.
pub fn multipart_boundary(content_type: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(content_type);
    let lower = text.to_ascii_lowercase();
    let start = lower.find("boundary=")? + "boundary=".len();
    let raw = text[start..].split(';').next()?.trim();
    let raw = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    (!raw.is_empty()).then(|| raw.as_bytes().to_vec())
}

pub fn multipart(input: &[u8], boundary: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let mut positions: Vec<usize> = memchr::memmem::find_iter(input, &delimiter).collect();
    // A delimiter counts only at the start of the body or of a line.
    positions.retain(|p| *p == 0 || input[p - 1] == b'\n');
    if positions.is_empty() {
        parsed.error = Some("multipart: no boundary found".into());
        return parsed;
    }
    let mut closed = false;
    for (i, &pos) in positions.iter().enumerate() {
        let after = pos + delimiter.len();
        if input[after..].starts_with(b"--") {
            closed = true;
            break;
        }
        let part_start = skip_line_end(input, after);
        let part_end = positions.get(i + 1).copied().unwrap_or(input.len());
        let mut part = &input[part_start.min(part_end)..part_end];
        // The line break before the next delimiter belongs to the delimiter.
        if let Some(p) = part.strip_suffix(b"\r\n") {
            part = p;
        } else if let Some(p) = part.strip_suffix(b"\n") {
            part = p;
        }
        read_part(part, &mut parsed);
    }
    if !closed {
        parsed.error = Some("multipart: final boundary missing".into());
    }
    parsed
}

fn skip_line_end(input: &[u8], mut i: usize) -> usize {
    while i < input.len() && (input[i] == b' ' || input[i] == b'\t') {
        i += 1;
    }
    if input[i..].starts_with(b"\r\n") {
        i + 2
    } else if input[i..].starts_with(b"\n") {
        i + 1
    } else {
        i
    }
}

fn read_part(part: &[u8], parsed: &mut Parsed) {
    let mut lines = Vec::new();
    let mut i = 0;
    let body_start = loop {
        let end = memchr::memchr(b'\n', &part[i..]).map(|p| i + p);
        let Some(end) = end else {
            break part.len();
        };
        let line = &part[i..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        i = end + 1;
        if line.is_empty() {
            break i;
        }
        lines.push(line.to_vec());
    };
    let content = &part[body_start.min(part.len())..];
    let mut name = Vec::new();
    let mut filename = None;
    for line in &lines {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with(b"content-disposition:") {
            name = disposition_param(line, "name").unwrap_or_default();
            filename = disposition_param(line, "filename");
        }
    }
    for line in lines {
        parsed.part_headers.push((name.clone(), line));
    }
    match filename {
        Some(file) => parsed.files.push((name, file, content.len())),
        None => parsed.args.push((name, content.to_vec())),
    }
}

/// A parameter of a Content-Disposition line (`name="x"` or `name=x`). Quoted values
/// may hold `;` and `=`, and `\"` / `\\` escapes, as ModSecurity's parser reads them.
fn disposition_param(line: &[u8], param: &str) -> Option<Vec<u8>> {
    let colon = line.iter().position(|b| *b == b':')?;
    let rest = &line[colon + 1..];
    let mut i = match rest.iter().position(|b| *b == b';') {
        Some(p) => p + 1,
        None => return None,
    };
    while i < rest.len() {
        while i < rest.len() && (rest[i] == b' ' || rest[i] == b'\t' || rest[i] == b';') {
            i += 1;
        }
        let name_start = i;
        while i < rest.len() && rest[i] != b'=' && rest[i] != b';' {
            i += 1;
        }
        let name = String::from_utf8_lossy(&rest[name_start..i])
            .trim()
            .to_ascii_lowercase();
        if i >= rest.len() || rest[i] == b';' {
            continue;
        }
        i += 1;
        while i < rest.len() && rest[i] == b' ' {
            i += 1;
        }
        let mut value = Vec::new();
        if i < rest.len() && rest[i] == b'"' {
            i += 1;
            while i < rest.len() && rest[i] != b'"' {
                if rest[i] == b'\\'
                    && i + 1 < rest.len()
                    && (rest[i + 1] == b'"' || rest[i + 1] == b'\\')
                {
                    i += 1;
                }
                value.push(rest[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < rest.len() && rest[i] != b';' {
                value.push(rest[i]);
                i += 1;
            }
            while value.last().is_some_and(|b| *b == b' ') {
                value.pop();
            }
        }
        if name == param {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pairs: &[Pair]) -> Vec<String> {
        pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                )
            })
            .collect()
    }

    #[test]
    fn urlencoded_decodes_names_and_values() {
        let pairs = urlencoded(b"a=1+2&b%5B%5D=%3Cx%3E&&flag", b'&');
        assert_eq!(names(&pairs), vec!["a=1 2", "b[]=<x>", "flag="]);
    }

    #[test]
    fn json_names_follow_modsecurity() {
        let parsed = json(br#"{"a":"x","o":{"b":1},"l":[true,null]}"#);
        assert_eq!(
            names(&parsed.args),
            vec![
                "json.a=x",
                "json.o.b=1",
                "json.l.array_0=true",
                "json.l.array_1="
            ]
        );
        assert!(json(b"{bad").error.is_some());
    }

    #[test]
    fn xml_text_and_attributes() {
        let x = xml(br#"<?xml version="1.0"?><r a="1 OR 1=1"><b>x &lt; y</b><c k='v'/>z</r>"#)
            .expect("parses");
        assert_eq!(x.text, b"x < yz");
        assert_eq!(x.attributes, vec![b"1 OR 1=1".to_vec(), b"v".to_vec()]);
        assert!(xml(b"not xml").is_err());
    }

    #[test]
    fn multipart_fields_files_and_headers() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nvalue\r\n--XX\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--XX--\r\n";
        let parsed = multipart(body, b"XX");
        assert_eq!(names(&parsed.args), vec!["f=value"]);
        assert_eq!(parsed.files, vec![(b"up".to_vec(), b"a.php".to_vec(), 5)]);
        assert_eq!(parsed.part_headers.len(), 3);
        assert_eq!(
            disposition_param(
                b"Content-Disposition: form-data; name=\"fi;le\"; filename=\"a\\\"b=c\"",
                "filename"
            ),
            Some(b"a\"b=c".to_vec())
        );
        assert_eq!(
            disposition_param(
                b"Content-Disposition: form-data; name=\"fi;le\"; filename=x",
                "name"
            ),
            Some(b"fi;le".to_vec())
        );
        assert!(parsed.error.is_none());
        assert_eq!(
            multipart_boundary(b"multipart/form-data; boundary=\"XX\""),
            Some(b"XX".to_vec())
        );
    }
}

//! What one request looks like to the rules: every collection (ARGS, REQUEST_HEADERS,
//! cookies, files, the request line's parts, TX, MATCHED_VARS...) built once from the
//! request, with each value stored once in an arena so that transformed values can be
//! cached by (value, transformation chain).

use super::body;
use super::macros::MacroSource;
use super::ruleset::Rule;
use super::targets::{Collection, Selector, Target};
use super::tx::{TxName, TxValue};
use smallvec::SmallVec;
use std::borrow::Cow;

/// The request head as the proxy received it.
#[derive(Debug, Clone, Default)]
pub struct RequestHead {
    pub method: String,
    /// The request target exactly as sent (path and query, or an absolute URI).
    pub uri: Vec<u8>,
    pub protocol: String,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub remote_addr: String,
    pub remote_port: u16,
    pub server_port: u16,
    pub unique_id: String,
}

/// A request head borrowed from where it already is (the proxy's parsed request): the
/// engine copies what it keeps into its own buffer once.
#[derive(Debug, Clone, Default)]
pub struct RequestHeadRef<'a> {
    pub method: &'a str,
    pub uri: &'a [u8],
    pub protocol: &'a str,
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    pub remote_addr: &'a str,
    pub remote_port: u16,
    pub server_port: u16,
    pub unique_id: &'a str,
}

impl RequestHead {
    pub fn borrowed(&self) -> RequestHeadRef<'_> {
        RequestHeadRef {
            method: &self.method,
            uri: &self.uri,
            protocol: &self.protocol,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect(),
            remote_addr: &self.remote_addr,
            remote_port: self.remote_port,
            server_port: self.server_port,
            unique_id: &self.unique_id,
        }
    }
}

/// The response head as the origin sent it.
#[derive(Debug, Clone, Default)]
pub struct ResponseHead {
    pub status: u16,
    pub protocol: String,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A keyed member of a collection: arena ids of its key and value.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub key: u32,
    pub value: u32,
}

/// The request's collections. Values live in `arena`; collections hold ids.
#[derive(Debug, Default)]
pub struct Data {
    /// Every value's bytes back to back (one buffer, not one allocation per value), and
    /// each value's (start, length) in it, by id.
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
    pub args_get: Vec<Entry>,
    pub args_post: Vec<Entry>,
    pub headers: Vec<Entry>,
    pub cookies: Vec<Entry>,
    /// Field name -> file name.
    pub files: Vec<Entry>,
    /// Field name -> size.
    pub files_sizes: Vec<Entry>,
    pub part_headers: Vec<Entry>,
    pub response_headers: Vec<Entry>,
    /// XML body: the document's text content, and each attribute value.
    pub xml_text: Option<u32>,
    pub xml_attributes: Vec<u32>,
    scalars: Vec<(Collection, u32)>,
    pub files_combined_size: usize,
}

impl Data {
    fn add(&mut self, value: &[u8]) -> u32 {
        self.spans.push((self.bytes.len(), value.len()));
        self.bytes.extend_from_slice(value);
        (self.spans.len() - 1) as u32
    }

    pub fn get(&self, id: u32) -> &[u8] {
        self.spans
            .get(id as usize)
            .and_then(|(start, len)| self.bytes.get(*start..start + len))
            .unwrap_or(b"")
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) -> Entry {
        Entry {
            key: self.add(key),
            value: self.add(value),
        }
    }

    fn set_scalar(&mut self, collection: Collection, value: &[u8]) {
        let id = self.add(value);
        match self.scalars.iter_mut().find(|(c, _)| *c == collection) {
            Some(slot) => slot.1 = id,
            None => self.scalars.push((collection, id)),
        }
    }

    /// The bytes the values' buffer holds room for.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// How many values the request holds so far: a mark for [`Data::scalars_since`].
    pub fn mark(&self) -> usize {
        self.spans.len()
    }

    /// The collections changed since `mark` when every value added since is a scalar's
    /// current value (no list grew, no scalar was set twice); None otherwise.
    pub fn scalars_since(&self, mark: usize) -> Option<SmallVec<[Collection; 4]>> {
        let changed: SmallVec<[Collection; 4]> = self
            .scalars
            .iter()
            .filter(|(_, id)| *id as usize >= mark)
            .map(|(c, _)| *c)
            .collect();
        (changed.len() == self.spans.len() - mark).then_some(changed)
    }

    pub fn scalar(&self, collection: Collection) -> Option<u32> {
        self.scalars
            .iter()
            .find(|(c, _)| *c == collection)
            .map(|(_, id)| *id)
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|e| self.get(e.key).eq_ignore_ascii_case(name.as_bytes()))
            .map(|e| self.get(e.value))
    }

    /// The entry lists behind a keyed collection, and whether it yields their keys
    /// (`ARGS_NAMES`) rather than their values; None for other collections.
    pub fn keyed(&self, c: Collection) -> Option<([&[Entry]; 2], bool)> {
        use Collection::*;
        Some(match c {
            Args => ([&self.args_get, &self.args_post], false),
            ArgsNames => ([&self.args_get, &self.args_post], true),
            ArgsGet => ([&self.args_get, &[]], false),
            ArgsGetNames => ([&self.args_get, &[]], true),
            ArgsPost => ([&self.args_post, &[]], false),
            ArgsPostNames => ([&self.args_post, &[]], true),
            RequestHeaders => ([&self.headers, &[]], false),
            RequestHeadersNames => ([&self.headers, &[]], true),
            RequestCookies => ([&self.cookies, &[]], false),
            RequestCookiesNames => ([&self.cookies, &[]], true),
            Files => ([&self.files, &[]], false),
            FilesNames => ([&self.files, &[]], true),
            FilesSizes => ([&self.files_sizes, &[]], false),
            MultipartPartHeaders => ([&self.part_headers, &[]], false),
            ResponseHeaders => ([&self.response_headers, &[]], false),
            ResponseHeadersNames => ([&self.response_headers, &[]], true),
            _ => return None,
        })
    }

    /// Whether `c` is a collection of keyed entries ([`Data::keyed`]).
    pub fn is_keyed(c: Collection) -> bool {
        Data::default().keyed(c).is_some()
    }

    /// The ids of every value of the whole collection `c` (as [`View::collect`] yields
    /// them with no selector), or with `key` those of its entries under that key (any
    /// case; keyed collections only), appended to `out`; false when some value is not
    /// request data kept here (TX, counts, matched variables...), which has no id.
    pub fn value_ids(&self, c: Collection, key: Option<&str>, out: &mut Vec<u32>) -> bool {
        use Collection::*;
        if let Some((lists, names)) = self.keyed(c) {
            let ids = lists.iter().flat_map(|l| l.iter());
            let ids = ids
                .filter(|e| key.is_none_or(|k| self.get(e.key).eq_ignore_ascii_case(k.as_bytes())));
            out.extend(ids.map(|e| if names { e.key } else { e.value }));
            return true;
        }
        if key.is_some() {
            return false;
        }
        match c {
            Tx
            | MatchedVars
            | MatchedVarsNames
            | MatchedVar
            | MatchedVarName
            | ReqbodyProcessor
            | ArgsCombinedSize
            | FilesCombinedSize
            | Xml
            | MultipartStrictError
            | MultipartUnmatchedBoundary => false,
            _ => {
                out.extend(self.scalar(c));
                true
            }
        }
    }

    /// Builds the request-line, header, cookie and query collections.
    pub fn from_head(head: &RequestHeadRef, separator: u8) -> Data {
        let mut d = Data::default();
        d.fill_from_head(head, separator);
        d
    }

    /// Empties every collection, keeping the buffers' capacity (for the next request).
    pub fn clear(&mut self) {
        let Data {
            bytes,
            spans,
            args_get,
            args_post,
            headers,
            cookies,
            files,
            files_sizes,
            part_headers,
            response_headers,
            xml_text,
            xml_attributes,
            scalars,
            files_combined_size,
        } = self;
        bytes.clear();
        spans.clear();
        for list in [
            args_get,
            args_post,
            headers,
            cookies,
            files,
            files_sizes,
            part_headers,
            response_headers,
        ] {
            list.clear();
        }
        *xml_text = None;
        xml_attributes.clear();
        scalars.clear();
        *files_combined_size = 0;
    }

    /// [`Data::from_head`] into an empty `Data` (cleared, its buffers kept).
    pub fn fill_from_head(&mut self, head: &RequestHeadRef, separator: u8) {
        let d = self;
        let uri = head.uri;
        let header_bytes: usize = head
            .headers
            .iter()
            .map(|(k, v)| k.len() + 2 * v.len())
            .sum();
        d.bytes.reserve(4 * uri.len() + header_bytes + 64);
        let line = [
            head.method.as_bytes(),
            b" ",
            uri,
            b" ",
            head.protocol.as_bytes(),
        ]
        .concat();
        d.set_scalar(Collection::RequestLine, &line);
        d.set_scalar(Collection::RequestMethod, head.method.as_bytes());
        d.set_scalar(Collection::RequestProtocol, head.protocol.as_bytes());
        d.set_scalar(Collection::RequestUriRaw, uri);
        // An absolute URI ("http://host/path") is reduced to its path for the rest. Most
        // URIs are not absolute: both collections then share one value (one id), which
        // is transformed and scanned once.
        let relative = strip_scheme_and_host(uri);
        match d.scalar(Collection::RequestUriRaw) {
            Some(id) if relative.len() == uri.len() => d.scalars.push((Collection::RequestUri, id)),
            _ => d.set_scalar(Collection::RequestUri, relative),
        }
        let (path, query) = match relative.iter().position(|b| *b == b'?') {
            Some(i) => (&relative[..i], Some(&relative[i + 1..])),
            None => (relative, None),
        };
        let path = percent_decode(path);
        let basename = path
            .iter()
            .rposition(|b| *b == b'/' || *b == b'\\')
            .map(|i| path[i + 1..].to_vec())
            .unwrap_or_else(|| path.clone());
        d.set_scalar(Collection::RequestFilename, &path);
        d.set_scalar(Collection::RequestBasename, &basename);
        d.set_scalar(Collection::QueryString, query.unwrap_or(b""));
        body::each_urlencoded(query.unwrap_or(b""), separator, |k, v| {
            let e = d.entry(k, v);
            d.args_get.push(e);
        });
        for (name, value) in &head.headers {
            let e = d.entry(name, value);
            d.headers.push(e);
        }
        let cookie_headers = head
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"cookie"));
        for (_, value) in cookie_headers {
            for (k, v) in cookies(value) {
                let e = d.entry(k, v);
                d.cookies.push(e);
            }
        }
        let mut digits = itoa::Buffer::new();
        d.set_scalar(Collection::RemoteAddr, head.remote_addr.as_bytes());
        d.set_scalar(
            Collection::RemotePort,
            digits.format(head.remote_port).as_bytes(),
        );
        d.set_scalar(
            Collection::ServerPort,
            digits.format(head.server_port).as_bytes(),
        );
        d.set_scalar(Collection::UniqueId, head.unique_id.as_bytes());
        d.set_scalar(Collection::RequestBody, b"");
        d.set_scalar(Collection::RequestBodyLength, b"0");
        d.set_scalar(Collection::ReqbodyError, b"0");
    }

    /// Runs the body processor and fills ARGS_POST, FILES and friends. REQUEST_BODY
    /// holds the raw body for the URL-encoded processor or when forced (ModSecurity's
    /// rule: a parsed JSON/XML/multipart body is inspected through its arguments).
    pub fn add_body(&mut self, body: &[u8], processor: Option<&str>, force: bool, separator: u8) {
        if force || processor == Some("URLENCODED") {
            self.set_scalar(Collection::RequestBody, body);
        }
        self.set_scalar(
            Collection::RequestBodyLength,
            itoa::Buffer::new().format(body.len()).as_bytes(),
        );
        let parsed = match processor {
            Some("URLENCODED") => body::Parsed {
                args: body::urlencoded(body, separator),
                ..Default::default()
            },
            Some("JSON") => body::json(body),
            Some("XML") => match body::xml(body) {
                Ok(x) => {
                    let id = self.add(&x.text);
                    self.xml_text = Some(id);
                    for a in x.attributes {
                        let id = self.add(&a);
                        self.xml_attributes.push(id);
                    }
                    body::Parsed::default()
                }
                Err(e) => body::Parsed {
                    error: Some(e),
                    ..Default::default()
                },
            },
            Some("MULTIPART") => {
                let boundary = self
                    .header("content-type")
                    .and_then(body::multipart_boundary);
                match boundary {
                    Some(b) => body::multipart(body, &b),
                    None => body::Parsed {
                        error: Some("multipart: no boundary in Content-Type".into()),
                        ..Default::default()
                    },
                }
            }
            _ => body::Parsed::default(),
        };
        for (k, v) in parsed.args {
            let e = self.entry(&k, &v);
            self.args_post.push(e);
        }
        for (name, file, size) in parsed.files {
            let e = self.entry(&name, &file);
            self.files.push(e);
            let e = self.entry(&name, itoa::Buffer::new().format(size).as_bytes());
            self.files_sizes.push(e);
            self.files_combined_size += size;
        }
        for (k, v) in parsed.part_headers {
            let e = self.entry(&k, &v);
            self.part_headers.push(e);
        }
        if let Some(msg) = parsed.error {
            self.set_scalar(Collection::ReqbodyError, b"1");
            self.set_scalar(Collection::ReqbodyErrorMsg, msg.as_bytes());
        }
    }
}

impl Data {
    /// Fills RESPONSE_STATUS, RESPONSE_PROTOCOL, RESPONSE_HEADERS and the content type
    /// and length.
    pub fn add_response_head(&mut self, head: ResponseHead) {
        self.set_scalar(
            Collection::ResponseStatus,
            itoa::Buffer::new().format(head.status).as_bytes(),
        );
        self.set_scalar(Collection::ResponseProtocol, head.protocol.as_bytes());
        for (name, value) in head.headers {
            if name.eq_ignore_ascii_case(b"content-type") {
                self.set_scalar(Collection::ResponseContentType, &value);
            } else if name.eq_ignore_ascii_case(b"content-length") {
                self.set_scalar(Collection::ResponseContentLength, &value);
            }
            let e = self.entry(&name, &value);
            self.response_headers.push(e);
        }
    }

    pub fn set_response_body(&mut self, body: &[u8]) {
        self.set_scalar(Collection::ResponseBody, body);
    }
}

fn strip_scheme_and_host(uri: &[u8]) -> &[u8] {
    let lower_starts = |p: &[u8]| uri.len() >= p.len() && uri[..p.len()].eq_ignore_ascii_case(p);
    let rest = if lower_starts(b"http://") {
        &uri[7..]
    } else if lower_starts(b"https://") {
        &uri[8..]
    } else {
        return uri;
    };
    match rest.iter().position(|b| *b == b'/') {
        Some(i) => &rest[i..],
        None => b"/",
    }
}

/// `%XX` decoding only (`+` stays), as ModSecurity decodes the path.
fn percent_decode(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' && i + 2 < path.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(path[i + 1]), hex(path[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(path[i]);
        i += 1;
    }
    out
}

/// `a=1; b=2`: a `Cookie` header's name/value pairs as ModSecurity v3 splits them (values
/// not decoded), borrowed from the header.
fn cookies(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header
        .split(|b| *b == b';')
        .map(|c| {
            let start = c.iter().position(|b| *b != b' ').unwrap_or(c.len());
            &c[start..]
        })
        .filter(|c| !c.is_empty())
        .map(|c| match c.iter().position(|b| *b == b'=') {
            Some(i) => (&c[..i], &c[i + 1..]),
            None => (c, &b""[..]),
        })
}

/// Per-transaction variables the rules write.
#[derive(Debug, Default)]
pub struct Vars {
    pub tx: super::tx::TxMap,
    /// MATCHED_VAR after the rule that set it (while a rule runs, the last of
    /// `matched_vars` is MATCHED_VAR).
    pub matched_var: Option<(String, Vec<u8>)>,
    pub matched_vars: Vec<(String, Vec<u8>)>,
    pub body_processor: Option<String>,
    pub force_body_variable: bool,
}

/// One value a target yields: its collection, key and value, and the arena id when the
/// value is immutable request data (so its transformations can be cached).
#[derive(Debug)]
pub struct Item<'a> {
    pub collection: Collection,
    pub key: Cow<'a, [u8]>,
    pub value: Cow<'a, [u8]>,
    pub cache_id: Option<u32>,
}

impl Item<'_> {
    /// `ARGS:q`, `REQUEST_FILENAME`: the name logs and MATCHED_VAR_NAME use.
    pub fn display_name(&self) -> String {
        let mut name = String::new();
        self.write_name(&mut name);
        name
    }

    /// Appends [`Item::display_name`] to `out`.
    pub fn write_name(&self, out: &mut String) {
        out.push_str(self.collection.name());
        if !self.key.is_empty() {
            out.push(':');
            out.push_str(&String::from_utf8_lossy(&self.key));
        }
    }
}

/// The values of one target; most targets yield a handful, kept on the stack.
pub type Items<'a> = smallvec::SmallVec<[Item<'a>; 16]>;

/// A read-only view of the transaction for collecting targets and expanding macros.
pub struct View<'a> {
    pub data: &'a Data,
    pub vars: &'a Vars,
    pub rule: Option<&'a Rule>,
}

impl<'a> View<'a> {
    /// The values `target` selects, minus `exclusions` of the same collection.
    pub fn collect(&self, target: &Target, exclusions: &[&Target], out: &mut Items<'a>) {
        self.each(target, exclusions, |item| out.push(item));
    }

    /// Each value `target` selects, minus `exclusions` of the same collection, handed to
    /// `out` in turn (nothing gathered first).
    pub fn each(&self, target: &Target, exclusions: &[&Target], mut out: impl FnMut(Item<'a>)) {
        use Collection::*;
        let c = target.collection;
        let d = self.data;
        let excluded = |key: &[u8]| {
            exclusions
                .iter()
                .any(|x| x.collection == c && x.selector.accepts(key))
        };
        let mut keyed = |entries: &'a [Entry], names: bool| {
            for e in entries {
                let key = d.get(e.key);
                if !target.selector.accepts(key) || excluded(key) {
                    continue;
                }
                let id = if names { e.key } else { e.value };
                out(Item {
                    collection: c,
                    key: Cow::Borrowed(key),
                    value: Cow::Borrowed(d.get(id)),
                    cache_id: Some(id),
                });
            }
        };
        if let Some((lists, names)) = d.keyed(c) {
            for entries in lists {
                keyed(entries, names);
            }
            return;
        }
        match c {
            Tx => {
                if let Selector::Key(k) = &target.selector {
                    if let Some((k, v)) = self.vars.tx.get_key_value(k.as_str()) {
                        if !excluded(k.as_str().as_bytes()) {
                            out(Item {
                                collection: c,
                                key: Cow::Borrowed(k.as_str().as_bytes()),
                                value: Cow::Borrowed(v),
                                cache_id: None,
                            });
                        }
                    }
                    return;
                }
                let mut push = |(k, v): (&'a TxName, &'a TxValue)| {
                    let k = k.as_str().as_bytes();
                    if target.selector.accepts(k) && !excluded(k) {
                        out(Item {
                            collection: c,
                            key: Cow::Borrowed(k),
                            value: Cow::Borrowed(v),
                            cache_id: None,
                        });
                    }
                };
                // TX keys are lower-case and sorted: a prefix is a range.
                match &target.selector {
                    Selector::Prefix(p, _) => self
                        .vars
                        .tx
                        .range::<str, _>((
                            std::ops::Bound::Included(p.as_str()),
                            std::ops::Bound::Unbounded,
                        ))
                        .take_while(|(k, _)| k.as_str().starts_with(p.as_str()))
                        .for_each(&mut push),
                    _ => self.vars.tx.iter().for_each(&mut push),
                }
            }
            MatchedVars | MatchedVarsNames => {
                for (name, value) in &self.vars.matched_vars {
                    if !target.selector.accepts(name.as_bytes()) || excluded(name.as_bytes()) {
                        continue;
                    }
                    let v: &[u8] = if c == MatchedVars {
                        value
                    } else {
                        name.as_bytes()
                    };
                    out(Item {
                        collection: c,
                        key: Cow::Borrowed(name.as_bytes()),
                        value: Cow::Borrowed(v),
                        cache_id: None,
                    });
                }
            }
            MatchedVar | MatchedVarName => {
                let current = self.vars.matched_vars.last();
                if let Some((name, value)) = current.or(self.vars.matched_var.as_ref()) {
                    let v: &[u8] = if c == MatchedVar {
                        value
                    } else {
                        name.as_bytes()
                    };
                    out(scalar(c, Cow::Borrowed(v), None));
                }
            }
            ReqbodyProcessor => {
                // Present (empty) even without a processor: CRS's rule 901340 forces
                // REQUEST_BODY on with `!@rx` over it.
                let p = self.vars.body_processor.as_deref().unwrap_or("");
                out(scalar(c, Cow::Borrowed(p.as_bytes()), None));
            }
            ArgsCombinedSize => {
                let size: usize = d
                    .args_get
                    .iter()
                    .chain(&d.args_post)
                    .map(|e| d.get(e.key).len() + d.get(e.value).len())
                    .sum();
                out(scalar(c, Cow::Owned(size.to_string().into_bytes()), None));
            }
            FilesCombinedSize => out(scalar(
                c,
                Cow::Owned(d.files_combined_size.to_string().into_bytes()),
                None,
            )),
            Xml => {
                let ids: Vec<u32> = match &target.selector {
                    Selector::Key(k) if k == "/*" => d.xml_text.into_iter().collect(),
                    Selector::Key(k) if k == "//@*" => d.xml_attributes.clone(),
                    _ => Vec::new(),
                };
                for id in ids {
                    out(Item {
                        collection: c,
                        key: Cow::Borrowed(b""),
                        value: Cow::Borrowed(d.get(id)),
                        cache_id: Some(id),
                    });
                }
            }
            MultipartStrictError | MultipartUnmatchedBoundary => {
                out(scalar(c, Cow::Borrowed(b"0"), None))
            }
            _ => {
                if let Some(id) = d.scalar(c) {
                    if !excluded(b"") {
                        out(scalar(c, Cow::Borrowed(d.get(id)), Some(id)));
                    }
                }
            }
        }
    }
}

fn scalar(c: Collection, value: Cow<'_, [u8]>, cache_id: Option<u32>) -> Item<'_> {
    Item {
        collection: c,
        key: Cow::Borrowed(b""),
        value,
        cache_id,
    }
}

impl MacroSource for View<'_> {
    fn lookup(&self, collection: Collection, key: Option<&str>) -> Option<Cow<'_, [u8]>> {
        if collection == Collection::Tx {
            return key
                .and_then(|k| self.vars.tx.get(k))
                .map(|v| Cow::Borrowed(v.as_slice()));
        }
        let d = self.data;
        // One key of a keyed collection (`%{REQUEST_HEADERS.host}`): its first value,
        // borrowed, as `collect` would yield it.
        if let (Some((lists, names)), Some(key)) = (d.keyed(collection), key) {
            return lists
                .iter()
                .flat_map(|entries| entries.iter())
                .find(|e| d.get(e.key).eq_ignore_ascii_case(key.as_bytes()))
                .map(|e| Cow::Borrowed(d.get(if names { e.key } else { e.value })));
        }
        let target = Target {
            collection,
            selector: key
                .map(|k| Selector::Key(k.to_ascii_lowercase()))
                .unwrap_or(Selector::All),
            count: false,
            exclude: false,
        };
        let mut items = Items::new();
        self.collect(&target, &[], &mut items);
        items.into_iter().next().map(|i| i.value)
    }

    fn rule_field(&self, field: &str) -> Option<String> {
        let rule = self.rule?;
        match field {
            "id" => Some(rule.id.to_string()),
            "msg" => rule.msg.as_ref().map(|m| m.raw().to_string()),
            "severity" => rule.severity.map(|s| s.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_without_processor_changes_only_its_length() {
        let head = RequestHead {
            method: "POST".into(),
            uri: b"/?a=1".to_vec(),
            ..Default::default()
        };
        let mut d = Data::from_head(&head.borrowed(), b'&');
        let mark = d.mark();
        d.add_body(b"xyz", None, false, b'&');
        let changed = d.scalars_since(mark).expect("only scalars");
        assert_eq!(changed.as_slice(), [Collection::RequestBodyLength]);
        let mark = d.mark();
        d.add_body(b"b=2", Some("URLENCODED"), false, b'&');
        assert!(d.scalars_since(mark).is_none(), "ARGS grew");
    }

    #[test]
    fn builds_request_collections() {
        let head = RequestHead {
            method: "GET".into(),
            uri: b"http://example.com/a%20b/c.php?x=1+2&y=%3C".to_vec(),
            protocol: "HTTP/1.1".into(),
            headers: vec![(b"Cookie".to_vec(), b"s=abc; t=1".to_vec())],
            ..Default::default()
        };
        let d = Data::from_head(&head.borrowed(), b'&');
        let s = |c| d.get(d.scalar(c).expect("set")).to_vec();
        assert_eq!(s(Collection::RequestFilename), b"/a b/c.php");
        assert_eq!(s(Collection::RequestBasename), b"c.php");
        assert_eq!(s(Collection::QueryString), b"x=1+2&y=%3C");
        assert_eq!(s(Collection::RequestUri), b"/a%20b/c.php?x=1+2&y=%3C");
        assert_eq!(d.get(d.args_get[0].value), b"1 2");
        assert_eq!(d.get(d.args_get[1].value), b"<");
        assert_eq!(d.cookies.len(), 2);
        assert_eq!(d.get(d.cookies[1].key), b"t");
    }

    #[test]
    fn a_macro_reads_a_keyed_value_borrowed_and_whatever_its_case() {
        let head = RequestHead {
            method: "GET".into(),
            uri: b"/?q=1&q=2".to_vec(),
            headers: vec![
                (b"Host".to_vec(), b"example.com".to_vec()),
                (b"X-Two".to_vec(), b"a".to_vec()),
                (b"x-two".to_vec(), b"b".to_vec()),
            ],
            ..Default::default()
        };
        let data = Data::from_head(&head.borrowed(), b'&');
        let vars = Vars::default();
        let view = View {
            data: &data,
            vars: &vars,
            rule: None,
        };
        let read = |c, key| view.lookup(c, key);
        let host = read(Collection::RequestHeaders, Some("host")).expect("set");
        assert!(matches!(host, Cow::Borrowed(b"example.com")));
        assert_eq!(
            read(Collection::RequestHeaders, Some("x-two")).as_deref(),
            Some(&b"a"[..])
        );
        assert_eq!(
            read(Collection::RequestHeadersNames, Some("x-two")).as_deref(),
            Some(&b"X-Two"[..])
        );
        assert_eq!(
            read(Collection::Args, Some("q")).as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(read(Collection::RequestHeaders, Some("absent")), None);
        assert_eq!(
            read(Collection::RequestMethod, None).as_deref(),
            Some(&b"GET"[..])
        );
    }
}

//! The transaction's memo of request values: each value's byte classes, its transformed
//! form per chain, and the literal prefilter's hits per distinct form, each computed once
//! however many rules read the value. Most chains leave most values as they are; a
//! value's byte classes tell which, and those chains cost neither a transformation nor a
//! lookup.

use super::super::prefilter::{Prefilters, Walks};
use super::super::ruleset::Link;
use super::super::transaction::Item;
use super::super::transforms;
use smallvec::SmallVec;
use std::sync::Arc;

/// What is known of one request value under one transformation chain.
#[derive(Clone, Default)]
pub(super) struct Slot {
    /// None: not computed yet; Some(None): the chain leaves the value unchanged.
    pub(super) value: Option<Option<Arc<[u8]>>>,
    /// Which of the value's [`Forms`] the transformed value is; None until scanned.
    pub(super) form: Option<u32>,
}

/// One distinct form of a value that was scanned.
#[derive(Clone, Copy)]
pub(super) struct Form {
    /// Start and length in [`Cache::form_bytes`].
    pub(super) start: u32,
    pub(super) len: u32,
    /// Where its hits start in [`Cache::hits`].
    pub(super) hits: u32,
    /// Which automata's hits they include (besides the one-byte literals').
    pub(super) walked: Walks,
}

/// The distinct forms of one value that were scanned.
pub(super) type Forms = SmallVec<[Form; 2]>;

/// Per-transaction memo of transformed values and prefilter scans, by arena id and chain
/// id: a value is transformed and scanned once per chain, however many rules read it.
/// Most chains leave most values as they are: a value's byte classes, known once, tell
/// which, and those chains cost neither a transformation nor a lookup.
#[derive(Default)]
pub(super) struct Cache {
    pub(super) by_id: Vec<SmallVec<[(u32, Slot); 4]>>,
    /// Per value: its byte classes (0: not known yet) and which of its [`Forms`] its own
    /// bytes are (`NOT_SCANNED` until scanned).
    pub(super) values: Vec<(u32, u32)>,
    /// Every scan's hits, back to back.
    pub(super) hits: Vec<u64>,
    pub(super) forms: Vec<Forms>,
    pub(super) form_bytes: Vec<u8>,
    /// Scratch list of a collection's value ids (reused).
    pub(super) ids: Vec<u32>,
}

pub(super) const NOT_SCANNED: u32 = u32::MAX;

impl Cache {
    /// Forgets every value, keeping the buffers' capacity (for the next request).
    pub(super) fn clear(&mut self) {
        self.by_id.clear();
        self.values.clear();
        self.hits.clear();
        self.forms.clear();
        self.form_bytes.clear();
        self.ids.clear();
    }

    /// The byte classes of value `id`, computed once.
    pub(super) fn classes(&mut self, id: u32, value: &[u8]) -> u32 {
        let index = id as usize;
        if index >= self.values.len() {
            self.values.resize(index + 1, (0, NOT_SCANNED));
        }
        let known = &mut self.values[index].0;
        if *known == 0 {
            *known = transforms::byte_classes(value);
        }
        *known
    }

    /// Where the prefilter hits of value `id` (request data, bytes `value`) under
    /// `link`'s chain start in [`Cache::hits`]; None when the chain has no prefilter.
    /// `walks`: the automata whose hits are wanted too, besides the one-byte literals'.
    pub(super) fn hits(
        &mut self,
        id: u32,
        value: &[u8],
        link: &Link,
        prefilters: &Prefilters,
        walks: Walks,
    ) -> Option<u32> {
        let chain = link.transform_chain;
        if !prefilters.covers(chain) {
            return None;
        }
        if self.classes(id, value) & link.changes_beyond_case == 0 {
            // The chain changes at most the case of letters: the value's own hits.
            return Some(self.own_hits(id, value, prefilters, walks));
        }
        let Cache {
            by_id,
            hits,
            forms,
            form_bytes,
            ..
        } = self;
        let slot = slot_in(by_id, id, chain);
        let form = match slot.form {
            Some(form) => form,
            None => {
                let transformed = slot
                    .value
                    .get_or_insert_with(|| apply_chain(value, link))
                    .clone();
                let value: &[u8] = transformed.as_deref().unwrap_or(value);
                let form = scan_form(forms, form_bytes, hits, id, value, prefilters, walks);
                slot.form = Some(form);
                form
            }
        };
        Some(self.form_hits(id, form, prefilters, walks))
    }

    /// Where the hits of value `id`'s own bytes start in [`Cache::hits`] (scanned once).
    pub(super) fn own_hits(
        &mut self,
        id: u32,
        value: &[u8],
        prefilters: &Prefilters,
        walks: Walks,
    ) -> u32 {
        self.classes(id, value);
        let mut form = self.values[id as usize].1;
        if form == NOT_SCANNED {
            form = scan_form(
                &mut self.forms,
                &mut self.form_bytes,
                &mut self.hits,
                id,
                value,
                prefilters,
                walks,
            );
            self.values[id as usize].1 = form;
        }
        self.form_hits(id, form, prefilters, walks)
    }

    /// Where the hits of form `form` of value `id` start, the hits of the automata in
    /// `walks` that the form was not walked by added first.
    pub(super) fn form_hits(
        &mut self,
        id: u32,
        form: u32,
        prefilters: &Prefilters,
        walks: Walks,
    ) -> u32 {
        let f = &mut self.forms[id as usize][form as usize];
        let missing = walks & !f.walked;
        if missing != 0 {
            f.walked |= missing;
            let bytes = &self.form_bytes[f.start as usize..(f.start + f.len) as usize];
            let at = f.hits as usize;
            let hits = &mut self.hits[at..at + prefilters.words()];
            prefilters.add_automaton_hits(bytes, hits, missing);
        }
        f.hits
    }

    /// `item`'s value transformed by `link`'s chain, computed once per value and chain.
    pub(super) fn value<'a>(&mut self, item: &'a Item, link: &Link) -> Val<'a> {
        let Some(id) = item.cache_id else {
            return match apply_chain(&item.value, link) {
                Some(v) => Val::Shared(v),
                None => Val::Borrowed(item.value.as_ref()),
            };
        };
        if self.classes(id, &item.value) & link.changes == 0 {
            return Val::Borrowed(item.value.as_ref());
        }
        let slot = slot_in(&mut self.by_id, id, link.transform_chain);
        match slot
            .value
            .get_or_insert_with(|| apply_chain(&item.value, link))
        {
            Some(v) => Val::Shared(Arc::clone(v)),
            None => Val::Borrowed(item.value.as_ref()),
        }
    }
}

pub(super) fn slot_in(
    by_id: &mut Vec<SmallVec<[(u32, Slot); 4]>>,
    id: u32,
    chain: u32,
) -> &mut Slot {
    let id = id as usize;
    if id >= by_id.len() {
        by_id.resize_with(id + 1, SmallVec::new);
    }
    let list = &mut by_id[id];
    let index = match list.iter().position(|(c, _)| *c == chain) {
        Some(i) => i,
        None => {
            list.push((chain, Slot::default()));
            list.len() - 1
        }
    };
    &mut list[index].1
}

/// Which form of value `id` `value` is, scanned when new (walked by the automata in `walks`):
/// chains that give the value the same bytes (ignoring case, as the literals do) share
/// one scan.
pub(super) fn scan_form(
    forms: &mut Vec<Forms>,
    form_bytes: &mut Vec<u8>,
    hits: &mut Vec<u64>,
    id: u32,
    value: &[u8],
    prefilters: &Prefilters,
    walks: Walks,
) -> u32 {
    let index = id as usize;
    if index >= forms.len() {
        forms.resize_with(index + 1, SmallVec::new);
    }
    let seen = forms[index].iter().position(|f| {
        form_bytes[f.start as usize..(f.start + f.len) as usize].eq_ignore_ascii_case(value)
    });
    if let Some(form) = seen {
        return form as u32;
    }
    let at = prefilters.scan_bytes_into(value, hits);
    if walks != 0 {
        prefilters.add_automaton_hits(value, &mut hits[at as usize..], walks);
    }
    let start = form_bytes.len() as u32;
    form_bytes.extend_from_slice(value);
    forms[index].push(Form {
        start,
        len: value.len() as u32,
        hits: at,
        walked: walks,
    });
    (forms[index].len() - 1) as u32
}

/// A value the operator sees: the item's own bytes, or a (cached) transformed copy.
pub(super) enum Val<'a> {
    Borrowed(&'a [u8]),
    Shared(Arc<[u8]>),
}

impl std::ops::Deref for Val<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Val::Borrowed(b) => b,
            Val::Shared(a) => a,
        }
    }
}

/// The value after `link`'s transformations; None when they leave it unchanged.
pub(super) fn apply_chain(value: &[u8], link: &Link) -> Option<Arc<[u8]>> {
    let mut current: Option<Vec<u8>> = None;
    for t in &link.transforms {
        let input = current.as_deref().unwrap_or(value);
        if let Some(next) = t.apply(input) {
            current = Some(next);
        }
    }
    current.map(Arc::from)
}

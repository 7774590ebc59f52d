//! The transaction's memo of request values: each value's byte classes, its transformed
//! form per chain, and the literal prefilter's hits per distinct form, each computed once
//! however many rules read the value. Most chains leave most values as they are; a
//! value's byte classes tell which, and those chains cost neither a transformation nor a
//! lookup.

use super::super::prefilter::{Prefilters, Walks};
use super::super::ruleset::Link;
use super::super::transaction::Item;
use super::super::transforms::{self, Transform};
use smallvec::SmallVec;

/// What is known of one request value under one transformation chain.
#[derive(Clone, Default)]
pub(super) struct Slot {
    /// None: not computed yet; Some(None): the chain leaves the value unchanged;
    /// Some(Some(range)): the transformed value is `range` of [`Cache::transformed`].
    pub(super) value: Option<Option<(u32, u32)>>,
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
    /// Every transformed value, back to back (see [`Slot::value`]).
    pub(super) transformed: Vec<u8>,
    /// The two buffers a chain's transformations write in turn (reused).
    pub(super) scratch: [Vec<u8>; 2],
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
        self.transformed.clear();
        self.ids.clear();
    }

    /// The bytes held for values' forms (scanned and transformed).
    pub(super) fn value_bytes(&self) -> usize {
        let [a, b] = &self.scratch;
        self.form_bytes.capacity() + self.transformed.capacity() + a.capacity() + b.capacity()
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
        let classes = self.classes(id, value);
        if classes & link.changes_beyond_case == 0 {
            // The chain changes at most the case of letters: the value's own hits.
            return Some(self.own_hits(id, value, prefilters, walks));
        }
        let Cache {
            by_id,
            hits,
            forms,
            form_bytes,
            transformed,
            scratch,
            ..
        } = self;
        let slot = slot_in(by_id, id, chain);
        let form = match slot.form {
            Some(form) => form,
            None => {
                let range = *slot.value.get_or_insert_with(|| {
                    apply_chain(value, classes, &link.transforms, scratch, transformed)
                });
                let value = range.map_or(value, |r| in_arena(transformed, r));
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
            let bytes = in_arena(&self.form_bytes, (f.start, f.len));
            let at = f.hits as usize;
            let hits = &mut self.hits[at..at + prefilters.words()];
            prefilters.add_automaton_hits(bytes, hits, missing);
        }
        f.hits
    }

    /// `item`'s value transformed by `link`'s chain, computed once per value and chain
    /// (a value that is not request data, such as a TX variable, each time).
    pub(super) fn value<'s>(&'s mut self, item: &'s Item, link: &Link) -> &'s [u8] {
        let Some(id) = item.cache_id else {
            return match apply_chain(
                &item.value,
                transforms::byte_classes(&item.value),
                &link.transforms,
                &mut self.scratch,
                &mut self.transformed,
            ) {
                Some(range) => in_arena(&self.transformed, range),
                None => &item.value,
            };
        };
        let classes = self.classes(id, &item.value);
        if classes & link.changes == 0 {
            return &item.value;
        }
        let Cache {
            by_id,
            transformed,
            scratch,
            ..
        } = self;
        let slot = slot_in(by_id, id, link.transform_chain);
        let range = *slot.value.get_or_insert_with(|| {
            apply_chain(&item.value, classes, &link.transforms, scratch, transformed)
        });
        match range {
            Some(range) => in_arena(transformed, range),
            None => &item.value,
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
    let seen = forms[index]
        .iter()
        .position(|f| in_arena(form_bytes, (f.start, f.len)).eq_ignore_ascii_case(value));
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

/// The bytes of `range` (start, length) of `arena` (the scanned forms', the transformed
/// values').
fn in_arena(arena: &[u8], (start, len): (u32, u32)) -> &[u8] {
    &arena[start as usize..(start + len) as usize]
}

/// The value (of byte `classes`) after a chain of `transforms`, appended to `arena` (its
/// range returned); None when they leave it unchanged. A transformation whose trigger
/// classes the current value lacks is not run. The transformations write into the two
/// `scratch` buffers in turn: a chain costs no allocation once they have grown.
pub(super) fn apply_chain(
    value: &[u8],
    classes: u32,
    transforms: &[Transform],
    scratch: &mut [Vec<u8>; 2],
    arena: &mut Vec<u8>,
) -> Option<(u32, u32)> {
    let last = transforms::run_chain(value, classes, transforms, scratch, |_, _| false)?;
    let result = &scratch[last];
    let start = arena.len() as u32;
    arena.extend_from_slice(result);
    Some((start, result.len() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_in_scratch_buffers_gives_what_the_transformations_give_one_by_one() {
        use Transform::*;
        let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"aZ09+%2&amp;lt;\"',; /.\\";
        let chains: [&[Transform]; 4] = [
            &[UrlDecodeUni, HtmlEntityDecode, Lowercase],
            &[Lowercase, CmdLine, RemoveWhitespace],
            &[CompressWhitespace, UrlDecode, NormalizePath, JsDecode],
            &[RemoveNulls, Trim],
        ];
        let mut scratch = [b"stale".to_vec(), b"older bytes".to_vec()];
        let mut arena = b"earlier values".to_vec();
        for _ in 0..3_000 {
            let value: Vec<u8> = (0..rng.usize(0..40))
                .map(|_| alphabet[rng.usize(0..alphabet.len())])
                .collect();
            for chain in chains {
                let mut expected: Option<Vec<u8>> = None;
                for t in chain {
                    if let Some(next) = t.apply(expected.as_deref().unwrap_or(&value)) {
                        expected = Some(next);
                    }
                }
                let classes = transforms::byte_classes(&value);
                let got = apply_chain(&value, classes, chain, &mut scratch, &mut arena)
                    .map(|range| in_arena(&arena, range).to_vec());
                assert_eq!(got, expected, "{chain:?} {value:?}");
            }
        }
    }
}

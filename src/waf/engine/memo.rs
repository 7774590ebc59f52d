//! The memo of request values: each value's byte classes, its transformed form per
//! chain, the literal prefilter's hits per distinct form, and which links found nothing
//! in it (those whose answer depends on its bytes alone), each computed once however
//! many rules read the value. Most chains leave most values as they are; a value's byte
//! classes tell which, and those chains cost neither a transformation nor a lookup.
//!
//! All of it is a function of the value's bytes and the rule set alone, so it is kept
//! from one transaction to the next on a thread (by the values' bytes, for one rule set
//! at a time): a browser sends the same User-Agent, Accept, Accept-Language... on every
//! request, and those are read through the most chains. The kept part is bounded
//! ([`KEPT_ENTRIES`], [`KEPT_BYTES`]) and forgotten whole when it grows past the bound.

use super::super::prefilter::{Prefilters, Walks};
use super::super::ruleset::Link;
use super::super::transaction::Item;
use super::super::transforms::{self, Transform};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// What is known of one value under one transformation chain.
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

/// What is known of one distinct value (its bytes: `key` in [`Cache::keys`]).
struct Entry {
    key: (u32, u32),
    classes: u32,
    /// Which of `forms` the value's own bytes are (`NOT_SCANNED` until scanned).
    own: u32,
    slots: SmallVec<[(u32, Slot); 4]>,
    forms: Forms,
    /// Where its bits of links that found nothing in it start in [`Cache::quiet`]
    /// (`NO_QUIET` until one did).
    quiet: u32,
}

/// At most this many distinct values are kept from one transaction to the next.
pub(super) const KEPT_ENTRIES: usize = 2048;
/// Room for the values of one request beyond [`KEPT_ENTRIES`]: the entries' vector grows
/// to the bound plus this, not to twice the bound (the memo is forgotten once past it).
pub(super) const ENTRY_HEADROOM: usize = 512;
/// At most this many bytes of values and their forms are kept from one transaction to
/// the next.
pub(super) const KEPT_BYTES: usize = 256 * 1024;

/// The memo: per value id, an entry found by the value's bytes; the entries (with their
/// transformed forms and hits) kept across transactions on one rule set.
#[derive(Default)]
pub(super) struct Cache {
    /// Per value id of this transaction: its entry (`NO_ENTRY` until first read).
    entry_of: Vec<u32>,
    /// Transformed values that are not request data (TX...), this transaction's only.
    loose: Vec<u8>,
    /// The two buffers a chain's transformations write in turn (reused).
    pub(super) scratch: [Vec<u8>; 2],
    /// Scratch list of a collection's value ids (reused).
    pub(super) ids: Vec<u32>,
    /// The rule set (its [`super::super::ruleset::RuleSet::memo_id`]) the kept part is for.
    rules: u64,
    /// Entries by a hash of their bytes (a collision leaves the newer value out).
    index: HashMap<u64, u32, BuildHasherDefault<Hashed>>,
    entries: Vec<Entry>,
    keys: Vec<u8>,
    /// Every scan's hits, back to back.
    pub(super) hits: Vec<u64>,
    form_bytes: Vec<u8>,
    /// Every transformed value, back to back (see [`Slot::value`]).
    pub(super) transformed: Vec<u8>,
    /// Per entry that has them, one bit per [`Link::quiet_bit`]: the link found nothing
    /// in the value (its answer depends on the value's bytes alone).
    quiet: Vec<u64>,
}

pub(super) const NOT_SCANNED: u32 = u32::MAX;
const NO_ENTRY: u32 = u32::MAX;
const NO_QUIET: u32 = u32::MAX;

/// Makes room for one more entry, doubling as a vector does but up to the kept bound
/// plus [`ENTRY_HEADROOM`] only: doubled past the bound, the memo's entries alone took
/// 0.75 MB, its buffers went past the size a thread keeps and were made anew each
/// time the memo filled.
fn grow_to_bound(entries: &mut Vec<Entry>) {
    let len = entries.len();
    if len == entries.capacity() {
        let bounded = (len * 2).clamp(64, KEPT_ENTRIES + ENTRY_HEADROOM);
        entries.reserve_exact(bounded.max(len + 1) - len);
    }
}

/// The map's keys are hashes already.
#[derive(Default)]
struct Hashed(u64);

impl Hasher for Hashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Cache {
    /// Readies the memo for a transaction on the rule set `rules`: this transaction's
    /// ids forgotten, the kept entries too when they are another rule set's or past the
    /// bounds.
    pub(super) fn start(&mut self, rules: u64) {
        self.entry_of.clear();
        self.loose.clear();
        self.ids.clear();
        let kept_bytes = self.keys.len() + self.form_bytes.len() + self.transformed.len();
        if self.rules != rules || self.entries.len() > KEPT_ENTRIES || kept_bytes > KEPT_BYTES {
            self.rules = rules;
            self.index.clear();
            self.entries.clear();
            self.keys.clear();
            self.hits.clear();
            self.form_bytes.clear();
            self.transformed.clear();
            self.quiet.clear();
        }
    }

    /// Whether the kept part is for the rule set `rules`.
    pub(super) fn is_for(&self, rules: u64) -> bool {
        self.rules == rules
    }

    /// The bytes held for values' forms (scanned and transformed), their entries and
    /// the index (about 0.75 MB for a full CRS memo).
    pub(super) fn value_bytes(&self) -> usize {
        let [a, b] = &self.scratch;
        self.form_bytes.capacity()
            + self.transformed.capacity()
            + self.keys.capacity()
            + self.loose.capacity()
            + a.capacity()
            + b.capacity()
            + self.hits.capacity() * 8
            + self.quiet.capacity() * 8
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.index.capacity() * std::mem::size_of::<(u64, u32)>()
    }

    /// How many distinct values are known.
    pub(super) fn known_values(&self) -> usize {
        self.entries.len()
    }

    /// How many entries there is room for.
    #[cfg(test)]
    pub(super) fn room(&self) -> usize {
        self.entries.capacity()
    }

    /// The entry of value `id` (bytes `value`): found by its bytes the first time the
    /// transaction reads it, made when new.
    fn entry(&mut self, id: u32, value: &[u8]) -> usize {
        let index = id as usize;
        if index >= self.entry_of.len() {
            self.entry_of.resize(index + 1, NO_ENTRY);
        }
        if self.entry_of[index] != NO_ENTRY {
            return self.entry_of[index] as usize;
        }
        let hash = foldhash::fast::FixedState::with_seed(0x5eed).hash_one(value);
        let known = self.index.get(&hash).copied();
        let entry = match known {
            Some(e) if in_arena(&self.keys, self.entries[e as usize].key) == value => e,
            _ => {
                grow_to_bound(&mut self.entries);
                let e = self.entries.len() as u32;
                let start = self.keys.len() as u32;
                self.keys.extend_from_slice(value);
                self.entries.push(Entry {
                    key: (start, value.len() as u32),
                    classes: transforms::byte_classes(value),
                    own: NOT_SCANNED,
                    slots: SmallVec::new(),
                    forms: SmallVec::new(),
                    quiet: NO_QUIET,
                });
                if known.is_none() {
                    self.index.insert(hash, e);
                }
                e
            }
        };
        self.entry_of[index] = entry;
        entry as usize
    }

    /// Whether the link of quiet bit `bit` found nothing in value `id` before.
    pub(super) fn is_quiet(&mut self, id: u32, value: &[u8], bit: u32) -> bool {
        let e = self.entry(id, value);
        let at = self.entries[e].quiet;
        at != NO_QUIET && self.quiet[at as usize + bit as usize / 64] & (1 << (bit % 64)) != 0
    }

    /// Notes that the link of quiet bit `bit` (of `words` words of such bits) found
    /// nothing in value `id`.
    pub(super) fn set_quiet(&mut self, id: u32, value: &[u8], bit: u32, words: usize) {
        let e = self.entry(id, value);
        if self.entries[e].quiet == NO_QUIET {
            self.entries[e].quiet = self.quiet.len() as u32;
            self.quiet.resize(self.quiet.len() + words, 0);
        }
        let at = self.entries[e].quiet as usize;
        self.quiet[at + bit as usize / 64] |= 1 << (bit % 64);
    }

    /// The byte classes of value `id`.
    pub(super) fn classes(&mut self, id: u32, value: &[u8]) -> u32 {
        let e = self.entry(id, value);
        self.entries[e].classes
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
        let e = self.entry(id, value);
        let classes = self.entries[e].classes;
        if classes & link.changes_beyond_case == 0 {
            // The chain changes at most the case of letters: the value's own hits.
            return Some(self.own_hits(id, value, prefilters, walks));
        }
        let Cache {
            entries,
            hits,
            form_bytes,
            transformed,
            scratch,
            ..
        } = self;
        let Entry { slots, forms, .. } = &mut entries[e];
        let slot = slot_in(slots, chain);
        let form = match slot.form {
            Some(form) => form,
            None => {
                let range = *slot.value.get_or_insert_with(|| {
                    apply_chain(value, classes, &link.transforms, scratch, transformed)
                });
                let value = range.map_or(value, |r| in_arena(transformed, r));
                let form = scan_form(forms, form_bytes, hits, value, prefilters, walks);
                slot.form = Some(form);
                form
            }
        };
        Some(self.form_hits(e, form, prefilters, walks))
    }

    /// Where the hits of value `id`'s own bytes start in [`Cache::hits`] (scanned once).
    pub(super) fn own_hits(
        &mut self,
        id: u32,
        value: &[u8],
        prefilters: &Prefilters,
        walks: Walks,
    ) -> u32 {
        let e = self.entry(id, value);
        let Cache {
            entries,
            hits,
            form_bytes,
            ..
        } = self;
        let entry = &mut entries[e];
        if entry.own == NOT_SCANNED {
            entry.own = scan_form(&mut entry.forms, form_bytes, hits, value, prefilters, walks);
        }
        let form = entry.own;
        self.form_hits(e, form, prefilters, walks)
    }

    /// Where the hits of form `form` of entry `e` start, the hits of the automata in
    /// `walks` that the form was not walked by added first.
    fn form_hits(&mut self, e: usize, form: u32, prefilters: &Prefilters, walks: Walks) -> u32 {
        let f = &mut self.entries[e].forms[form as usize];
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
                &mut self.loose,
            ) {
                Some(range) => in_arena(&self.loose, range),
                None => &item.value,
            };
        };
        let e = self.entry(id, &item.value);
        let Cache {
            entries,
            transformed,
            scratch,
            ..
        } = self;
        let entry = &mut entries[e];
        if entry.classes & link.changes == 0 {
            return &item.value;
        }
        let classes = entry.classes;
        let slot = slot_in(&mut entry.slots, link.transform_chain);
        let range = *slot.value.get_or_insert_with(|| {
            apply_chain(&item.value, classes, &link.transforms, scratch, transformed)
        });
        match range {
            Some(range) => in_arena(transformed, range),
            None => &item.value,
        }
    }
}

fn slot_in(slots: &mut SmallVec<[(u32, Slot); 4]>, chain: u32) -> &mut Slot {
    let index = match slots.iter().position(|(c, _)| *c == chain) {
        Some(i) => i,
        None => {
            slots.push((chain, Slot::default()));
            slots.len() - 1
        }
    };
    &mut slots[index].1
}

/// Which of a value's `forms` `value` is, scanned when new (walked by the automata in
/// `walks`): chains that give the value the same bytes (ignoring case, as the literals
/// do) share one scan.
fn scan_form(
    forms: &mut Forms,
    form_bytes: &mut Vec<u8>,
    hits: &mut Vec<u64>,
    value: &[u8],
    prefilters: &Prefilters,
    walks: Walks,
) -> u32 {
    let seen = forms
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
    forms.push(Form {
        start,
        len: value.len() as u32,
        hits: at,
        walked: walks,
    });
    (forms.len() - 1) as u32
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

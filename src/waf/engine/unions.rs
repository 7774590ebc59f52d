//! What a transaction knows of whole [`Source`]s (a collection, or one key of it): the
//! union of its values' prefilter hits per chain and its values' byte classes. A rule's
//! gate reads them to skip the rule before its link or targets are read; a link reads
//! them to skip the targets that cannot hold its literals.

use super::super::prefilter::{self, Prefilters, Walks};
use super::super::ruleset::{Gate, Link, Quick, RuleSet, Source, UnionIds};
use super::super::transaction::{Data, View};
use super::super::transforms;
use super::memo::Cache;

/// What a transaction knows of whole collections, by [`UnionIds`].
pub(super) struct Unions {
    /// The union of a collection's hits under a chain (indices `0..chain_unions`) or
    /// under its values' own bytes (`chain_unions + own`), as its start in `hits`;
    /// [`UNION_UNKNOWN`] until computed, [`UNION_NONE`] when the collection cannot be
    /// prefiltered.
    pub(super) by_id: Vec<u32>,
    /// Per union: which automata's hits it holds (besides the one-byte literals', which
    /// answer the slots that need nothing more).
    pub(super) walked: Vec<Walks>,
    pub(super) hits: Vec<u64>,
    /// Per collection (`own`): the byte classes of all its values together (0: not
    /// known yet; [`NOT_DATA`]: some value is not request data).
    pub(super) classes: Vec<u32>,
}

impl Unions {
    /// False when the target `quick` describes yields no value holding the literals of
    /// `link`'s prefilter `slot`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn quick_may_match(
        &mut self,
        cache: &mut Cache,
        rules: &RuleSet,
        link: &Link,
        quick: &Quick,
        slot: u32,
        view: &View,
        has_xml: bool,
    ) -> bool {
        match quick {
            Quick::Union(ids) => self.may_match(cache, rules, link, *ids, slot, view),
            Quick::Xml => has_xml,
            Quick::Count | Quick::Selected => true,
        }
    }

    /// False when no value of the whole collection holds the literals of `link`'s
    /// prefilter `slot`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn may_match(
        &mut self,
        cache: &mut Cache,
        rules: &RuleSet,
        link: &Link,
        ids: UnionIds,
        slot: u32,
        view: &View,
    ) -> bool {
        let own = ids.own as usize;
        let source = &rules.sources[own];
        if self.classes[own] == 0 {
            self.classes[own] = collection_classes(cache, view, source);
        }
        let Some(index) = union_index(
            self.classes[own],
            ids,
            link.changes_beyond_case,
            link.multi_match,
            rules,
        ) else {
            return true;
        };
        let known = self.by_id[index];
        let walks = rules.prefilters.walks_for(slot) | self.walked[index];
        if known == UNION_UNKNOWN || (walks != self.walked[index] && known != UNION_NONE) {
            self.by_id[index] = collection_hits(
                cache,
                &mut self.hits,
                view,
                &rules.prefilters,
                link,
                source,
                walks,
            )
            .unwrap_or(UNION_NONE);
            self.walked[index] = walks;
        }
        let at = self.by_id[index];
        at == UNION_NONE || prefilter::has(&self.hits[at as usize..], slot)
    }
}

impl Unions {
    /// True when what is already known of the collections proves that the first link
    /// of the rule behind `gate` cannot match (an unknown union: false, the link will
    /// compute it).
    pub(super) fn gate_closed(&self, rules: &RuleSet, gate: &Gate, has_xml: bool) -> bool {
        let (start, len) = gate.quick;
        rules.gate_quicks[start as usize..(start + len) as usize]
            .iter()
            .all(|q| match q {
                Quick::Xml => !has_xml,
                Quick::Count | Quick::Selected => false,
                Quick::Union(ids) => {
                    let classes = self.classes[ids.own as usize];
                    let index = (classes != 0)
                        .then(|| {
                            union_index(
                                classes,
                                *ids,
                                gate.changes_beyond_case,
                                gate.multi_match,
                                rules,
                            )
                        })
                        .flatten();
                    index.is_some_and(|i| {
                        let at = self.by_id[i];
                        at != UNION_UNKNOWN
                            && at != UNION_NONE
                            && rules.prefilters.walks_for(gate.slot) & !self.walked[i] == 0
                            && !prefilter::has(&self.hits[at as usize..], gate.slot)
                    })
                }
            })
    }
}

/// Which union answers for a collection with byte classes `classes` read through a
/// chain: the values' own hits when the chain changes at most letter case, else the
/// chain's; None under `multiMatch` when the chain does more (its stages are not all in
/// the chain's union).
pub(super) fn union_index(
    classes: u32,
    ids: UnionIds,
    changes_beyond_case: u32,
    multi_match: bool,
    rules: &RuleSet,
) -> Option<usize> {
    if classes != NOT_DATA && classes & changes_beyond_case == 0 {
        Some(rules.chain_unions as usize + ids.own as usize)
    } else if multi_match {
        None
    } else {
        Some(ids.chain as usize)
    }
}

pub(super) const UNION_UNKNOWN: u32 = u32::MAX;
pub(super) const UNION_NONE: u32 = u32::MAX - 1;
/// Byte classes of a collection some value of which is not request data (real classes
/// always hold [`transforms::class::ANY`]).
pub(super) const NOT_DATA: u32 = 1;

/// The byte classes of every value of `source` together; [`NOT_DATA`] when some value is
/// not request data.
pub(super) fn collection_classes(
    cache: &mut Cache,
    view: &View,
    (collection, key): &Source,
) -> u32 {
    let mut ids = std::mem::take(&mut cache.ids);
    ids.clear();
    let mut classes = NOT_DATA;
    if view.data.value_ids(*collection, key.as_deref(), &mut ids) {
        classes = transforms::class::ANY;
        for id in &ids {
            classes |= cache.classes(*id, view.data.get(*id));
        }
    }
    cache.ids = ids;
    classes
}

/// The union of the prefilter hits of every value of `source` under `link`'s chain,
/// appended to `arena` (with the hits of the automata in `walks`); None when some value cannot
/// be known in advance (then every rule runs).
pub(super) fn collection_hits(
    cache: &mut Cache,
    arena: &mut Vec<u64>,
    view: &View,
    prefilters: &Prefilters,
    link: &Link,
    (collection, key): &Source,
    walks: Walks,
) -> Option<u32> {
    let mut ids = std::mem::take(&mut cache.ids);
    ids.clear();
    let union = if view.data.value_ids(*collection, key.as_deref(), &mut ids) {
        union_of(cache, &ids, arena, view.data, prefilters, link, walks)
    } else {
        None
    };
    cache.ids = ids;
    union
}

/// The union of the hits of values `ids` under `link`'s chain, appended to `arena`.
pub(super) fn union_of(
    cache: &mut Cache,
    ids: &[u32],
    arena: &mut Vec<u64>,
    data: &Data,
    prefilters: &Prefilters,
    link: &Link,
    walks: Walks,
) -> Option<u32> {
    let start = arena.len();
    arena.resize(start + prefilters.words(), 0);
    for id in ids {
        let at = cache.hits(*id, data.get(*id), link, prefilters, walks)? as usize;
        for (u, h) in arena[start..].iter_mut().zip(&cache.hits[at..]) {
            *u |= h;
        }
    }
    Some(start as u32)
}

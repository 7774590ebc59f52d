//! A transaction's buffers (the request's values, the memo, the unions, the matches),
//! kept per thread from one transaction to the next: built fresh, they cost about fifty
//! allocations per request, as many frees, and pages the allocator hands out cold.
//! A thread keeps one set; a set grown past [`KEEP_LIMIT`] bytes (a large body, its
//! transformed forms) is freed instead of kept.

use super::super::transaction::Data;
use super::super::tx::TxMap;
use super::memo::Cache;
use super::{Fired, Match};
use std::cell::RefCell;

/// The buffers one transaction grows.
#[derive(Default)]
pub(super) struct Buffers {
    pub(super) data: Data,
    pub(super) cache: Cache,
    pub(super) unions: Vec<u32>,
    pub(super) walked: Vec<u8>,
    pub(super) union_hits: Vec<u64>,
    pub(super) classes: Vec<u32>,
    pub(super) fired: Vec<Fired>,
    pub(super) spare: Vec<(String, Vec<u8>)>,
    pub(super) matches: Vec<Match>,
    pub(super) matched_vars: Vec<(String, Vec<u8>)>,
    pub(super) stages: [Vec<u8>; 2],
    /// A transaction's TX, reset to the rule set's initial values when the next one
    /// starts its first phase ([`super::super::tx::reset_to`]).
    pub(super) tx: TxMap,
}

/// A thread keeps the memo of values of this many rule sets (a profile per route).
const MEMOS: usize = 4;

/// Past this many bytes of values, their transformed forms and the memo's entries, a set
/// of buffers is not kept. The memo kept between requests stays well below it (about
/// 0.9 MB at its bounds with CRS, see [`super::memo::KEPT_ENTRIES`]): a set dropped
/// for its memo would be made anew, with all its allocations, each time the memo fills.
const KEEP_LIMIT: usize = 2 * 1024 * 1024;

impl Buffers {
    /// The bytes held for values: the request's, their scanned and transformed forms,
    /// the stage buffers.
    fn value_bytes(&self) -> usize {
        let [a, b] = &self.stages;
        self.data.capacity() + self.cache.value_bytes() + a.capacity() + b.capacity()
    }
}

thread_local! {
    static KEPT: RefCell<Option<Buffers>> = const { RefCell::new(None) };
    /// The memos of the other rule sets this thread ran lately.
    static OTHER_MEMOS: RefCell<Vec<Cache>> = const { RefCell::new(Vec::new()) };
}

/// This thread's kept buffers, emptied (but for the memo of values kept for the rule
/// set `rules`), or a new set.
pub(super) fn take(rules: u64) -> Buffers {
    let kept = KEPT.with(|k| k.borrow_mut().take());
    let mut b = kept.unwrap_or_default();
    if !b.cache.is_for(rules) {
        OTHER_MEMOS.with(|m| {
            let mut others = m.borrow_mut();
            let memo = match others.iter().position(|m| m.is_for(rules)) {
                Some(i) => others.remove(i),
                None => Cache::default(),
            };
            let previous = std::mem::replace(&mut b.cache, memo);
            // (An empty memo, from a set of buffers made new because another
            // transaction holds the kept one, must not push out one that knows values.)
            if previous.known_values() > 0 && previous.value_bytes() <= KEEP_LIMIT {
                others.insert(0, previous);
                others.truncate(MEMOS - 1);
            }
        });
    }
    b.data.clear();
    b.cache.start(rules);
    b.unions.clear();
    b.walked.clear();
    b.union_hits.clear();
    b.classes.clear();
    b.fired.clear();
    b.matches.clear();
    b.spare.append(&mut b.matched_vars);
    b.spare.truncate(SPARE_LIMIT);
    b
}

/// A TX with more variables than this is not kept (a request with hundreds of headers
/// leaves one name per header from CRS 920450).
pub(super) const TX_LIMIT: usize = 512;

/// At most this many spare match buffers are kept (a request that matched more keeps
/// its surplus only until the next one starts).
const SPARE_LIMIT: usize = 256;

/// Keeps `buffers` for this thread's next transaction (unless it keeps a set already, or
/// these grew too large).
pub(super) fn keep(buffers: Buffers) {
    if buffers.value_bytes() > KEEP_LIMIT {
        return;
    }
    KEPT.with(|k| {
        let mut kept = k.borrow_mut();
        if kept.is_none() {
            *kept = Some(buffers);
        }
    });
}

/// How many entries the memo this thread keeps has room for (None: no buffers kept).
#[cfg(test)]
pub(super) fn kept_memo_room() -> Option<usize> {
    KEPT.with(|k| k.borrow().as_ref().map(|b| b.cache.room()))
}

/// How many distinct values the memo this thread keeps knows (None: no buffers kept).
#[cfg(test)]
pub(super) fn kept_memo_values() -> Option<usize> {
    KEPT.with(|k| k.borrow().as_ref().map(|b| b.cache.known_values()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::RequestHead;

    #[test]
    fn the_spare_match_buffers_stay_as_many_however_many_requests_run() {
        let rules = r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.m=%{REQUEST_METHOD}"
SecRule REQUEST_HEADERS "@rx ." "id:2,phase:1,pass,nolog"
SecAction "id:3,phase:2,pass,nolog"
"#;
        let set = crate::waf::load_text(rules, std::path::Path::new("t.conf")).expect("parses");
        let head = RequestHead {
            method: "GET".into(),
            uri: b"/".to_vec(),
            headers: vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec()),
            ],
            ..Default::default()
        };
        let spare_after_one = || {
            let mut tx = crate::waf::Transaction::new(&set, head.clone());
            tx.process_request_headers();
            tx.process_request_body(b"");
            let ids: Vec<u32> = tx.fired().iter().map(|f| f.id).collect();
            assert_eq!(ids, [1, 2, 3]);
            drop(tx);
            KEPT.with(|k| {
                k.borrow()
                    .as_ref()
                    .map(|b| b.spare.len() + b.matched_vars.len())
            })
        };
        let first = spare_after_one();
        for _ in 0..50 {
            assert_eq!(spare_after_one(), first);
        }
        let mut many = take(0);
        many.spare.resize_with(SPARE_LIMIT * 2, Default::default);
        keep(many);
        assert_eq!(take(0).spare.len(), SPARE_LIMIT);
    }

    #[test]
    fn a_memo_that_knows_nothing_does_not_push_out_one_that_knows_values() {
        for rules in [101, 102, 103] {
            let mut b = take(rules);
            b.cache.classes(0, b"value");
            keep(b);
        }
        // Rule set 103's buffers are held by a transaction while one on 101 starts: it
        // gets new buffers, and 101's memo from the others.
        let held = take(103);
        let other = take(101);
        assert_eq!(other.cache.known_values(), 1);
        OTHER_MEMOS.with(|m| {
            let others = m.borrow();
            assert!(
                others.iter().all(|c| c.known_values() > 0),
                "no empty memo kept"
            );
            assert_eq!(others.len(), 1, "102's memo is still there");
        });
        drop((held, other));
    }

    fn kept_bytes() -> Option<usize> {
        KEPT.with(|k| k.borrow().as_ref().map(|b| b.data.capacity()))
    }

    #[test]
    fn a_thread_keeps_one_set_and_not_one_grown_past_the_limit() {
        drop(take(0));
        assert_eq!(kept_bytes(), None);
        let mut big = Buffers::default();
        let head = RequestHead {
            headers: vec![(b"x-big".to_vec(), vec![b'a'; KEEP_LIMIT])],
            ..Default::default()
        };
        big.data.fill_from_head(&head.borrowed(), b'&');
        keep(big);
        assert_eq!(kept_bytes(), None, "a large set is freed");
        let mut transformed = Buffers::default();
        transformed.cache.transformed.reserve(KEEP_LIMIT + 1);
        keep(transformed);
        assert_eq!(kept_bytes(), None, "so is one with many transformed bytes");
        let mut small = Buffers::default();
        small
            .data
            .fill_from_head(&RequestHead::default().borrowed(), b'&');
        let size = small.data.capacity();
        keep(small);
        assert_eq!(kept_bytes(), Some(size));
        keep(Buffers::default());
        assert_eq!(kept_bytes(), Some(size), "the first set stays");
        let reused = take(0);
        assert_eq!(reused.data.capacity(), size);
        assert_eq!(kept_bytes(), None);
    }
}

//! Literal prefilters: most rules cannot match most values, and one Aho-Corasick pass
//! proves it for many rules at once. For every `@rx` whose matches must hold one of a
//! finite set of literals (what they start or end with, what a required part holds, or
//! for an alternation the union of its branches' sets), and every `@pm` phrase list, the
//! literals go into one automaton; each distinct transformed form of a value is scanned
//! once, and each rule whose literals are absent is skipped without running its operator.

use super::operators::byte_escapes;
use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind};
use std::collections::BTreeMap;

/// A finite set of literals (lower-cased) one of which every match of `pattern` holds:
/// what matches start or end with, or what a required inner part starts with, whichever
/// has the longest shortest literal; None when there is no such set (the rule always
/// runs its regex).
pub fn required_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    // The automaton ignores ASCII case, so a leading `(?i)` (ASCII-only here: the
    // pattern is read without Unicode) can go: without it each letter is one literal
    // byte, not two, and long alternations stay under the extractor's limits.
    let pattern = pattern.strip_prefix("(?i)").unwrap_or(pattern);
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
        .build()
        .parse(&byte_escapes(pattern))
        .ok()?;
    literals_of(&hir, 0)
}

/// The best required set of `hir`: what it starts or ends with, what a required part of
/// a concatenation holds, or, for an alternation, the union of every branch's set.
fn literals_of(hir: &Hir, depth: u32) -> Option<Vec<Vec<u8>>> {
    let mut best: Option<Vec<Vec<u8>>> = None;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        consider(&mut best, extract(hir, kind));
    }
    if depth > 3 {
        return best;
    }
    let mut inner = hir;
    while let HirKind::Capture(c) = inner.kind() {
        inner = &c.sub;
    }
    match inner.kind() {
        // A match also holds a match of every part of a concatenation: the literals of
        // an inner part (`on` in `[\s"'/]on[a-z]{3,50}=`) are required too.
        HirKind::Concat(parts) => {
            for part in parts {
                consider(&mut best, literals_of(part, depth + 1));
            }
        }
        // A match holds a match of one branch: the union of the branches' sets.
        HirKind::Alternation(branches) => {
            let mut union = Vec::new();
            for branch in branches {
                union.extend(literals_of(branch, depth + 1)?);
            }
            union.sort();
            union.dedup();
            consider(&mut best, Some(union));
        }
        _ => {}
    }
    best
}

/// The finite set of literals (lower-cased) that every match of `hir` starts (ends) with.
fn extract(hir: &Hir, kind: ExtractKind) -> Option<Vec<Vec<u8>>> {
    let mut extractor = Extractor::new();
    extractor
        .kind(kind)
        .limit_class(16)
        .limit_repeat(8)
        .limit_literal_len(32)
        .limit_total(4096);
    let seq = extractor.extract(hir);
    let mut lower: Vec<Vec<u8>> = seq
        .literals()?
        .iter()
        .map(|l| l.as_bytes().to_ascii_lowercase())
        .collect();
    lower.sort();
    lower.dedup();
    (!lower.is_empty() && lower.iter().all(|l| !l.is_empty())).then_some(lower)
}

/// Keeps the candidate whose shortest literal is longest (fewer chance hits).
fn consider(best: &mut Option<Vec<Vec<u8>>>, candidate: Option<Vec<Vec<u8>>>) {
    let Some(candidate) = candidate else {
        return;
    };
    let min = |v: &Vec<Vec<u8>>| v.iter().map(Vec::len).min().unwrap_or(0);
    if best.as_ref().is_none_or(|b| min(&candidate) > min(b)) {
        *best = Some(candidate);
    }
}

/// The same condition with fewer literals: a literal that holds another one of the set
/// is dropped (a value holding it holds the shorter one too). CRS's class expansions
/// give some slots thousands of literals; about a third go.
pub fn minimal(literals: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut sorted: Vec<&Vec<u8>> = literals.iter().collect();
    sorted.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    sorted.dedup();
    // Shortest first: a literal is checked against the kept ones, by each length kept.
    let mut kept: fnv::FnvHashSet<&[u8]> = Default::default();
    let mut lengths: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for lit in sorted {
        let held = lengths
            .iter()
            .any(|n| lit.windows(*n).any(|w| kept.contains(w)));
        if !held {
            kept.insert(lit);
            if lengths.last() != Some(&lit.len()) {
                lengths.push(lit.len());
            }
            out.push(lit.clone());
        }
    }
    out
}

/// All prefilters of a rule set: per group of slots (rules that run on the request, and
/// the response's), one automaton over its slots' literals. A value is scanned once per
/// distinct transformed form, whatever the chains that produce it, and by a group's
/// automaton only once a slot of that group asks: the request never walks the response
/// rules' thousands of error-message literals. A scan may set the bits of slots of other
/// chains, which nobody reads for this form.
///
/// The automata are the crate's contiguous NFA, not its DFA: over CRS's 40,000 literals
/// the DFA took 137 MB (and 160 MB before [`minimal`]) for a few percent less time per
/// scanned byte; the NFA takes 5 MB.
#[derive(Debug, Default)]
pub struct Prefilters {
    automata: Vec<GroupAutomaton>,
    /// Per slot, the bit of the automaton its literals need ([`Walks`]; 0 when all are
    /// one byte long).
    walks: Vec<Walks>,
    /// One-byte literals (up to 64) are not in the automata (they would make a match
    /// state of nearly every byte): per byte, the bit of its literal (either case) ...
    byte_bits: Box<ByteBits>,
    /// ... and per bit, the literal's slots' (start, len) in `slot_bits`.
    byte_runs: Vec<(u32, u32)>,
    slot_bits: Vec<(u32, u64)>,
    /// Per slot, the bytes of its literals (either case) and the shortest literal's
    /// length: a value holding one of the literals has a run of that many such bytes.
    runs: Vec<([u64; 4], u32)>,
    /// Which transformation chains have slots.
    chains: Vec<bool>,
    /// Number of slots (rule links with a prefilter).
    pub slots: u32,
}

/// Which automata a scan walks (or has walked): bit `g` for group `g`.
pub type Walks = u8;

/// The literals of one group of slots longer than a byte.
#[derive(Debug)]
struct GroupAutomaton {
    nfa: NFA,
    /// Per pattern (a distinct literal): its slots, as (word, bits) runs in `slot_bits`.
    pattern_slots: Vec<(u32, u32)>,
}

/// Per byte value, a bit set.
#[derive(Debug)]
struct ByteBits([u64; 256]);

impl Default for ByteBits {
    fn default() -> Self {
        ByteBits([0; 256])
    }
}

/// Which slots' literals a value contains.
pub type Hits = Box<[u64]>;

impl Prefilters {
    /// `entries`: (chain id, literals) per slot, slot = index; one group.
    pub fn build(chains: usize, entries: &[(u32, Vec<Vec<u8>>)]) -> Prefilters {
        Prefilters::build_grouped(chains, entries, &[])
    }

    /// As [`Prefilters::build`], slot `i`'s literals in the automaton of group
    /// `groups[i]` (0 when missing; at most 8 groups).
    pub fn build_grouped(
        chains: usize,
        entries: &[(u32, Vec<Vec<u8>>)],
        groups: &[u8],
    ) -> Prefilters {
        let mut with_slots = vec![false; chains];
        let slots = entries.len() as u32;
        let entries: Vec<(u32, Vec<Vec<u8>>)> = entries
            .iter()
            .map(|(chain, literals)| (*chain, minimal(literals)))
            .collect();
        // One-byte literals get a bit each (up to 64; any others go to the automata).
        let mut byte_bits = Box::<ByteBits>::default();
        let mut byte_literals: Vec<u8> = entries
            .iter()
            .flat_map(|(_, literals)| literals)
            .filter_map(|l| match l.as_slice() {
                [b] => Some(b.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        byte_literals.sort_unstable();
        byte_literals.dedup();
        byte_literals.truncate(64);
        for (bit, byte) in byte_literals.iter().enumerate() {
            for b in [*byte, byte.to_ascii_uppercase()] {
                byte_bits.0[usize::from(b)] = 1 << bit;
            }
        }
        let mut byte_slots: Vec<Vec<u32>> = vec![Vec::new(); byte_literals.len()];
        // Per group, one pattern per distinct literal, however many slots want it (CRS's
        // phrase files and common literals recur across rules): a match sets all its
        // slots' bits a word at a time.
        let mut slots_of: Vec<BTreeMap<Vec<u8>, Vec<u32>>> = Vec::new();
        let mut walks = vec![0; entries.len()];
        let mut runs = Vec::with_capacity(entries.len());
        for (slot, (chain, literals)) in entries.into_iter().enumerate() {
            with_slots[chain as usize] = true;
            let mut bytes = [0u64; 4];
            for b in literals.iter().flatten() {
                for b in [b.to_ascii_lowercase(), b.to_ascii_uppercase()] {
                    bytes[usize::from(b >> 6)] |= 1 << (b & 63);
                }
            }
            let shortest = literals.iter().map(Vec::len).min().unwrap_or(0);
            runs.push((bytes, shortest as u32));
            let group = usize::from(groups.get(slot).copied().unwrap_or(0).min(7));
            if slots_of.len() <= group {
                slots_of.resize_with(group + 1, Default::default);
            }
            // Lower-cased (phrase lists keep their case): the scan ignores ASCII case, and
            // a one-byte literal is found by its byte in either case.
            for lit in literals {
                let lit = lit.to_ascii_lowercase();
                if let [b] = lit.as_slice() {
                    if let Ok(bit) = byte_literals.binary_search(b) {
                        byte_slots[bit].push(slot as u32);
                        continue;
                    }
                }
                walks[slot] = 1 << group;
                slots_of[group].entry(lit).or_default().push(slot as u32);
            }
        }
        let mut slot_bits: Vec<(u32, u64)> = Vec::new();
        let byte_runs = byte_slots
            .into_iter()
            .map(|slots| push_run(&mut slot_bits, slots))
            .collect();
        let mut automata = Vec::with_capacity(slots_of.len());
        for group in slots_of {
            let mut pattern_slots = Vec::with_capacity(group.len());
            let mut pats = Vec::with_capacity(group.len());
            for (lit, slots) in group {
                pattern_slots.push(push_run(&mut slot_bits, slots));
                pats.push(lit);
            }
            let nfa = NFA::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .prefilter(false)
                .build(&pats);
            match nfa {
                Ok(nfa) => automata.push(GroupAutomaton { nfa, pattern_slots }),
                // Too large for the crate: no prefilter at all (every rule runs).
                Err(_) => return Prefilters::default(),
            }
        }
        Prefilters {
            runs,
            walks,
            byte_bits,
            byte_runs,
            chains: with_slots,
            automata,
            slot_bits,
            slots,
        }
    }

    /// Whether rules read values through `chain` with a prefilter.
    pub fn covers(&self, chain: u32) -> bool {
        self.chains.get(chain as usize).copied().unwrap_or(false)
    }

    /// Words in one set of hits.
    pub fn words(&self) -> usize {
        (self.slots as usize).div_ceil(64)
    }

    /// Scans a value transformed by `chain`; None when the chain has no prefilter.
    pub fn scan(&self, chain: u32, value: &[u8]) -> Option<Hits> {
        if !self.covers(chain) {
            return None;
        }
        let mut hits = Vec::new();
        self.scan_into(value, &mut hits);
        Some(hits.into_boxed_slice())
    }

    /// False when `value` cannot hold any of `slot`'s literals: it has no run of the
    /// literals' bytes as long as the shortest one. One cheap pass, no automaton: for the
    /// few values scanned once (`multiMatch` stages after a decoding).
    pub fn may_hold(&self, slot: u32, value: &[u8]) -> bool {
        let Some((bytes, shortest)) = self.runs.get(slot as usize) else {
            return true;
        };
        let mut run = 0;
        for &b in value {
            if bytes[usize::from(b >> 6)] & (1 << (b & 63)) != 0 {
                run += 1;
                if run >= *shortest {
                    return true;
                }
            } else {
                run = 0;
            }
        }
        false
    }

    /// The automaton `slot` needs walked (none when all its literals are one byte: the
    /// byte pass of [`Prefilters::scan_bytes_into`] answers it alone).
    pub fn walks_for(&self, slot: u32) -> Walks {
        self.walks.get(slot as usize).copied().unwrap_or(0)
    }

    /// Appends the hits of `value` to `arena` (no allocation per scan once the arena has
    /// grown), with every automaton's; returns where they start.
    pub fn scan_into(&self, value: &[u8], arena: &mut Vec<u64>) -> u32 {
        let at = self.scan_bytes_into(value, arena);
        self.add_automaton_hits(value, &mut arena[at as usize..], Walks::MAX);
        at
    }

    /// Appends the hits of `value`'s one-byte literals to `arena`: exact for the slots
    /// that [walk](Prefilters::walks_for) no automaton, a part of the others' until
    /// [`Prefilters::add_automaton_hits`] adds the rest.
    pub fn scan_bytes_into(&self, value: &[u8], arena: &mut Vec<u64>) -> u32 {
        let start = arena.len();
        arena.resize(start + self.words(), 0);
        let hits = &mut arena[start..];
        let mut present = value
            .iter()
            .fold(0u64, |acc, b| acc | self.byte_bits.0[usize::from(*b)]);
        while present != 0 {
            let bit = present.trailing_zeros() as usize;
            present &= present - 1;
            self.set_slots(hits, self.byte_runs[bit]);
        }
        start as u32
    }

    /// Adds to `hits` the hits of `value`'s longer literals, from the automata `walks`
    /// names.
    pub fn add_automaton_hits(&self, value: &[u8], hits: &mut [u64], walks: Walks) {
        for (group, automaton) in self.automata.iter().enumerate() {
            if walks & (1 << group) != 0 {
                self.walk(automaton, value, hits);
            }
        }
    }

    fn walk(&self, automaton: &GroupAutomaton, value: &[u8], hits: &mut [u64]) {
        let nfa = &automaton.nfa;
        let Ok(mut sid) = nfa.start_state(Anchored::No) else {
            return;
        };
        // The automaton walked by hand: every match state reports all its patterns, with
        // none of the resumable iterator's bookkeeping per match.
        for &b in value {
            sid = nfa.next_state(Anchored::No, sid, b);
            if nfa.is_special(sid) && nfa.is_match(sid) {
                for i in 0..nfa.match_len(sid) {
                    let pattern = nfa.match_pattern(sid, i).as_usize();
                    self.set_slots(hits, automaton.pattern_slots[pattern]);
                }
            }
        }
    }

    fn set_slots(&self, hits: &mut [u64], (start, len): (u32, u32)) {
        for (word, bits) in &self.slot_bits[start as usize..(start + len) as usize] {
            hits[*word as usize] |= bits;
        }
    }
}

/// Appends the bits of `slots` to `slot_bits` as (word, bits) runs; returns the run's
/// (start, len).
fn push_run(slot_bits: &mut Vec<(u32, u64)>, mut slots: Vec<u32>) -> (u32, u32) {
    slots.sort_unstable();
    slots.dedup();
    let start = slot_bits.len() as u32;
    for slot in slots {
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        let own = slot_bits.len() as u32 > start;
        match slot_bits.last_mut() {
            Some((w, bits)) if own && *w == word => *bits |= bit,
            _ => slot_bits.push((word, bit)),
        }
    }
    (start, slot_bits.len() as u32 - start)
}

pub fn has(hits: &[u64], slot: u32) -> bool {
    let slot = slot as usize;
    hits.get(slot / 64)
        .is_some_and(|w| w & (1 << (slot % 64)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_drops_literals_that_hold_another() {
        let lits: Vec<Vec<u8>> = ["union", "select", "union all", "xunionx", "sel", "sel"]
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect();
        let kept = minimal(&lits);
        assert_eq!(kept, vec![b"sel".to_vec(), b"union".to_vec()]);
    }

    fn has_all(lits: &[Vec<u8>], words: &[&[u8]]) -> bool {
        words
            .iter()
            .all(|w| lits.iter().any(|l| l.as_slice() == *w))
    }

    #[test]
    fn finds_required_literals() {
        let lits = required_literals(r"(?i)(?:union\s+select|benchmark\s*\()").expect("finite");
        // Each literal holds a word of one branch, and both branches are there.
        let holds = |l: &Vec<u8>, w: &[u8]| l.windows(w.len()).any(|x| x == w);
        assert!(lits.iter().all(|l| [&b"union"[..], b"select", b"benchmark"]
            .iter()
            .any(|w| holds(l, w))));
        assert!(lits.iter().any(|l| holds(l, b"benchmark")), "{lits:?}");
        assert!(lits
            .iter()
            .any(|l| holds(l, b"union") || holds(l, b"select")));
        // Every branch of an alternation gives its own required part.
        let lits =
            required_literals(r"\beval\(|new\s+Function|String\.fromCharCode").expect("finite");
        assert!(
            has_all(&lits, &[b"eval(", b"string.fromcharcode"]),
            "{lits:?}"
        );
        assert!(lits.iter().any(|l| holds(l, b"function")), "{lits:?}");
        assert!(
            required_literals(r"evil|\w+").is_none(),
            "a branch without literals: no prefilter"
        );
        assert!(
            required_literals(r"^.*").is_none(),
            "matches anything: no prefilter"
        );
        assert!(
            required_literals(r"\w+").is_none(),
            "no literal in a class run"
        );
        assert_eq!(
            required_literals(r#"(?i)[\t-\r "'\x28,/-9;=`]on[a-z]{3,50}[\t-\r \x28,;]*?=[^=]"#),
            Some(vec![b"on".to_vec()]),
            "a required inner part when the ends are classes too wide to list"
        );
        assert!(
            required_literals(r"a?(?:on)?x*").is_none(),
            "parts that may be empty require nothing"
        );
    }

    #[test]
    fn scans_mark_rules_whose_literals_appear() {
        let p = Prefilters::build(
            1,
            &[
                (0, vec![b"select".to_vec()]),
                (0, vec![b"<script".to_vec(), b"onerror".to_vec()]),
            ],
        );
        let hits = p.scan(0, b"x ONERROR=1").expect("chain has a prefilter");
        assert!(!has(&hits, 0));
        assert!(has(&hits, 1));
    }

    #[test]
    fn a_slot_of_one_byte_literals_is_answered_by_the_byte_pass_alone() {
        let p = Prefilters::build(
            1,
            &[
                (0, vec![b"\n".to_vec(), b"\r".to_vec()]),
                (0, vec![b"select".to_vec(), b";".to_vec()]),
            ],
        );
        assert_eq!(p.walks_for(0), 0);
        assert_eq!(p.walks_for(1), 1);
        let mut arena = Vec::new();
        let at = p.scan_bytes_into(b"a\nSELECT", &mut arena) as usize;
        assert!(has(&arena[at..], 0));
        assert!(!has(&arena[at..], 1), "the word needs the automaton");
        p.add_automaton_hits(b"a\nSELECT", &mut arena[at..], 1);
        assert!(has(&arena[at..], 0) && has(&arena[at..], 1));
        let at = p.scan_bytes_into(b"a;b", &mut arena) as usize;
        assert!(!has(&arena[at..], 0) && has(&arena[at..], 1));
    }

    #[test]
    fn a_value_may_hold_literals_only_with_a_run_of_their_bytes_as_long_as_the_shortest() {
        let p = Prefilters::build(1, &[(0, vec![b"eval(".to_vec(), b"require(".to_vec()])]);
        assert!(p.may_hold(0, b"x=EVAL(1)"));
        assert!(p.may_hold(0, b"\x01require(\x02"));
        // A necessary condition only: the same bytes in another order pass too.
        assert!(p.may_hold(0, b"lave("));
        assert!(!p.may_hold(0, b"e v a l ("));
        assert!(!p.may_hold(0, b"\x9f\x01ev\xffal\x00"));
        assert!(!p.may_hold(0, b""));
    }

    #[test]
    fn one_byte_literals_are_found_in_either_case_beside_the_automaton() {
        let p = Prefilters::build(
            1,
            &[
                (0, vec![b"e".to_vec(), b"union".to_vec()]),
                (0, vec![b";".to_vec()]),
                (0, vec![b"x".to_vec()]),
                (0, vec![b"select".to_vec()]),
            ],
        );
        let hits = p.scan(0, b"SELECT 1;").expect("chain has a prefilter");
        // `E` of SELECT, the `;`, and the word; no `x`.
        assert!(has(&hits, 0) && has(&hits, 1) && has(&hits, 3));
        assert!(!has(&hits, 2));
        let hits = p.scan(0, b"Union").expect("chain has a prefilter");
        assert!(has(&hits, 0) && !has(&hits, 1) && !has(&hits, 3));
        // Only one-byte literals: no automaton at all, the byte set still answers.
        let p = Prefilters::build(1, &[(0, vec![b"<".to_vec()]), (0, vec![b"'".to_vec()])]);
        let hits = p.scan(0, b"a<b").expect("chain has a prefilter");
        assert!(has(&hits, 0) && !has(&hits, 1));
        // Phrase lists keep their case: `E` and `e` are one literal, found either way.
        let p = Prefilters::build(1, &[(0, vec![b"E".to_vec()]), (0, vec![b"e".to_vec()])]);
        for value in [&b"e"[..], b"E"] {
            let hits = p.scan(0, value).expect("chain has a prefilter");
            assert!(has(&hits, 0) && has(&hits, 1));
        }
    }

    #[test]
    fn a_group_s_automaton_is_walked_only_for_its_slots() {
        let p = Prefilters::build_grouped(
            1,
            &[
                (0, vec![b"select".to_vec()]),
                (0, vec![b"warning".to_vec(), b";".to_vec()]),
            ],
            &[0, 1],
        );
        assert_eq!([p.walks_for(0), p.walks_for(1)], [1, 2]);
        let value = b"select; warning";
        let mut arena = Vec::new();
        let at = p.scan_bytes_into(value, &mut arena) as usize;
        p.add_automaton_hits(value, &mut arena[at..], 1);
        assert!(has(&arena[at..], 0));
        // Slot 1's `;` is the byte pass's; its word is not in group 0's automaton.
        let at = p.scan_bytes_into(b"warning", &mut arena) as usize;
        p.add_automaton_hits(b"warning", &mut arena[at..], 1);
        assert!(!has(&arena[at..], 1));
        p.add_automaton_hits(b"warning", &mut arena[at..], 2);
        assert!(has(&arena[at..], 1));
        let hits = p.scan(0, b"WARNING").expect("chain has a prefilter");
        assert!(
            has(&hits, 1) && !has(&hits, 0),
            "a whole scan walks every group"
        );
    }

    #[test]
    fn one_byte_literals_past_the_64_bits_go_to_the_automaton() {
        let bytes: Vec<Vec<u8>> = (0u8..100).map(|b| vec![b]).collect();
        let p = Prefilters::build(1, &[(0, bytes)]);
        assert_eq!(p.walks_for(0), 1);
        for b in [0u8, 63, 64, 99] {
            let hits = p.scan(0, &[b]).expect("chain has a prefilter");
            assert!(has(&hits, 0), "byte {b}");
        }
        assert!(!has(&p.scan(0, b"\xff").expect("scanned"), 0));
    }
}

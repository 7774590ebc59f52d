//! TX, the variables a transaction's rules write (`setvar:tx.score=+5`), stored so that
//! writing one costs no allocation in the common case. CRS writes about fifty per request
//! (its initialisation, anomaly scores, one per request header in 920450): with a
//! `String` name and a `Vec` value each, they were the engine's largest source of
//! allocations. Names written by a literal `setvar` are interned once at load (a name
//! costs its bytes once per process, whatever the reloads) and values up to 16 bytes
//! (scores, flags, short names) are kept inline.

use smallvec::SmallVec;
use std::borrow::Borrow;
use std::collections::BTreeMap;

/// A value: bytes, inline when short.
pub type TxValue = SmallVec<[u8; 16]>;

/// The collection: names (lower-case) in order, so that a prefix is a range.
pub type TxMap = BTreeMap<TxName, TxValue>;

/// A variable's name: interned when a rule names it literally, owned when a macro built
/// it (`tx.header_name_920450_%{tx.0}`). Compares as its text.
#[derive(Debug, Clone)]
pub enum TxName {
    Interned(&'static str),
    Owned(Box<str>),
}

impl TxName {
    pub fn as_str(&self) -> &str {
        match self {
            TxName::Interned(s) => s,
            TxName::Owned(s) => s,
        }
    }
}

impl Borrow<str> for TxName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for TxName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for TxName {}

impl PartialOrd for TxName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TxName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// Sets `name` to `value`, reusing the old value's storage; `interned` is the name's
/// interned copy when the rule wrote it literally.
pub fn set(tx: &mut TxMap, name: &str, interned: Option<&'static str>, value: &[u8]) {
    if let Some(slot) = tx.get_mut(name) {
        slot.clear();
        slot.extend_from_slice(value);
        return;
    }
    let key = match interned {
        Some(s) => TxName::Interned(s),
        None => TxName::Owned(name.into()),
    };
    tx.insert(key, TxValue::from_slice(value));
}

/// Makes `tx` equal to `initial`, reusing its nodes and value buffers (a worker keeps
/// one transaction's TX for the next, which would otherwise copy CRS's initial values,
/// about fifty allocations, and free them again): one ordered pass over both maps keeps
/// the names `initial` has (their values reset) and removes the others; the names it
/// passes over, which `tx` lost, are copied in after.
pub fn reset_to(tx: &mut TxMap, initial: &TxMap) {
    if tx.is_empty() {
        tx.clone_from(initial);
        return;
    }
    let mut wanted = initial.iter().peekable();
    // Initial names the merge passes over without finding them in `tx` (deleted by the
    // last request): copied in after.
    let mut missing: SmallVec<[(&TxName, &TxValue); 8]> = SmallVec::new();
    tx.retain(|name, value| {
        while let Some(lost) = wanted.next_if(|(w, _)| w.as_str() < name.as_str()) {
            missing.push(lost);
        }
        match wanted.next_if(|(w, _)| w.as_str() == name.as_str()) {
            Some((_, v)) => {
                if value.as_slice() != v.as_slice() {
                    value.clear();
                    value.extend_from_slice(v);
                }
                true
            }
            None => false,
        }
    });
    missing.extend(wanted);
    for (name, value) in missing {
        tx.insert(name.clone(), value.clone());
    }
}

/// What a lone `TX:name` target ([`super::ruleset::Link::tx_key`]) gives its operator:
/// the variable's value, or with `&` its count ("1" or "0"); an unset variable gives
/// nothing (the link cannot match).
pub fn lone_subject(value: Option<&[u8]>, count: bool) -> Option<&[u8]> {
    match (count, value) {
        (true, Some(_)) => Some(b"1"),
        (true, None) => Some(b"0"),
        (false, value) => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::intern::intern;

    #[test]
    fn a_reset_map_equals_the_initial_one_whatever_it_held() {
        let mut initial = TxMap::new();
        for (name, value) in [
            ("b", "2"),
            ("d", "a long value of more than sixteen bytes"),
            ("f", ""),
        ] {
            set(&mut initial, name, None, value.as_bytes());
        }
        let mut rng = fastrand::Rng::with_seed(7);
        let mut tx = TxMap::new();
        for _ in 0..500 {
            // What a request may leave: values changed, names added and removed.
            for _ in 0..rng.usize(0..6) {
                let name = ["a", "b", "c", "d", "e", "f", "g"][rng.usize(0..7)];
                match rng.u8(0..3) {
                    0 => {
                        tx.remove(name);
                    }
                    1 => set(&mut tx, name, None, b"x"),
                    _ => set(&mut tx, name, None, &vec![b'y'; rng.usize(0..40)]),
                }
            }
            reset_to(&mut tx, &initial);
            assert_eq!(tx, initial);
        }
    }

    #[test]
    fn names_compare_as_text_and_interning_keeps_one_copy() {
        let a = intern("inbound_anomaly_score_pl1");
        let b = intern(&String::from("inbound_anomaly_score_pl1"));
        assert!(std::ptr::eq(a, b));
        let mut tx = TxMap::new();
        set(&mut tx, "b", None, b"2");
        set(&mut tx, a, Some(a), b"5");
        set(&mut tx, "inbound_anomaly_score_pl1", None, b"7");
        assert_eq!(tx.len(), 2);
        assert_eq!(
            tx.get("inbound_anomaly_score_pl1").map(|v| v.as_slice()),
            Some(&b"7"[..])
        );
        let names: Vec<&str> = tx.keys().map(TxName::as_str).collect();
        assert_eq!(names, ["b", "inbound_anomaly_score_pl1"]);
    }
}

//! Process-wide copies of the names rule files repeat: TX variable names that literal
//! `setvar`s write, and rule tags. A rule set names a bounded set of them; each is kept
//! once however often rule sets are reloaded, and two interned names are equal exactly
//! when they are the same copy, so that the request path compares them by address
//! (CRS's `ctl:ruleRemoveTargetByTag=xss-perf-disable`, set on most requests, is
//! checked against every tag of every rule evaluated after it).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// The process-wide copy of `name`.
pub fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// A rule tag (`tag:'attack-xss'`), interned: equal tags are one copy.
#[derive(Debug, Clone, Copy)]
pub struct Tag(&'static str);

impl Tag {
    pub fn new(tag: &str) -> Tag {
        Tag(intern(tag))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl PartialEq for Tag {
    fn eq(&self, other: &Tag) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Tag {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_tags_are_one_copy_and_others_differ() {
        let a = Tag::new("xss-perf-disable");
        let b = Tag::new(&String::from("xss-perf-disable"));
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_ne!(a, Tag::new("paranoia-level/1"));
        assert_ne!(a, Tag::new("XSS-perf-disable"), "tags compare with case");
    }
}

//! Macro expansion in action and operator arguments: `%{TX.score}`, `%{MATCHED_VAR}`,
//! `%{REQUEST_HEADERS.User-Agent}`, `%{RULE.id}`. Parsed once at load; text without a
//! macro stays a plain string and costs nothing to "expand".

use super::targets::Collection;
use std::borrow::Cow;

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Var {
        collection: Collection,
        key: Option<String>,
    },
    Rule(String),
}

/// Where expansion reads values from (the transaction, with the rule being run).
pub trait MacroSource {
    fn lookup(&self, collection: Collection, key: Option<&str>) -> Option<Cow<'_, [u8]>>;
    fn rule_field(&self, field: &str) -> Option<String>;
}

#[derive(Debug, Clone)]
pub struct Macro {
    text: String,
    parts: Option<Vec<Part>>,
}

impl Macro {
    /// Parses `text`; `%{...}` naming an unknown collection is an error.
    pub fn parse(text: &str) -> Result<Macro, String> {
        if !text.contains("%{") {
            return Ok(Macro {
                text: text.to_string(),
                parts: None,
            });
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("%{") {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let inner = &rest[start + 2..start + len];
            let (name, key) = match inner.split_once(['.', ':']) {
                Some((n, k)) => (n, Some(k)),
                None => (inner, None),
            };
            if name.eq_ignore_ascii_case("rule") {
                parts.push(Part::Rule(key.unwrap_or("").to_ascii_lowercase()));
            } else {
                let collection = Collection::from_name(name)
                    .ok_or_else(|| format!("unsupported macro %{{{inner}}}"))?;
                parts.push(Part::Var {
                    collection,
                    key: key.map(|k| k.to_ascii_lowercase()),
                });
            }
            rest = &rest[start + len + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Macro {
            text: text.to_string(),
            parts: Some(parts),
        })
    }

    /// Whether expanding reads a variable of a collection `wanted` accepts.
    pub fn reads(&self, wanted: impl Fn(Collection) -> bool) -> bool {
        self.parts.iter().flatten().any(|p| match p {
            Part::Var { collection, .. } => wanted(*collection),
            _ => false,
        })
    }

    pub fn is_literal(&self) -> bool {
        self.parts.is_none()
    }

    /// The text as written.
    pub fn raw(&self) -> &str {
        &self.text
    }

    pub fn expand<'a>(&'a self, source: &'a dyn MacroSource) -> Cow<'a, [u8]> {
        let Some(parts) = &self.parts else {
            return Cow::Borrowed(self.text.as_bytes());
        };
        // A lone variable (`%{tx.critical_anomaly_score}`, CRS's usual operand) is the
        // variable's own bytes: no copy.
        if let [Part::Var { collection, key }] = parts.as_slice() {
            return source
                .lookup(*collection, key.as_deref())
                .unwrap_or(Cow::Borrowed(b""));
        }
        let mut out = Vec::with_capacity(self.text.len());
        each_piece(parts, source, |piece| out.extend_from_slice(piece));
        Cow::Owned(out)
    }

    /// Appends the expansion to `out` (no allocation while it fits).
    pub fn expand_into<A: smallvec::Array<Item = u8>>(
        &self,
        source: &dyn MacroSource,
        out: &mut smallvec::SmallVec<A>,
    ) {
        match &self.parts {
            Some(parts) => each_piece(parts, source, |piece| out.extend_from_slice(piece)),
            None => out.extend_from_slice(self.text.as_bytes()),
        }
    }

    pub fn expand_string(&self, source: &dyn MacroSource) -> String {
        String::from_utf8_lossy(&self.expand(source)).into_owned()
    }
}

/// The expansion of `parts`, piece by piece.
fn each_piece(parts: &[Part], source: &dyn MacroSource, mut piece: impl FnMut(&[u8])) {
    for part in parts {
        match part {
            Part::Literal(s) => piece(s.as_bytes()),
            Part::Var { collection, key } => {
                if let Some(v) = source.lookup(*collection, key.as_deref()) {
                    piece(&v);
                }
            }
            Part::Rule(field) => {
                if let Some(v) = source.rule_field(field) {
                    piece(v.as_bytes());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl MacroSource for Fixed {
        fn lookup(&self, collection: Collection, key: Option<&str>) -> Option<Cow<'_, [u8]>> {
            match (collection, key) {
                (Collection::Tx, Some("score")) => Some(Cow::Borrowed(b"5")),
                (Collection::MatchedVarName, None) => Some(Cow::Borrowed(b"ARGS:q")),
                _ => None,
            }
        }
        fn rule_field(&self, field: &str) -> Option<String> {
            (field == "id").then(|| "942100".to_string())
        }
    }

    #[test]
    fn expands_variables_and_rule_fields() {
        let m = Macro::parse("s=%{TX.Score} in %{MATCHED_VAR_NAME} by %{rule.id}%{tx.none}!")
            .expect("parses");
        assert_eq!(m.expand_string(&Fixed), "s=5 in ARGS:q by 942100!");
        assert!(Macro::parse("plain").expect("parses").is_literal());
        assert!(Macro::parse("%{GEO.country}").is_err());
    }
}

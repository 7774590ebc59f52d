//! Maps every key path of a YAML document (`routes[2].match.path`) to its line.
//!
//! serde_yaml keeps no positions once a document is parsed, and a problem found by
//! validation (a dangling upstream, a duplicate address) must still point at a line. This
//! walks the document's events once with yaml-rust2, which reports a position per event.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line numbers (1-based) of every key and sequence item in a document.
#[derive(Debug, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// Indexes `text`; a document that does not parse gives an empty index (the parse error
    /// is reported by serde_yaml with its own position).
    pub fn new(text: &str) -> Self {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut walker, false).is_err() {
            return LineIndex::default();
        }
        LineIndex {
            lines: walker.lines,
        }
    }

    /// The line of `path`, or of its nearest ancestor that has one.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut current = path;
        loop {
            if let Some(line) = self.lines.get(current) {
                return Some(*line);
            }
            current = parent(current)?;
        }
    }
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

#[derive(Default)]
struct Walker {
    stack: Vec<(String, Frame)>,
    lines: HashMap<String, usize>,
}

impl Walker {
    /// Called for each node; returns the node's own path if it is a value (not a key).
    fn node(&mut self, line: usize) -> Option<String> {
        let Some((path, frame)) = self.stack.last_mut() else {
            return Some(String::new());
        };
        match frame {
            Frame::Map { key } => key.take().map(|k| join(path, &k)),
            Frame::Seq { index } => {
                let item = format!("{path}[{index}]");
                *index += 1;
                self.lines.entry(item.clone()).or_insert(line);
                Some(item)
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line();
        match event {
            Event::Scalar(text, ..) => {
                let is_key = matches!(self.stack.last(), Some((_, Frame::Map { key: None })));
                if is_key {
                    if let Some((path, Frame::Map { key })) = self.stack.last_mut() {
                        self.lines.entry(join(path, &text)).or_insert(line);
                        *key = Some(text);
                    }
                } else {
                    self.node(line);
                }
            }
            Event::Alias(_) => {
                self.node(line);
            }
            Event::MappingStart(..) => {
                let path = self.node(line).unwrap_or_default();
                self.stack.push((path, Frame::Map { key: None }));
            }
            Event::SequenceStart(..) => {
                let path = self.node(line).unwrap_or_default();
                self.stack.push((path, Frame::Seq { index: 0 }));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
server:
  threads: 2
routes:
  - name: a
    match: { path: { prefix: / } }
  - name: b
    upstream: app
";

    #[test]
    fn keys_and_items_have_their_lines() {
        let index = LineIndex::new(DOC);
        assert_eq!(index.line_of("server.threads"), Some(2));
        assert_eq!(index.line_of("routes[0]"), Some(4));
        assert_eq!(index.line_of("routes[0].match.path.prefix"), Some(5));
        assert_eq!(index.line_of("routes[1].upstream"), Some(7));
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        let index = LineIndex::new(DOC);
        assert_eq!(index.line_of("routes[1].split.weight"), Some(6));
        assert_eq!(index.line_of("nowhere"), None);
    }
}

//! Reading SecLang, ModSecurity's rule language, into directives: the words of each
//! logical line (lines joined at a trailing `\`), with where it came from, and
//! `Include` followed (relative paths, `*` globs). What the directives mean is
//! [`super::ruleset`]'s business; this module only knows the lexical rules.

use std::path::{Path, PathBuf};

/// One directive: its name, its arguments (quotes removed, `\"` unescaped) and where it is.
#[derive(Debug, Clone)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub file: PathBuf,
    pub line: usize,
}

impl Directive {
    /// "file:line" for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecLangError {
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads a rules file (following `Include`) into directives.
pub fn read_file(path: &Path) -> Result<Vec<Directive>, SecLangError> {
    let mut out = Vec::new();
    read_into(path, &mut out, 0)?;
    Ok(out)
}

/// Parses SecLang text that came from `origin` (used for messages and `Include` paths).
pub fn parse_text(text: &str, origin: &Path) -> Result<Vec<Directive>, SecLangError> {
    let mut out = Vec::new();
    parse_into(text, origin, &mut out, 0)?;
    Ok(out)
}

const MAX_INCLUDE_DEPTH: usize = 16;

fn read_into(path: &Path, out: &mut Vec<Directive>, depth: usize) -> Result<(), SecLangError> {
    let bytes = std::fs::read(path).map_err(|source| SecLangError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    parse_into(&text, path, out, depth)
}

fn parse_into(
    text: &str,
    origin: &Path,
    out: &mut Vec<Directive>,
    depth: usize,
) -> Result<(), SecLangError> {
    for (line, logical) in logical_lines(text) {
        let syntax = |message: String| SecLangError::Syntax {
            file: origin.to_path_buf(),
            line,
            message,
        };
        let words = split_words(&logical).map_err(syntax)?;
        let Some((name, args)) = words.split_first() else {
            continue;
        };
        if name.eq_ignore_ascii_case("Include") {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(syntax("Include nested too deeply".into()));
            }
            let [pattern] = args else {
                return Err(syntax("Include takes one path".into()));
            };
            let base = origin.parent().unwrap_or(Path::new("."));
            for file in expand_include(base, pattern).map_err(syntax)? {
                read_into(&file, out, depth + 1)?;
            }
            continue;
        }
        out.push(Directive {
            name: name.clone(),
            args: args.to_vec(),
            file: origin.to_path_buf(),
            line,
        });
    }
    Ok(())
}

/// Joins lines ending in `\` and drops comments and blank lines; yields each logical
/// line with the number of its first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if current.is_empty() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            start = index + 1;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                out.push((start, std::mem::take(&mut current)));
            }
        }
    }
    if !current.trim().is_empty() {
        out.push((start, current));
    }
    out
}

/// Splits a directive line into words: whitespace separates, `"..."` groups (with `\"`
/// for a quote inside; other backslashes are kept for the regexes).
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'"') => {
                        word.push('"');
                        chars.next();
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => word.push(c),
                }
            }
            if !closed {
                return Err("a quoted argument is not closed (missing \")".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// The files an `Include` names: a path, or a glob with `*` in its last component, in
/// name order (as Apache and ModSecurity read them).
fn expand_include(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return Ok(vec![full]);
    }
    let dir = full.parent().unwrap_or(Path::new("."));
    let (prefix, suffix) = name.split_once('*').unwrap_or((&name, ""));
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("Include {pattern}: cannot list: {e}"))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            file.len() >= prefix.len() + suffix.len()
                && file.starts_with(prefix)
                && file.ends_with(suffix)
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_continuations_and_keeps_regex_backslashes() {
        let text = "# comment\nSecRule ARGS \"@rx ^\\d+\\\"$\" \\\n    \"id:1,\\\n    phase:2\"\n\nSecMarker END\n";
        let directives = parse_text(text, Path::new("x.conf")).expect("parses");
        assert_eq!(directives.len(), 2);
        assert_eq!(directives[0].name, "SecRule");
        assert_eq!(directives[0].line, 2);
        assert_eq!(directives[0].args[1], "@rx ^\\d+\"$");
        assert_eq!(directives[0].args[2], "id:1,    phase:2");
        assert_eq!(directives[1].args, vec!["END".to_string()]);
        assert_eq!(directives[1].line, 6);
    }

    #[test]
    fn unclosed_quote_names_the_line() {
        let err = parse_text("SecAction \"id:1", Path::new("r.conf")).expect_err("fails");
        assert!(err.to_string().contains("r.conf:1"), "{err}");
    }
}

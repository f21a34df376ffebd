//! The config reference as data: every key with its default and description, read from
//! the comments of `examples/ndprelay.ron`, the one place they are written.
//!
//! The manual page `ndprelay.ron(5)` is rendered from this, and a test checks it
//! against the keys the parser accepts, so a key without a comment in the example
//! fails the build's tests instead of going undocumented.

/// The annotated example: every key, its default and why.
pub const ANNOTATED_EXAMPLE: &str = include_str!("../../examples/ndprelay.ron");

/// A documented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDoc {
    /// Dotted path, e.g. `timers.retrans_timer`.
    pub path: String,
    /// The value the example gives it (the default, or for a required key an example),
    /// as written; `(...)` for a section.
    pub value: String,
    /// The comment above the key, without `//`, as lines (an empty line separates
    /// paragraphs). A key on the line right after another's without a comment of its
    /// own (`ns_rate` then `ns_burst`) shares that one's.
    pub doc: Vec<String>,
    /// This key shares the previous key's comment (see [`Self::doc`]).
    pub shared: bool,
}

/// A group of keys under one `// ---- title ----` heading of the example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The heading's text, e.g. `relay policy`.
    pub title: String,
    /// Its keys, in file order (a section key such as `timers` before its own keys).
    pub keys: Vec<KeyDoc>,
}

/// The config reference: the file's opening comment and the documented sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The comment lines before the opening `(`.
    pub preamble: Vec<String>,
    /// The sections in file order.
    pub sections: Vec<Section>,
}

impl Reference {
    /// Every key in file order.
    pub fn keys(&self) -> impl Iterator<Item = &KeyDoc> {
        self.sections.iter().flat_map(|s| s.keys.iter())
    }
}

/// Reads the shipped example.
pub fn reference() -> Reference {
    parse_reference(ANNOTATED_EXAMPLE)
}

/// Reads an annotated config in the example's layout: `// ---- title ----` headings,
/// each key on its own line after its comment, nested sections as `name: (` ... `),`.
/// Lines it does not understand are skipped (the parser proper checks the syntax).
pub fn parse_reference(text: &str) -> Reference {
    let mut preamble = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut comment: Vec<String> = Vec::new();
    let mut nesting: Vec<String> = Vec::new();
    let mut opened = false;
    // The previous line was a key line: a key right after it shares its comment.
    let mut after_key = false;
    for line in text.lines() {
        let was_after_key = std::mem::take(&mut after_key);
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("//") {
            let rest = rest.strip_prefix(' ').unwrap_or(rest).trim_end();
            if let Some(title) = rest
                .strip_prefix("----")
                .and_then(|t| t.strip_suffix("----"))
            {
                sections.push(Section {
                    title: title.trim().to_owned(),
                    keys: Vec::new(),
                });
                comment.clear();
            } else if opened {
                comment.push(rest.to_owned());
            } else {
                preamble.push(rest.to_owned());
            }
            continue;
        }
        if trimmed.is_empty() {
            comment.clear();
            continue;
        }
        if !opened {
            opened = trimmed.starts_with('(');
            comment.clear();
            continue;
        }
        if trimmed.starts_with(')') {
            nesting.pop();
            comment.clear();
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            comment.clear();
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            comment.clear();
            continue;
        }
        let value = value.trim().trim_end_matches(',').trim();
        let path = nesting
            .iter()
            .map(String::as_str)
            .chain([key])
            .collect::<Vec<_>>()
            .join(".");
        let mut doc = std::mem::take(&mut comment);
        let section_key = value == "(";
        let mut shared = false;
        if doc.is_empty() && was_after_key {
            if let Some(previous) = sections.last().and_then(|s| s.keys.last()) {
                doc.clone_from(&previous.doc);
                shared = true;
            }
        }
        if sections.is_empty() {
            sections.push(Section {
                title: String::new(),
                keys: Vec::new(),
            });
        }
        if let Some(section) = sections.last_mut() {
            section.keys.push(KeyDoc {
                path,
                value: if section_key {
                    "(...)".to_owned()
                } else {
                    value.to_owned()
                },
                doc,
                shared,
            });
        }
        if section_key {
            nesting.push(key.to_owned());
        } else {
            after_key = true;
        }
    }
    Reference { preamble, sections }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn reads_headings_comments_and_nested_keys() {
        let r = parse_reference(
            "// Intro.\n(\n    // ---- a ----\n\n    // One.\n    //\n    // Two.\n    x: 1,\n    y: \"z\",\n    // ---- b (c) ----\n    // T.\n    t: (\n        // D.\n        d: \"1s\",\n    ),\n    // After.\n    w: None,\n)\n",
        );
        assert_eq!(r.preamble, ["Intro."]);
        let titles: Vec<_> = r.sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["a", "b (c)"]);
        let keys: Vec<_> = r
            .keys()
            .map(|k| (k.path.as_str(), k.value.as_str(), k.doc.join("|"), k.shared))
            .collect();
        assert_eq!(
            keys,
            [
                ("x", "1", "One.||Two.".to_owned(), false),
                ("y", "\"z\"", "One.||Two.".to_owned(), true),
                ("t", "(...)", "T.".to_owned(), false),
                ("t.d", "\"1s\"", "D.".to_owned(), false),
                ("w", "None", "After.".to_owned(), false),
            ]
        );
    }
}

//! Where each key and value sits in the RON text, so semantic errors point at a line:column.
//!
//! `ron` reports positions only for its own errors; once the file has parsed, values have
//! no spans. This scanner walks the same text a second time, knowing just enough RON
//! (comments, strings, raw strings, `(..)`, `[..]`, `{..}`, `Some(..)`, named structs) to
//! record a span per path such as `prefixes[1]` or `timers.retrans_timer`. It is
//! best-effort: on anything it does not understand it stops, and callers fall back to a
//! position-less message. It never panics on any input.

/// A 1-based line and column (columns count characters, as `ron` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub col: u32,
}

/// The first non-whitespace position at or after `pos` (`ron` reports some errors at the
/// whitespace before the offending token).
pub fn skip_whitespace(text: &str, pos: Pos) -> Pos {
    let mut cur = Pos { line: 1, col: 1 };
    let mut seen = false;
    for c in text.chars() {
        if cur >= pos {
            seen = true;
            if !c.is_whitespace() {
                return cur;
            }
        }
        if c == '\n' {
            cur.line = cur.line.saturating_add(1);
            cur.col = 1;
        } else {
            cur.col = cur.col.saturating_add(1);
        }
    }
    if seen { cur } else { pos }
}

/// One located value: its path, where its key starts (if it has one) and where it spans.
#[derive(Debug, Clone)]
struct Entry {
    path: String,
    key: Option<Pos>,
    start: Pos,
    end: Pos,
}

/// The located keys and values of one document.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    entries: Vec<Entry>,
}

impl SourceMap {
    /// Scans `text`; never fails (a partial map is still useful).
    pub fn scan(text: &str) -> Self {
        let mut s = Scanner {
            chars: text.chars().collect(),
            i: 0,
            pos: Pos { line: 1, col: 1 },
            out: Vec::new(),
            depth: 0,
        };
        s.document();
        Self { entries: s.out }
    }

    /// Start of the value at `path` (e.g. `prefixes[0]`).
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|e| e.path == path)
            .map(|e| e.start)
    }

    /// Start of the key of `path` (e.g. `timers.retrans_timer`), else of its value.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|e| e.path == path)
            .map(|e| e.key.unwrap_or(e.start))
    }

    /// The innermost path whose key or value covers `pos` (to name the key of a `ron` error).
    pub fn path_at(&self, pos: Pos) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| e.key.unwrap_or(e.start) <= pos && pos <= e.end)
            .max_by_key(|e| e.key.unwrap_or(e.start))
            .map(|e| e.path.as_str())
    }

    /// Every recorded path, in document order.
    #[cfg(test)]
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.path.as_str())
    }
}

struct Scanner {
    chars: Vec<char>,
    i: usize,
    pos: Pos,
    out: Vec<Entry>,
    depth: usize,
}

/// Deeper than any config; keeps a hostile file from exhausting the stack.
const MAX_DEPTH: usize = 64;

impl Scanner {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.pos.line = self.pos.line.saturating_add(1);
            self.pos.col = 1;
        } else {
            self.pos.col = self.pos.col.saturating_add(1);
        }
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Whitespace and comments (`//`, nested `/* */`).
    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                (Some('/'), Some('*')) => {
                    self.bump();
                    self.bump();
                    let mut level = 1usize;
                    while level > 0 {
                        match (self.peek(), self.peek_at(1)) {
                            (None, _) => return,
                            (Some('*'), Some('/')) => {
                                self.bump();
                                self.bump();
                                level -= 1;
                            }
                            (Some('/'), Some('*')) => {
                                self.bump();
                                self.bump();
                                level += 1;
                            }
                            _ => {
                                self.bump();
                            }
                        }
                    }
                }
                _ => return,
            }
        }
    }

    fn document(&mut self) {
        self.skip_trivia();
        // `#![enable(...)]` attributes come first.
        while self.peek() == Some('#') {
            while let Some(c) = self.bump() {
                if c == ']' {
                    break;
                }
            }
            self.skip_trivia();
        }
        self.value(String::new(), None);
    }

    fn record(&mut self, path: String, key: Option<Pos>, start: Pos) {
        if !path.is_empty() {
            let end = self.pos;
            self.out.push(Entry {
                path,
                key,
                start,
                end,
            });
        }
    }

    /// One value at `path`; returns false when the scanner must stop.
    fn value(&mut self, path: String, key: Option<Pos>) -> bool {
        self.skip_trivia();
        let start = self.pos;
        let Some(c) = self.peek() else {
            return false;
        };
        if self.depth >= MAX_DEPTH {
            return false;
        }
        self.depth += 1;
        let ok = match c {
            '(' => self.fields(&path, ')'),
            '[' => self.elements(&path),
            '{' => self.map(&path),
            '"' => self.string(),
            '\'' => self.char_lit(),
            'r' if matches!(self.peek_at(1), Some('"' | '#')) => {
                self.bump();
                self.raw_string()
            }
            'b' if self.peek_at(1) == Some('"') => {
                self.bump();
                self.string()
            }
            c if is_ident_start(c) => {
                let ident = self.ident();
                self.skip_trivia();
                if self.peek() == Some('(') {
                    if ident == "Some" {
                        // The inner value is what the user thinks of as the value.
                        self.bump();
                        let inner = self.value(path.clone(), key);
                        self.skip_trivia();
                        self.depth -= 1;
                        return inner && self.eat(')');
                    }
                    self.fields(&path, ')')
                } else {
                    true
                }
            }
            _ => {
                // Numbers and anything else scalar: up to the next delimiter.
                let mut any = false;
                while let Some(c) = self.peek() {
                    if matches!(c, ',' | ')' | ']' | '}' | ':') || c.is_whitespace() {
                        break;
                    }
                    self.bump();
                    any = true;
                }
                any
            }
        };
        self.depth -= 1;
        if ok {
            self.record(path, key, start);
        }
        ok
    }

    /// `( key: value, ... )` or `( value, ... )`, after an optional struct name.
    fn fields(&mut self, path: &str, close: char) -> bool {
        self.bump(); // the opening parenthesis
        let mut index = 0usize;
        loop {
            self.skip_trivia();
            if self.eat(close) {
                return true;
            }
            let before = self.i;
            // A field is `ident :`; anything else is a tuple element.
            let save = (self.i, self.pos);
            let key_pos = self.pos;
            let mut field = None;
            if self.peek().is_some_and(is_ident_start) {
                let ident = self.ident();
                self.skip_trivia();
                if self.peek() == Some(':') {
                    self.bump();
                    field = Some(ident);
                } else {
                    (self.i, self.pos) = save;
                }
            }
            let ok = match field {
                Some(name) => {
                    let child = if path.is_empty() {
                        name
                    } else {
                        format!("{path}.{name}")
                    };
                    self.value(child, Some(key_pos))
                }
                None => {
                    let child = format!("{path}[{index}]");
                    index += 1;
                    self.value(child, None)
                }
            };
            if !ok {
                return false;
            }
            self.skip_trivia();
            if !self.eat(',') {
                self.skip_trivia();
                return self.eat(close);
            }
            if self.i == before {
                return false;
            }
        }
    }

    fn elements(&mut self, path: &str) -> bool {
        self.bump(); // [
        let mut index = 0usize;
        loop {
            self.skip_trivia();
            if self.eat(']') {
                return true;
            }
            if !self.value(format!("{path}[{index}]"), None) {
                return false;
            }
            index += 1;
            self.skip_trivia();
            if !self.eat(',') {
                self.skip_trivia();
                return self.eat(']');
            }
        }
    }

    fn map(&mut self, path: &str) -> bool {
        self.bump(); // {
        let mut index = 0usize;
        loop {
            self.skip_trivia();
            if self.eat('}') {
                return true;
            }
            let key_pos = self.pos;
            // Map keys are not config paths; record them under a throwaway name.
            if !self.value(String::new(), None) {
                return false;
            }
            self.skip_trivia();
            if !self.eat(':') {
                return false;
            }
            if !self.value(format!("{path}{{{index}}}"), Some(key_pos)) {
                return false;
            }
            index += 1;
            self.skip_trivia();
            if !self.eat(',') {
                self.skip_trivia();
                return self.eat('}');
            }
        }
    }

    fn string(&mut self) -> bool {
        self.bump(); // "
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    self.bump();
                }
                '"' => return true,
                _ => {}
            }
        }
        false
    }

    fn char_lit(&mut self) -> bool {
        self.bump(); // '
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    self.bump();
                }
                '\'' => return true,
                _ => {}
            }
        }
        false
    }

    /// After the `r`: `#`* `"` ... `"` `#`*.
    fn raw_string(&mut self) -> bool {
        let mut hashes = 0usize;
        while self.eat('#') {
            hashes += 1;
        }
        if !self.eat('"') {
            return false;
        }
        while let Some(c) = self.bump() {
            if c == '"' {
                let mut n = 0;
                while n < hashes && self.peek() == Some('#') {
                    self.bump();
                    n += 1;
                }
                if n == hashes {
                    return true;
                }
            }
        }
        false
    }

    fn ident(&mut self) -> String {
        let mut s = String::new();
        // Raw identifiers `r#name`.
        if self.peek() == Some('r') && self.peek_at(1) == Some('#') {
            self.bump();
            self.bump();
        }
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        s
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

#[cfg(test)]
mod test {
    use super::*;

    const DOC: &str = r##"#![enable(implicit_some)]
// a comment with "quotes" and (parens
(
    uplink: "eth0",   /* nested /* block */ comment */
    downstream: ["br0", r#"we"ird"#],
    fast_path: Some("2s"),
    timers: (
        retrans_timer: "1s",
    ),
    x: Named(a: 1, b: [1, 2]),
    m: { "k": 1 },
)
"##;

    #[test]
    fn locates_keys_and_values_at_every_level() {
        let map = SourceMap::scan(DOC);
        assert_eq!(map.key("uplink"), Some(Pos { line: 4, col: 5 }));
        assert_eq!(map.value("uplink"), Some(Pos { line: 4, col: 13 }));
        assert_eq!(map.value("downstream[0]"), Some(Pos { line: 5, col: 18 }));
        assert_eq!(map.value("downstream[1]"), Some(Pos { line: 5, col: 25 }));
        assert_eq!(map.value("fast_path"), Some(Pos { line: 6, col: 21 }));
        assert_eq!(
            map.key("timers.retrans_timer"),
            Some(Pos { line: 8, col: 9 })
        );
        assert_eq!(map.value("x.b[1]"), Some(Pos { line: 10, col: 27 }));
        assert_eq!(map.value("m{0}"), Some(Pos { line: 11, col: 15 }));
    }

    #[test]
    fn path_at_names_the_innermost_value() {
        let map = SourceMap::scan(DOC);
        assert_eq!(
            map.path_at(Pos { line: 8, col: 26 }),
            Some("timers.retrans_timer")
        );
        assert_eq!(map.path_at(Pos { line: 5, col: 20 }), Some("downstream[0]"));
        assert_eq!(map.path_at(Pos { line: 7, col: 6 }), Some("timers"));
    }

    #[test]
    fn stops_quietly_on_garbage_and_never_panics() {
        for text in [
            "",
            "(",
            "(a:",
            "(a: \"",
            "(a: [1, 2",
            "/* open",
            "(a: r##\"x\"#)",
            "#",
            ")))",
            "(a: 1 b: 2)",
            "((((((((((((",
            "(a: 'x",
        ] {
            let _ = SourceMap::scan(text);
        }
        let deep = "(".repeat(10_000);
        assert!(SourceMap::scan(&deep).paths().count() == 0);
        let map = SourceMap::scan("(a: 1, b: ???, c: 3)");
        assert_eq!(map.value("a"), Some(Pos { line: 1, col: 5 }));
    }
}

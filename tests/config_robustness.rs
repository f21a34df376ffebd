//! The config reader on damaged input: it never panics, and every position it reports
//! lies inside the text it was given.

use ndprelay::config::{Config, ConfigError};
use proptest::prelude::*;

const ANNOTATED: &str = include_str!("../examples/ndprelay.ron");
const MINIMAL: &str = include_str!("../examples/minimal.ron");

/// Every reported line:column names a character of `text` (or the end of it).
fn positions_are_inside(text: &str, err: &ConfigError) -> Result<(), TestCaseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    for e in err.errors() {
        if let Some(pos) = e.location().and_then(|l| l.pos) {
            let line = usize::try_from(pos.line).unwrap_or(usize::MAX);
            prop_assert!(line >= 1 && line <= lines.len(), "{e}");
            let width = lines[line - 1].chars().count();
            let col = usize::try_from(pos.col).unwrap_or(usize::MAX);
            prop_assert!(col >= 1 && col <= width + 1, "{e} (line has {width} chars)");
        }
        prop_assert!(e.to_string().contains("hint: "), "{e}");
    }
    Ok(())
}

fn check(text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = Config::from_str_with_path(text, "p.ron") {
        positions_are_inside(text, &e)?;
    }
    Ok(())
}

/// Replace `len` characters at `at` (char indices, clamped) with `with`.
fn splice(text: &str, at: usize, len: usize, with: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + len).min(chars.len());
    chars[..at]
        .iter()
        .chain(with.chars().collect::<Vec<_>>().iter())
        .chain(chars[end..].iter())
        .collect()
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text)?;
    }

    #[test]
    fn damaged_examples_report_positions_inside_the_file(
        big in any::<bool>(),
        at in 0usize..6000,
        len in 0usize..4,
        with in prop::sample::select(vec![
            "", ",", "(", ")", "[", "]", "\"", ":", "x", "0", "/", "/*", "-", "\n", "é", "Some(",
        ]),
    ) {
        let base = if big { ANNOTATED } else { MINIMAL };
        check(&splice(base, at, len, with))?;
    }
}

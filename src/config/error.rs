//! Config errors and warnings: each names `file:line:column`, what is wrong, the path of
//! the offending value (`prefixes[1]`) and a hint on how to fix it.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::Ipv6Net;

use super::locate::Pos;

/// Where a problem is: the file as the user named it, and a position when one is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name as given. Shared: every error of one file names it.
    pub file: Arc<str>,
    /// Line and column, 1-based; `None` when the problem has no single place (a default).
    pub pos: Option<Pos>,
}

impl Location {
    /// Line, if known.
    pub fn line(&self) -> Option<u32> {
        self.pos.map(|p| p.line)
    }

    /// Column, if known.
    pub fn col(&self) -> Option<u32> {
        self.pos.map(|p| p.col)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}", self.file, p.line, p.col),
            None => f.write_str(&self.file),
        }
    }
}

/// Everything that makes a config file unusable.
///
/// Display is `file:line:col: message (path)` and an indented `hint:` line, one error per
/// paragraph; [`ConfigError::Multiple`] holds all errors found in one file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error(
        "{}: cannot read config: {source}\n  hint: {}",
        path.display(),
        read_hint(source)
    )]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// RON syntax error, or a value of the wrong type, reported by the parser.
    #[error("{at}: {message}{}\n  hint: {hint}", in_path(path))]
    Syntax {
        /// Where.
        at: Location,
        /// The parser's message.
        message: String,
        /// The key whose value failed, when known.
        path: Option<String>,
        /// How to fix it.
        hint: String,
    },
    /// A key the schema does not have (`deny_unknown_fields`).
    #[error("{at}: unknown key `{key}`{}\n  hint: {hint}", in_section(section))]
    UnknownKey {
        /// Where.
        at: Location,
        /// The unknown key.
        key: String,
        /// `""` for the top level, else `timers`, `limits`.
        section: String,
        /// Nearest match and the valid keys.
        hint: String,
    },
    /// A required key is absent.
    #[error("{at}: missing key `{key}`{}\n  hint: {hint}", in_section(section))]
    MissingKey {
        /// Where (the enclosing parenthesis).
        at: Location,
        /// The key.
        key: String,
        /// Section, `""` for top level.
        section: String,
        /// What to add.
        hint: String,
    },
    /// A key given twice.
    #[error(
        "{at}: key `{key}` given twice{}\n  hint: keep one of them",
        in_section(section)
    )]
    DuplicateKey {
        /// Where (the second occurrence).
        at: Location,
        /// The key.
        key: String,
        /// Section, `""` for top level.
        section: String,
    },
    /// An enum value (such as `forwarding: Kernal`) that does not exist.
    #[error("{at}: unknown value `{found}`{}\n  hint: {hint}", in_path(path))]
    UnknownVariant {
        /// Where.
        at: Location,
        /// What was written.
        found: String,
        /// The key, when known.
        path: Option<String>,
        /// The valid values and nearest match.
        hint: String,
    },
    /// A value parsed but is not acceptable (bad interface name, prefix, duration, range).
    #[error("{at}: {message} ({path})\n  hint: {hint}")]
    Invalid {
        /// Where (the value).
        at: Location,
        /// What is wrong.
        message: String,
        /// The path of the value, e.g. `prefixes[1]`.
        path: String,
        /// How to fix it.
        hint: String,
    },
    /// Two prefix rules share addresses.
    #[error(
        "{at}: prefix {prefix} overlaps {other} ({path} vs {other_path})\n  hint: every address must belong to one prefix rule; remove one, or split the broader prefix"
    )]
    PrefixOverlap {
        /// Where (the later prefix).
        at: Location,
        /// The later prefix.
        prefix: Ipv6Net,
        /// Its path.
        path: String,
        /// The earlier prefix it overlaps.
        other: Ipv6Net,
        /// The earlier prefix's path.
        other_path: String,
    },
    /// A config names an interface the driver could not find (from `engine_config`).
    #[error(
        "interface `{name}` ({role}) was not found\n  hint: check the name with `ip link`; ndprelay needs every configured interface to exist at start"
    )]
    UnresolvedInterface {
        /// The interface name.
        name: String,
        /// `uplink` or `downstream[i]`.
        role: String,
    },
    /// Several errors in one file, in file order.
    #[error("{}", join(.0))]
    Multiple(Vec<ConfigError>),
}

impl ConfigError {
    /// The individual errors: the list for [`ConfigError::Multiple`], else just `self`.
    pub fn errors(&self) -> Vec<&Self> {
        match self {
            Self::Multiple(list) => list.iter().collect(),
            other => vec![other],
        }
    }

    /// Where the error is, if it has a place in a file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Syntax { at, .. }
            | Self::UnknownKey { at, .. }
            | Self::MissingKey { at, .. }
            | Self::DuplicateKey { at, .. }
            | Self::UnknownVariant { at, .. }
            | Self::Invalid { at, .. }
            | Self::PrefixOverlap { at, .. } => Some(at),
            Self::Read { .. } | Self::UnresolvedInterface { .. } | Self::Multiple(_) => None,
        }
    }

    /// Every location in `self`, to shift positions of text embedded in another file.
    pub(crate) fn for_each_location(&mut self, f: &mut impl FnMut(&mut Location)) {
        match self {
            Self::Multiple(list) => list.iter_mut().for_each(|e| e.for_each_location(f)),
            Self::Syntax { at, .. }
            | Self::UnknownKey { at, .. }
            | Self::MissingKey { at, .. }
            | Self::DuplicateKey { at, .. }
            | Self::UnknownVariant { at, .. }
            | Self::Invalid { at, .. }
            | Self::PrefixOverlap { at, .. } => f(at),
            Self::Read { .. } | Self::UnresolvedInterface { .. } => {}
        }
    }

    /// Builds one error from a non-empty list, or `Multiple` for several.
    pub(crate) fn from_list(mut list: Vec<Self>) -> Self {
        if list.len() == 1 {
            // Length checked just above.
            list.pop().expect("one element")
        } else {
            Self::Multiple(list)
        }
    }
}

/// Something legal but probably not what the user meant; printed, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Where.
    pub at: Location,
    /// What is odd.
    pub message: String,
    /// Path of the value.
    pub path: String,
    /// What to consider.
    pub hint: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: warning: {} ({})\n  hint: {}",
            self.at, self.message, self.path, self.hint
        )
    }
}

fn read_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound => {
            "no file there: start from the annotated example examples/ndprelay.ron (or examples/minimal.ron), then validate it with `ndprelay check -c FILE`"
        }
        io::ErrorKind::PermissionDenied => {
            "the file is not readable by this user; check its permissions or run as its owner"
        }
        io::ErrorKind::InvalidData => "the config must be UTF-8 text",
        _ => "check that the path names a readable regular file",
    }
}

fn in_path(path: &Option<String>) -> String {
    path.as_ref().map(|p| format!(" ({p})")).unwrap_or_default()
}

fn in_section(section: &str) -> String {
    if section.is_empty() {
        String::new()
    } else {
        format!(" in `{section}`")
    }
}

fn join(list: &[ConfigError]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

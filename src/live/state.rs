//! The `state_file`: what a run saves for the next one (the engine's
//! [`SavedState`], ports by name) and reads back at start, so a restart does not cut
//! guests off (`engine/restore.rs` says what is restored and how it is re-verified).
//!
//! The file is JSON with a header that identifies it: `format` (`ndprelay-state`),
//! `version`, when it was saved (wall clock), and the uplink and prefixes it was saved
//! for. It is written atomically (a new temporary file in the same directory, fsync,
//! rename over the old one, fsync of the directory), so a crash leaves the old file or
//! the new one, never half of one. Reading never fails the start: a file that is too
//! large, truncated, corrupt, of another version or saved for another uplink or prefix
//! set is reported (the [`LoadError`] says which) and ignored.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::Ipv6Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::engine::{PortId, SavedBinding, SavedPort, SavedState};
use crate::time::Duration;
use crate::wire::Mac;

/// The header's `format`.
const FORMAT: &str = "ndprelay-state";
/// The header's `version`: bumped whenever a field changes meaning.
pub(super) const VERSION: u32 = 1;
/// Bytes read at most: the header, ports, and per binding far more than an entry takes.
const BASE_BYTES: u64 = 64 * 1024;
const BYTES_PER_BINDING: u64 = 256;

/// Why a state file was ignored.
#[derive(Debug, thiserror::Error)]
pub(super) enum LoadError {
    /// It could not be read.
    #[error("cannot read it: {0}")]
    Read(#[source] io::Error),
    /// Larger than any file this config writes.
    #[error("it is larger than {0} bytes, more than max_bindings can fill")]
    TooLarge(u64),
    /// Not JSON of the expected shape (truncated, corrupt, or another program's).
    #[error("it is not a readable ndprelay state file ({0})")]
    Corrupt(String),
    /// Another program's JSON, or another version of ours.
    #[error("it is {0}, not an ndprelay state file of version {VERSION}")]
    Foreign(String),
    /// Saved for another uplink or another prefix set.
    #[error("it was saved for uplink {uplink} with prefixes [{prefixes}], not this config's")]
    OtherRelay {
        /// Its uplink.
        uplink: String,
        /// Its prefixes.
        prefixes: String,
    },
}

/// Just the header, read first so that another version is named as such.
#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    format: String,
    version: u32,
    /// Wall-clock time of the save, milliseconds since the Unix epoch.
    saved_at_unix_ms: u64,
    uplink: String,
    /// Every configured prefix (relayed and static), sorted.
    prefixes: Vec<String>,
    ports: Vec<FilePort>,
    bindings: Vec<FileBinding>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePort {
    name: String,
    mac: String,
    proxying: bool,
    last_p_bit_ra_ago_ms: Option<u64>,
    disabled_for_ms: Option<u64>,
    quarantined: Vec<FileQuarantine>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileQuarantine {
    mac: String,
    for_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBinding {
    address: Ipv6Addr,
    port: String,
    mac: String,
}

/// A state file read back for this config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Loaded {
    pub(super) state: SavedState,
    /// How long ago it was saved; `None` if its time is in the future (the clock went
    /// back), so it cannot tell.
    pub(super) age: Option<Duration>,
    /// Entries naming a port this config lacks, or an unreadable MAC: skipped.
    pub(super) skipped: usize,
}

fn prefixes(config: &Config) -> Vec<String> {
    let mut v: Vec<String> = config
        .prefixes
        .iter()
        .map(|r| r.prefix.to_string())
        .collect();
    v.sort();
    v
}

fn ms(d: Duration) -> u64 {
    d.total_millis()
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Most bytes a state file for `config` may have.
fn max_bytes(config: &Config) -> u64 {
    let n = u64::try_from(config.tunables.max_bindings).unwrap_or(u64::MAX);
    BASE_BYTES.saturating_add(n.saturating_mul(BYTES_PER_BINDING))
}

/// The file's text for `state` (ports named by `config`'s port order), saved `now`.
pub(super) fn encode(config: &Config, state: &SavedState, now: SystemTime) -> String {
    let names: Vec<&str> = config.ports().map(|(n, _)| n).collect();
    let name = |p: PortId| names.get(p.index()).copied().unwrap_or("?").to_owned();
    let file = FileV1 {
        format: FORMAT.to_owned(),
        version: VERSION,
        saved_at_unix_ms: unix_ms(now),
        uplink: config.uplink.clone(),
        prefixes: prefixes(config),
        ports: state
            .ports
            .iter()
            .map(|p| FilePort {
                name: name(p.port),
                mac: p.mac.to_string(),
                proxying: p.proxying,
                last_p_bit_ra_ago_ms: p.last_ra_ago.map(ms),
                disabled_for_ms: p.disabled_for.map(ms),
                quarantined: p
                    .quarantined
                    .iter()
                    .map(|&(mac, d)| FileQuarantine {
                        mac: mac.to_string(),
                        for_ms: ms(d),
                    })
                    .collect(),
            })
            .collect(),
        bindings: state
            .bindings
            .iter()
            .map(|b| FileBinding {
                address: b.addr,
                port: name(b.port),
                mac: b.mac.to_string(),
            })
            .collect(),
    };
    // Plain data with string keys: serialising it cannot fail.
    serde_json::to_string_pretty(&file).unwrap_or_default()
}

/// Reads `text` as a state file for `config`, at wall-clock time `now`.
pub(super) fn decode(config: &Config, text: &str, now: SystemTime) -> Result<Loaded, LoadError> {
    let header: Header =
        serde_json::from_str(text).map_err(|e| LoadError::Corrupt(e.to_string()))?;
    match (header.format.as_deref(), header.version) {
        (Some(FORMAT), Some(v)) if v == u64::from(VERSION) => {}
        (Some(FORMAT), Some(v)) => {
            return Err(LoadError::Foreign(format!("a state file of version {v}")));
        }
        (Some(f), _) => return Err(LoadError::Foreign(format!("of format \"{f}\""))),
        (None, _) => return Err(LoadError::Foreign("JSON without a format header".into())),
    }
    let file: FileV1 = serde_json::from_str(text).map_err(|e| LoadError::Corrupt(e.to_string()))?;
    if file.uplink != config.uplink || file.prefixes != prefixes(config) {
        return Err(LoadError::OtherRelay {
            uplink: file.uplink,
            prefixes: file.prefixes.join(", "),
        });
    }
    let ids: Vec<&str> = config.ports().map(|(n, _)| n).collect();
    let id = |name: &str| {
        ids.iter()
            .position(|n| *n == name)
            .and_then(|i| u16::try_from(i).ok())
            .map(PortId)
    };
    let mut skipped = 0;
    let mut ports = Vec::new();
    for p in file.ports.iter().take(ids.len()) {
        let (Some(port), Ok(mac)) = (id(&p.name), p.mac.parse::<Mac>()) else {
            skipped += 1;
            continue;
        };
        let mut quarantined = Vec::new();
        for q in &p.quarantined {
            match q.mac.parse::<Mac>() {
                Ok(mac) => quarantined.push((mac, Duration::from_millis(q.for_ms))),
                Err(_) => skipped += 1,
            }
        }
        ports.push(SavedPort {
            port,
            mac,
            proxying: p.proxying,
            last_ra_ago: p.last_p_bit_ra_ago_ms.map(Duration::from_millis),
            disabled_for: p.disabled_for_ms.map(Duration::from_millis),
            quarantined,
        });
    }
    skipped += file.ports.len().saturating_sub(ids.len());
    let mut bindings = Vec::new();
    for b in file.bindings.iter().take(config.tunables.max_bindings) {
        match (id(&b.port), b.mac.parse::<Mac>()) {
            (Some(port), Ok(mac)) => bindings.push(SavedBinding {
                addr: b.address,
                port,
                mac,
            }),
            _ => skipped += 1,
        }
    }
    skipped += file
        .bindings
        .len()
        .saturating_sub(config.tunables.max_bindings);
    let saved_at = SystemTime::UNIX_EPOCH + StdDuration::from_millis(file.saved_at_unix_ms);
    let age = now.duration_since(saved_at).ok().map(Duration::from);
    Ok(Loaded {
        state: SavedState { ports, bindings },
        age,
        skipped,
    })
}

/// Reads the state file at `path` for `config`: `Ok(None)` when there is none yet.
pub(super) fn load(config: &Config, path: &Path) -> Result<Option<Loaded>, LoadError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Read(e)),
    };
    let limit = max_bytes(config);
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(LoadError::Read)?;
    if bytes.len() as u64 > limit {
        return Err(LoadError::TooLarge(limit));
    }
    let text = String::from_utf8(bytes).map_err(|e| LoadError::Corrupt(e.to_string()))?;
    decode(config, &text, SystemTime::now()).map(Some)
}

/// The temporary file a save writes before renaming it over `path`.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `text` to `path` atomically: a new temporary file beside it (mode 0600,
/// created exclusively, so no link is followed), fsync, rename, fsync of the directory.
pub(super) fn save(path: &Path, text: &str) -> io::Result<()> {
    let tmp = temp_path(path);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod test {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::from_str_with_path(
            &format!(
                "(uplink: \"eth0\", downstream: [\"br0\", \"br1\"], \
                 prefixes: [\"2001:db8:1::/64\"], {extra})"
            ),
            "t.ron",
        )
        .unwrap()
    }

    fn sample() -> SavedState {
        SavedState {
            ports: vec![
                SavedPort {
                    port: PortId(0),
                    mac: Mac([2, 0, 0, 0, 0, 1]),
                    proxying: true,
                    last_ra_ago: None,
                    disabled_for: None,
                    quarantined: vec![(Mac([2, 0, 0, 0, 0, 9]), Duration::from_secs(40))],
                },
                SavedPort {
                    port: PortId(2),
                    mac: Mac([2, 0, 0, 0, 0, 3]),
                    proxying: true,
                    last_ra_ago: Some(Duration::from_millis(1500)),
                    disabled_for: None,
                    quarantined: Vec::new(),
                },
            ],
            bindings: vec![SavedBinding {
                addr: "2001:db8:1::10".parse().unwrap(),
                port: PortId(2),
                mac: Mac([0x52, 0x54, 0, 0, 0, 0x10]),
            }],
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + StdDuration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn a_saved_state_reads_back_with_its_age_and_ports_by_name() {
        let c = config("");
        let text = encode(&c, &sample(), at(0));
        assert!(text.contains("\"format\": \"ndprelay-state\""), "{text}");
        assert!(text.contains("\"port\": \"br1\""), "{text}");
        let back = decode(&c, &text, at(7)).unwrap();
        assert_eq!(back.state, sample());
        assert_eq!(back.age, Some(Duration::from_secs(7)));
        assert_eq!(back.skipped, 0);
        // Saved "in the future" (the clock went back): the age is unknown.
        assert_eq!(
            decode(&c, &text, at(0) - StdDuration::from_secs(5))
                .unwrap()
                .age,
            None
        );
    }

    #[test]
    fn a_port_the_config_no_longer_has_is_skipped_not_renamed() {
        let text = encode(&config(""), &sample(), at(0));
        let fewer = Config::from_str_with_path(
            "(uplink: \"eth0\", downstream: [\"br0\"], prefixes: [\"2001:db8:1::/64\"])",
            "t.ron",
        )
        .unwrap();
        let back = decode(&fewer, &text, at(1)).unwrap();
        assert_eq!(back.skipped, 2, "br1 and its binding");
        assert!(back.state.bindings.is_empty());
        assert_eq!(back.state.ports.len(), 1);
    }

    #[test]
    fn corrupt_truncated_and_foreign_files_are_refused_with_a_reason() {
        let c = config("");
        let good = encode(&c, &sample(), at(0));
        let truncated = &good[..good.len() / 2];
        let cases: Vec<(String, &str)> = vec![
            (truncated.to_owned(), "not a readable ndprelay state file"),
            ("\u{0}\u{1}garbage".to_owned(), "not a readable"),
            ("{\"hello\": 1}".to_owned(), "JSON without a format header"),
            (
                good.replace("\"version\": 1", "\"version\": 2"),
                "a state file of version 2",
            ),
            (
                good.replace("ndprelay-state", "other-tool"),
                "of format \"other-tool\"",
            ),
            (
                good.replace("\"uplink\": \"eth0\"", "\"uplink\": \"wan\""),
                "saved for uplink wan",
            ),
            (
                good.replace("2001:db8:1::/64\"\n", "2001:db8:2::/64\"\n"),
                "with prefixes [2001:db8:2::/64]",
            ),
            (
                good.replace("\"mac\": \"52:54", "\"colour\": \"52:54"),
                "not a readable",
            ),
        ];
        for (text, reason) in cases {
            let e = decode(&c, &text, at(1)).expect_err(&text).to_string();
            assert!(e.contains(reason), "{e:?} lacks {reason:?}");
        }
    }

    #[test]
    fn save_replaces_the_file_atomically_and_load_bounds_its_size() {
        let dir = std::env::temp_dir().join(format!("ndpr-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state");
        let c = config("limits: (max_bindings: 10)");
        assert!(
            load(&c, &path).unwrap().is_none(),
            "no file yet is no error"
        );
        save(&path, "old").unwrap();
        let text = encode(&c, &sample(), SystemTime::now());
        save(&path, &text).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        assert!(!temp_path(&path).exists(), "the temporary file was renamed");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = load(&c, &path).unwrap().unwrap();
        assert_eq!(loaded.state, sample());
        // Larger than ten bindings can make: refused without parsing it.
        let limit = max_bytes(&c);
        save(&path, &" ".repeat(limit as usize + 1)).unwrap();
        assert!(matches!(load(&c, &path), Err(LoadError::TooLarge(l)) if l == limit));
        fs::remove_dir_all(&dir).unwrap();
    }
}

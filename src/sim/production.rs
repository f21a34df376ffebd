//! `--config FILE --rename IF=SEG`: one relay of a scenario runs the daemon's own config
//! file instead of the scenario's inline config, its interface names mapped onto the
//! scenario's segments, so an operator can try a change in the lab before deploying it.
//!
//! The file is read by the daemon's parser, so a config the lab accepts is one `ndprelay
//! run -c FILE` accepts, and its errors point into that file. Renaming happens after
//! parsing, on the parsed interface names: the file is never rewritten as text.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::SimError;
use super::scenario::{ConfigText, Scenario};
use crate::config::Config;

/// What `--config`, `--rename` and `--relay` ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductionConfig {
    /// The daemon's config file.
    pub path: PathBuf,
    /// Interface name in the file → segment name in the scenario.
    pub renames: Vec<(String, String)>,
    /// The relay to replace; `None` means the scenario's only relay.
    pub relay: Option<String>,
}

/// Settings the lab reads but cannot act on: it has no kernel, sockets or files.
const NOT_MODELLED: &str = "the lab has no kernel: data is forwarded in userspace (or routes \
     are only decided, with kernel_routes), and control_socket, fix_sysctls, dump_dir, log \
     and the in-kernel programs do not apply";

impl ProductionConfig {
    /// Replaces the chosen relay's config in `scenario` with the file's, renamed. Returns
    /// the note the timeline header prints so the run says what it ran.
    pub fn substitute(&self, scenario: &mut Scenario) -> Result<String, SimError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| {
            let read = crate::config::ConfigError::Read {
                path: self.path.clone(),
                source,
            };
            SimError::ProductionConfig(read.to_string())
        })?;
        let mut config = Config::from_str_with_path(&text, &self.path)
            .map_err(|e| SimError::ProductionConfig(e.to_string()))?;
        self.rename(&mut config)?;
        let segments: Vec<&str> = scenario
            .segments
            .iter()
            .chain(scenario.routed_segments.iter().map(|r| &r.name))
            .map(String::as_str)
            .collect();
        for (name, _) in config.ports() {
            if !segments.contains(&name) {
                return Err(self.problem(
                    format!("interface {name:?} is not a segment of the scenario"),
                    format!(
                        "map it onto one with --rename {name}=SEG (segments: {})",
                        segments.join(", ")
                    ),
                ));
            }
        }
        let index = self.relay_index(scenario)?;
        let relay = &mut scenario.relays[index];
        let renamed = self
            .renames
            .iter()
            .map(|(from, to)| format!("{from}→{to}"))
            .collect::<Vec<_>>();
        let note = format!(
            "relay {:?} runs {}{} instead of the scenario's config; {NOT_MODELLED}",
            relay.name,
            self.path.display(),
            if renamed.is_empty() {
                String::new()
            } else {
                format!(" ({})", renamed.join(", "))
            },
        );
        relay.config = ConfigText {
            text,
            parsed: Some(Box::new(config)),
        };
        Ok(note)
    }

    fn rename(&self, config: &mut Config) -> Result<(), SimError> {
        let names: Vec<String> = config.ports().map(|(n, _)| n.to_owned()).collect();
        let mut seen = BTreeSet::new();
        for (from, _) in &self.renames {
            if !names.contains(from) {
                return Err(self.problem(
                    format!("--rename {from}=...: the file has no interface {from:?}"),
                    format!("its interfaces: {}", names.join(", ")),
                ));
            }
            if !seen.insert(from) {
                return Err(self.problem(
                    format!("--rename {from}=... is given twice"),
                    "rename each interface once".into(),
                ));
            }
        }
        let map = |name: &mut String| {
            if let Some((_, to)) = self.renames.iter().find(|(from, _)| from == name) {
                name.clone_from(to);
            }
        };
        map(&mut config.uplink);
        config.downstream.iter_mut().for_each(map);
        let mut ports = BTreeSet::new();
        for (name, _) in config.ports() {
            if !ports.insert(name) {
                return Err(self.problem(
                    format!("two interfaces become segment {name:?} after --rename"),
                    "a relay has one port per segment: map each interface to its own segment"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    fn relay_index(&self, scenario: &Scenario) -> Result<usize, SimError> {
        let names = || {
            scenario
                .relays
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (&self.relay, scenario.relays.len()) {
            (None, 1) => Ok(0),
            (None, 0) => Err(self.problem(
                "the scenario has no relay to run the config".into(),
                "add a relay to the scenario (see scenarios/home.ron)".into(),
            )),
            (None, _) => Err(self.problem(
                "the scenario has several relays".into(),
                format!("choose one with --relay NAME (relays: {})", names()),
            )),
            (Some(want), _) => scenario
                .relays
                .iter()
                .position(|r| r.name == *want)
                .ok_or_else(|| {
                    self.problem(
                        format!("--relay {want}: the scenario has no such relay"),
                        format!("relays: {}", names()),
                    )
                }),
        }
    }

    fn problem(&self, msg: String, hint: String) -> SimError {
        SimError::ProductionConfig(format!(
            "--config {}: {msg}\n  hint: {hint}",
            self.path.display()
        ))
    }
}

//! Named instances (`-n NAME`): several relays on one host, one per
//! `ndprelay@NAME.service`, each with its own config and control socket.
//!
//! The paths here are the template unit's (`packaging/ndprelay@.service`); a client
//! subcommand takes `-n NAME` and asks [`control_socket`] where that instance listens.

use std::path::PathBuf;

/// Where the template unit's instances keep their control sockets.
pub const INSTANCE_SOCKET_DIR: &str = "/run/ndprelay";
/// Where the template unit's instances read their configs.
pub const INSTANCE_CONFIG_DIR: &str = "/etc/ndprelay";

/// An instance name as the template unit's `%i` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceName(String);

impl InstanceName {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for InstanceName {
    type Err = String;
    /// Accepts what makes one file name: letters, digits, `-`, `_`, `.` and `:`, not
    /// starting with `.`, at most 64 bytes (no `/`, so `-n ../x` cannot leave the
    /// directory).
    fn from_str(s: &str) -> Result<Self, String> {
        let valid = |b: u8| b.is_ascii_alphanumeric() || b"-_.:".contains(&b);
        if s.is_empty() {
            return Err("an empty instance name; give the NAME of ndprelay@NAME.service".into());
        }
        if s.len() > 64 || s.starts_with('.') || !s.bytes().all(valid) {
            return Err(format!(
                "`{s}` is not an instance name: use letters, digits, `-`, `_`, `.` or `:` \
                 (at most 64, not starting with `.`), as in ndprelay@NAME.service"
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Display for InstanceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The control socket of instance `name`: `/run/ndprelay/NAME.sock`, as
/// `ndprelay@NAME.service` passes it to `ndprelay run --control-socket`.
pub fn control_socket(name: &InstanceName) -> PathBuf {
    PathBuf::from(format!("{INSTANCE_SOCKET_DIR}/{name}.sock"))
}

/// The config file of instance `name`: `/etc/ndprelay/NAME.ron`.
pub fn config_file(name: &InstanceName) -> PathBuf {
    PathBuf::from(format!("{INSTANCE_CONFIG_DIR}/{name}.ron"))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn names_map_to_the_template_units_paths() {
        let n: InstanceName = "lab-1".parse().expect("valid");
        assert_eq!(
            control_socket(&n),
            PathBuf::from("/run/ndprelay/lab-1.sock")
        );
        assert_eq!(config_file(&n), PathBuf::from("/etc/ndprelay/lab-1.ron"));
        for bad in ["", "../x", "a/b", ".hidden", "a b", &"x".repeat(65)] {
            assert!(bad.parse::<InstanceName>().is_err(), "{bad:?} accepted");
        }
    }

    /// The template unit uses exactly these paths for `%i`.
    #[test]
    fn the_template_unit_uses_the_same_paths() {
        let unit = include_str!("../../packaging/ndprelay@.service");
        let exec = unit
            .lines()
            .find(|l| l.starts_with("ExecStart="))
            .expect("ExecStart");
        assert!(
            exec.contains(&format!("--control-socket {INSTANCE_SOCKET_DIR}/%i.sock")),
            "{exec}"
        );
        assert!(
            exec.contains(&format!("-c {INSTANCE_CONFIG_DIR}/%i.ron")),
            "{exec}"
        );
    }

    #[test]
    fn status_takes_a_name_instead_of_a_socket_or_config() {
        use clap::Parser as _;
        let parse = |args: &[&str]| {
            super::super::Cli::try_parse_from(
                std::iter::once("ndprelay").chain(args.iter().copied()),
            )
        };
        let cli = parse(&["status", "-n", "lab", "--json"]).expect("parses");
        let Some(super::super::Command::Status(status)) = cli.command else {
            panic!("not status")
        };
        assert_eq!(
            status.daemon.name.as_ref().map(InstanceName::as_str),
            Some("lab")
        );
        assert!(parse(&["status", "--name", "lab", "--control-socket", "/x"]).is_err());
        assert!(parse(&["status", "-n", "lab", "-c", "/etc/x.ron"]).is_err());
        assert!(parse(&["status", "-n", "../etc/x"]).is_err());
    }

    /// Every `ExecStart`/`ExecStartPre` line of both units is a command line this binary
    /// accepts (systemd-analyze checks only that the binary exists).
    #[test]
    fn the_units_command_lines_parse() {
        use clap::Parser as _;
        for unit in [
            include_str!("../../packaging/ndprelay.service"),
            include_str!("../../packaging/ndprelay@.service"),
        ] {
            let mut seen = 0;
            for line in unit.lines() {
                let Some(cmd) = line
                    .strip_prefix("ExecStart=")
                    .or_else(|| line.strip_prefix("ExecStartPre="))
                else {
                    continue;
                };
                let words: Vec<String> = cmd
                    .replace("%i", "lab")
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                assert_eq!(words[0], "/usr/sbin/ndprelay", "{line}");
                let cli = super::super::Cli::try_parse_from(&words)
                    .unwrap_or_else(|e| panic!("{line}: {e}"));
                assert!(cli.invocation().is_ok(), "{line}");
                seen += 1;
            }
            assert_eq!(seen, 2, "{unit}");
        }
    }
}

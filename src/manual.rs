//! Manual pages and shell completions, rendered from the clap definitions ([`crate::cli`])
//! and the config reference ([`crate::config::reference`]) so they cannot drift from the
//! binary they ship with. `ndprelay generate man DIR` and `ndprelay generate completion
//! SHELL` write them (scripts/package.sh puts them in the package).

use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use clap_mangen::Man;
use roff::{Roff, bold, italic, roman};

use crate::cli::Cli;
use crate::config::reference::{self, KeyDoc};

/// The shells a completion script is generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// bash (bash-completion).
    Bash,
    /// zsh (compinit).
    Zsh,
    /// fish.
    Fish,
}

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut cmd, "ndprelay", &mut out);
    out
}

const MANUAL: &str = "ndprelay manual";

fn source() -> String {
    format!("ndprelay {}", env!("CARGO_PKG_VERSION"))
}

/// Every manual page as (file name, roff text): `ndprelay.8`, one `ndprelay-COMMAND.8`
/// per (visible) subcommand, and `ndprelay.ron.5`.
pub fn pages() -> Vec<(String, String)> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![("ndprelay.8".to_owned(), main_page(&cmd))];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = Man::new(sub.clone())
            .section("8")
            .source(source())
            .manual(MANUAL);
        let mut page = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = man.render(&mut page);
        let mut tail = Roff::new();
        see_also(&mut tail, &["ndprelay(8)", "ndprelay.ron(5)"]);
        page.extend_from_slice(tail.to_roff().as_bytes());
        pages.push((
            man.get_filename(),
            String::from_utf8_lossy(&page).into_owned(),
        ));
    }
    pages.push(("ndprelay.ron.5".to_owned(), config_page()));
    pages
}

/// Writes [`pages`] into `dir` (created if missing); returns the files written.
pub fn write_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, text) in pages() {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

fn see_also(roff: &mut Roff, refs: &[&str]) {
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(refs.join(", "))]);
}

/// `ndprelay(8)`: clap's sections, then the files and instances the daemon uses.
fn main_page(cmd: &clap::Command) -> String {
    let man = Man::new(cmd.clone())
        .section("8")
        .source(source())
        .manual(MANUAL);
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    let _ = man.render_subcommands_section(&mut out);
    let mut r = Roff::new();
    // The examples as written (clap_mangen would fill them into running text).
    if let Some(after) = cmd.get_after_long_help() {
        let text = after.to_string();
        r.control("SH", ["EXAMPLES"]);
        r.control("nf", []);
        for line in text.lines().skip_while(|l| l.starts_with("Examples:")) {
            r.text([roman(line)]);
        }
        r.control("fi", []);
    }
    r.control("SH", ["INSTANCES"]);
    r.text([
        roman("Several relays run on one host as "),
        bold("ndprelay@NAME.service"),
        roman(": instance NAME reads "),
        italic("/etc/ndprelay/NAME.ron"),
        roman(", answers on the control socket "),
        italic("/run/ndprelay/NAME.sock"),
        roman(" and keeps its state in "),
        italic("/var/lib/ndprelay/NAME/state"),
        roman(". "),
        bold("ndprelay status -n NAME"),
        roman(" asks that instance."),
    ]);
    r.control("SH", ["FILES"]);
    for (file, what) in [
        (
            "/etc/ndprelay/ndprelay.ron",
            "The config of ndprelay.service; see ndprelay.ron(5).",
        ),
        (
            "/etc/ndprelay/NAME.ron",
            "The config of instance NAME (ndprelay@NAME.service).",
        ),
        (
            "/run/ndprelay.sock",
            "The default control socket (the config's control_socket), for ndprelay status.",
        ),
        (
            "/run/ndprelay/NAME.sock",
            "The control socket of instance NAME.",
        ),
        (
            "/var/lib/ndprelay/state, /var/lib/ndprelay/NAME/state",
            "Bindings and loop-prevention state kept across restarts (--state-file).",
        ),
        (
            "/etc/iproute2/rt_protos.d/ndprelay.conf",
            "Names route protocol 199, the relay's /128 routes: ip -6 route show proto ndprelay.",
        ),
    ] {
        r.control("TP", []);
        r.text([italic(file)]);
        r.text([roman(what)]);
    }
    see_also(
        &mut r,
        &[
            "ndprelay.ron(5)",
            "ndprelay-run(8)",
            "ndprelay-check(8)",
            "ndprelay-status(8)",
            "ndprelay-replay(8)",
            "ndprelay-generate(8)",
            "systemctl(1)",
            "ip-route(8)",
        ],
    );
    out.extend_from_slice(r.to_roff().as_bytes());
    let _ = man.render_version_section(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `ndprelay.ron(5)`: the config reference, from the annotated example's comments.
pub fn config_page() -> String {
    let reference = reference::reference();
    let mut r = Roff::new();
    r.control("TH", ["NDPRELAY.RON", "5", "", &source(), MANUAL]);
    r.control("SH", ["NAME"]);
    r.text([roman("ndprelay.ron - configuration file of ndprelay(8)")]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([italic("/etc/ndprelay/ndprelay.ron")]);
    r.control("br", []);
    r.text([italic("/etc/ndprelay/NAME.ron")]);
    r.control("SH", ["DESCRIPTION"]);
    r.text([roman(
        "The config file of ndprelay run, check and replay, in RON (Rusty Object \
         Notation): one parenthesised record of keys, with // comments. Unknown keys \
         and bad values are errors, each reported with its file:line:column; \
         ndprelay check -c FILE shows them.",
    )]);
    paragraphs(&mut r, &reference.preamble, "PP");
    r.control("SH", ["KEYS"]);
    r.text([roman(
        "Each key is shown with the value the shipped example \
         (/usr/share/doc/ndprelay/examples/ndprelay.ron) gives it: its default, except \
         for the required uplink, downstream and prefixes.",
    )]);
    for section in &reference.sections {
        if !section.title.is_empty() {
            r.control("SS", [section.title.replace('`', "").as_str()]);
        }
        let keys: Vec<&KeyDoc> = section.keys.iter().collect();
        let mut i = 0;
        while i < keys.len() {
            let mut group = vec![keys[i]];
            while i + group.len() < keys.len() && keys[i + group.len()].shared {
                group.push(keys[i + group.len()]);
            }
            r.control("TP", []);
            let mut tag = Vec::new();
            for (n, k) in group.iter().enumerate() {
                if n > 0 {
                    tag.push(roman(", "));
                }
                tag.push(bold(k.path.clone()));
                tag.push(roman(format!(": {}", k.value)));
            }
            r.text(tag);
            paragraphs(&mut r, &group[0].doc, "IP");
            i += group.len();
        }
    }
    r.control("SH", ["EXAMPLE"]);
    r.text([roman(
        "The smallest useful config (every other key at its default):",
    )]);
    r.control("PP", []);
    r.control("nf", []);
    r.control("RS", ["4"]);
    for line in include_str!("../examples/minimal.ron").lines() {
        r.text([roman(line)]);
    }
    r.control("RE", []);
    r.control("fi", []);
    r.control("SH", ["FILES"]);
    r.control("TP", []);
    r.text([italic("/etc/ndprelay/ndprelay.ron")]);
    r.text([roman("Read by ndprelay.service.")]);
    r.control("TP", []);
    r.text([italic("/etc/ndprelay/NAME.ron")]);
    r.text([roman("Read by ndprelay@NAME.service.")]);
    see_also(
        &mut r,
        &["ndprelay(8)", "ndprelay-check(8)", "ndprelay-run(8)"],
    );
    r.render()
}

/// Text with `code` spans in bold.
fn inline(text: &str) -> Vec<roff::Inline> {
    text.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(
            |(i, part)| {
                if i % 2 == 1 { bold(part) } else { roman(part) }
            },
        )
        .collect()
}

/// Comment lines as roff paragraphs, each started with `para` (`PP` at the top level;
/// `IP` in a `TP` body, whose first paragraph needs none): an empty line starts a new
/// paragraph, an indented `NAME - text` line an item (deeper-indented lines continue
/// it), any other indented line is shown as is.
fn paragraphs(r: &mut Roff, lines: &[String], para: &str) {
    let mut text = String::new();
    let mut item: Option<(String, String)> = None;
    let flush_text = |r: &mut Roff, text: &mut String| {
        if !text.is_empty() {
            r.text(inline(&std::mem::take(text)));
        }
    };
    let flush_item = |r: &mut Roff, item: &mut Option<(String, String)>| {
        if let Some((tag, body)) = item.take() {
            r.control("RS", []);
            r.control("TP", []);
            r.text([bold(tag)]);
            r.text(inline(&body));
            r.control("RE", []);
        }
    };
    // The first paragraph of a `TP` body follows the tag without a macro.
    let mut first = para == "PP";
    let mut started = false;
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim();
        if body.is_empty() {
            flush_text(r, &mut text);
            flush_item(r, &mut item);
            first = started;
            continue;
        }
        if first {
            r.control(para, []);
            first = false;
        }
        started = true;
        if indent >= 2 {
            if let Some((tag, rest)) = body
                .split_once(" - ")
                .filter(|(t, _)| !t.trim().is_empty() && t.split_whitespace().count() <= 2)
            {
                flush_text(r, &mut text);
                flush_item(r, &mut item);
                item = Some((tag.trim().to_owned(), rest.trim().to_owned()));
                continue;
            }
            if let Some((_, rest)) = item.as_mut() {
                rest.push(' ');
                rest.push_str(body);
                continue;
            }
            flush_text(r, &mut text);
            r.control("RS", ["4"]);
            r.control("nf", []);
            r.text(inline(body));
            r.control("fi", []);
            r.control("RE", []);
            continue;
        }
        flush_item(r, &mut item);
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(body);
    }
    flush_text(r, &mut text);
    flush_item(r, &mut item);
}

#[cfg(test)]
mod test {
    use super::*;

    fn page(name: &str) -> String {
        pages()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no page {name}"))
            .1
    }

    #[test]
    fn there_is_a_page_per_subcommand() {
        let names: Vec<String> = pages().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "ndprelay.8",
                "ndprelay-run.8",
                "ndprelay-check.8",
                "ndprelay-status.8",
                "ndprelay-explain.8",
                "ndprelay-replay.8",
                "ndprelay-generate.8",
                "ndprelay.ron.5"
            ]
        );
        let main = page("ndprelay.8");
        assert!(
            main.starts_with(".ie") && main.contains(".TH ndprelay 8"),
            "{main}"
        );
        for sub in ["run", "check", "status", "replay", "generate"] {
            assert!(
                main.contains(&format!("ndprelay\\-{sub}(8)")),
                "{sub}: {main}"
            );
        }
        assert!(!main.contains("ndprelay\\-help"), "{main}");
        assert!(main.contains("\\-\\-scenario"), "{main}");
        assert!(main.contains(".SH FILES") && main.contains("/run/ndprelay/NAME.sock"));
        assert!(
            main.contains(".SH EXAMPLES\n.nf\n") && main.contains("ndprelay status \\-\\-json\n"),
            "{main}"
        );
        let status = page("ndprelay-status.8");
        assert!(status.contains("\\-\\-name"), "{status}");
        assert!(status.contains("ndprelay.ron(5)"), "{status}");
    }

    #[test]
    fn the_config_page_documents_every_key() {
        let text = page("ndprelay.ron.5");
        assert!(text.contains(".TH NDPRELAY.RON 5"), "{text}");
        for key in reference::reference().keys() {
            let escaped = key.path.replace('-', "\\-");
            assert!(
                text.contains(&format!("\\fB{escaped}\\fR: ")),
                "{} missing from ndprelay.ron(5)",
                key.path
            );
        }
        // The example's lists become items, not run-on text.
        assert!(text.contains("\\fBUserspace\\fR"), "{text}");
        assert!(text.contains(".SS \"relay policy\""), "{text}");
    }

    #[test]
    fn completions_cover_every_subcommand() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = String::from_utf8(completion(shell)).expect("utf-8");
            for word in [
                "run",
                "check",
                "status",
                "replay",
                "generate",
                // Options, as fish spells them too (`-l state-file`).
                "control-socket",
                "scenario",
                "state-file",
            ] {
                assert!(text.contains(word), "{shell:?} lacks {word}");
            }
        }
        let fish = String::from_utf8(completion(Shell::Fish)).expect("utf-8");
        assert!(fish.contains("-s n -l name"), "{fish}");
    }
}

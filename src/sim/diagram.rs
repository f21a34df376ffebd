//! The ladder (sequence) diagram: one lane per host and relay port, grouped by segment,
//! one row per ND frame with arrows to every endpoint whose stack accepted it.
//!
//! A ten-minute scenario repeats itself (periodic RAs, the relay's NUD probes and their
//! answers), so each exchange is drawn at most twice, and floods at most three frames a
//! second per sender and kind; the rest fold into grey `⋯ N not drawn (t1 .. t2)` lines,
//! and the header says how many were folded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

use super::runner::{Endpoint, Exchange, World};
use crate::time::{Duration, Instant};

/// Rows drawn at most; later frames are summarised in a footer.
const MAX_ROWS: usize = 400;
/// An exchange (same segment, sender, receivers and frame summary) is drawn this many times;
/// later repeats (periodic RAs, NUD probes and their answers) fold into one grey line.
const MAX_REPEATS: u32 = 2;
/// Frames of one kind from one sender to the same receivers drawn per
/// [`BURST_WINDOW`]; the rest of a burst folds.
const MAX_BURST: usize = 5;
const BURST_WINDOW: Duration = Duration::from_secs(1);
const LANE_GAP: usize = 180;
const ROW_GAP: usize = 22;
const FOLD_GAP: usize = 16;
const LEFT: usize = 110;
const TOP: usize = 100;
/// Width of one character of the 11 px monospace labels, for placing them.
const CHAR_W: usize = 7;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Arrow colour per message kind, so RS/RA, NS/NA and DAD stand apart.
fn colour_of(label: &str) -> &'static str {
    match label.split_whitespace().next().unwrap_or("") {
        "RS" | "RA" => "#7a3e9d",
        "NS" if label.contains("DAD") => "#777777",
        "NS" => "#1f5fa8",
        "NA" => "#2e7d32",
        "Redirect" => "#b26a00",
        "invalid" => "#c62828",
        _ => "#333333",
    }
}

/// Every arrow colour with its legend text (one arrowhead marker each).
const COLOURS: [(&str, &str); 6] = [
    ("#7a3e9d", "RS/RA"),
    ("#1f5fa8", "NS"),
    ("#777777", "NS (DAD)"),
    ("#2e7d32", "NA"),
    ("#b26a00", "Redirect"),
    ("#c62828", "invalid"),
];

fn marker_id(colour: &str) -> String {
    format!("m{}", colour.trim_start_matches('#'))
}

/// A drawn row: one exchange, or a run of folded repeats.
enum Row<'a> {
    Exchange(&'a Exchange),
    Folded {
        count: usize,
        first: Instant,
        last: Instant,
    },
}

/// The rows to draw, and how many exchanges fell past [`MAX_ROWS`].
///
/// Folded: repeats of an exchange already drawn [`MAX_REPEATS`] times (periodic), and
/// bursts — more than [`MAX_BURST`] frames of one kind from one sender to the same
/// receivers within [`BURST_WINDOW`] (floods, scans).
fn rows(exchanges: &[Exchange]) -> (Vec<Row<'_>>, usize) {
    type Lane = (usize, Endpoint, Vec<Endpoint>);
    let mut seen: HashMap<(Lane, &str), u32> = HashMap::new();
    let mut recent: HashMap<(Lane, &str), VecDeque<Instant>> = HashMap::new();
    let mut rows = Vec::new();
    let mut drawn = 0;
    for (i, e) in exchanges.iter().enumerate() {
        if drawn >= MAX_ROWS {
            return (rows, exchanges.len() - i);
        }
        let mut to = e.to.clone();
        to.sort_unstable();
        let lane = (e.segment, e.from, to);
        let n = seen.entry((lane.clone(), &e.key)).or_insert(0);
        *n += 1;
        let repeat = *n > MAX_REPEATS;
        // The kind is the label without its address ("NS", "NS (DAD)", ...).
        let kind = e
            .label
            .rsplit_once(' ')
            .map_or(e.label.as_str(), |(k, _)| k);
        let times = recent.entry((lane, kind)).or_default();
        while times.front().is_some_and(|t| *t + BURST_WINDOW <= e.at) {
            times.pop_front();
        }
        let burst = times.len() >= MAX_BURST;
        if !repeat && !burst {
            times.push_back(e.at);
            rows.push(Row::Exchange(e));
            drawn += 1;
            continue;
        }
        match rows.last_mut() {
            Some(Row::Folded { count, last, .. }) => {
                *count += 1;
                *last = e.at;
            }
            _ => rows.push(Row::Folded {
                count: 1,
                first: e.at,
                last: e.at,
            }),
        }
    }
    (rows, 0)
}

/// Renders the diagram of `world`'s recorded exchanges as SVG text.
pub fn render(world: &World<'_>) -> String {
    let exchanges: &[Exchange] = world.exchanges.as_deref().unwrap_or(&[]);
    // Lanes: per segment, its hosts (as placed at the start) then the relay ports on it.
    let mut lanes: Vec<(Endpoint, String, usize)> = Vec::new();
    for (si, _) in world.segments.iter().enumerate() {
        for (hi, h) in world.scenario.hosts.iter().enumerate() {
            if world.segments[si].name == h.segment {
                lanes.push((Endpoint::Host(hi), h.name.clone(), si));
            }
        }
        for (ri, r) in world.relays.iter().enumerate() {
            for (pi, p) in r.ports.iter().enumerate() {
                if p.segment == si {
                    let id = crate::engine::PortId(pi as u16);
                    lanes.push((
                        Endpoint::Relay(ri, id),
                        world.endpoint_name(Endpoint::Relay(ri, id)),
                        si,
                    ));
                }
            }
        }
    }
    if exchanges.iter().any(|e| e.from == Endpoint::Injector) {
        lanes.push((Endpoint::Injector, "inject".into(), usize::MAX));
    }
    let lane_x: BTreeMap<Endpoint, usize> = lanes
        .iter()
        .enumerate()
        .map(|(i, (e, _, _))| (*e, LEFT + 60 + i * LANE_GAP))
        .collect();
    let last_in_band: Vec<Endpoint> = lanes
        .iter()
        .enumerate()
        .filter(|(i, l)| lanes.get(i + 1).is_none_or(|next| next.2 != l.2))
        .map(|(_, l)| l.0)
        .collect();
    let (rows, cut) = rows(exchanges);
    let folded: usize = rows
        .iter()
        .map(|r| match r {
            Row::Folded { count, .. } => *count,
            Row::Exchange(_) => 0,
        })
        .sum();
    let rows_height: usize = rows
        .iter()
        .map(|r| match r {
            Row::Exchange(_) => ROW_GAP,
            Row::Folded { .. } => FOLD_GAP,
        })
        .sum();
    let width = (LEFT + 60 + lanes.len() * LANE_GAP).max(760);
    let height = TOP + rows_height + 50;
    let bands_end = LEFT + 60 + lanes.len() * LANE_GAP - LANE_GAP / 2;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">"#
    );
    s.push_str("<defs>");
    for (colour, _) in COLOURS.iter().chain([("#333333", "")].iter()) {
        let _ = write!(
            s,
            r#"<marker id="{}" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="{colour}"/></marker>"#,
            marker_id(colour)
        );
    }
    s.push_str("</defs>\n");
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14">{} — ND exchanges (seed {})</text>"#,
        esc(&world.scenario.name),
        world.seed()
    );
    // Legend, and what was left out.
    let mut x = 10;
    for (colour, name) in COLOURS {
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="34" x2="{}" y2="34" stroke="{colour}" stroke-width="2"/><text x="{}" y="38" fill="{colour}">{name}</text>"#,
            x + 18,
            x + 22
        );
        x += 22 + CHAR_W * name.len() + 14;
    }
    let note = format!(
        "{} ND frames; {folded} folded into grey ⋯ lines (an exchange after {MAX_REPEATS} times; bursts over {MAX_BURST}/s)",
        exchanges.len()
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="38" fill="#666">{}</text>"##,
        x + 10,
        esc(&note)
    );
    // Segment bands.
    let mut i = 0;
    while i < lanes.len() {
        let seg = lanes[i].2;
        let j = lanes[i..].iter().take_while(|l| l.2 == seg).count() + i;
        let x0 = LEFT + 60 + i * LANE_GAP - LANE_GAP / 2 + 4;
        let w = (j - i) * LANE_GAP - 8;
        let shade = if seg % 2 == 0 { "#eef3fb" } else { "#f4f9ee" };
        let name = world.segments.get(seg).map_or("", |s| s.name.as_str());
        let _ = writeln!(
            s,
            r#"<rect x="{x0}" y="48" width="{w}" height="{}" fill="{shade}"/><text x="{}" y="62" font-weight="bold">{}</text>"#,
            height - 58,
            x0 + 6,
            esc(name)
        );
        i = j;
    }
    for (e, name, _) in &lanes {
        let x = lane_x[e];
        let _ = writeln!(
            s,
            r##"<text x="{x}" y="80" text-anchor="middle">{}</text><line x1="{x}" y1="86" x2="{x}" y2="{}" stroke="#999" stroke-dasharray="3,3"/>"##,
            esc(name),
            height - 20
        );
    }
    // Labels get a white halo so they stay readable where they cross lane lines.
    let halo = r#"stroke="white" stroke-width="3" paint-order="stroke""#;
    let mut y = TOP;
    for row in &rows {
        let e = match row {
            Row::Folded { count, first, last } => {
                let text = if count == &1 {
                    format!("⋯ 1 frame not drawn ({first})")
                } else {
                    format!("⋯ {count} frames not drawn ({first} .. {last})")
                };
                let _ = writeln!(
                    s,
                    r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#bbb" stroke-dasharray="2,4"/><text x="{}" y="{}" fill="#888" {halo}>{}</text>"##,
                    LEFT,
                    y - 4,
                    bands_end,
                    y - 4,
                    LEFT + 10,
                    y,
                    esc(&text)
                );
                y += FOLD_GAP;
                continue;
            }
            Row::Exchange(e) => e,
        };
        let _ = writeln!(
            s,
            r##"<text x="10" y="{}" fill="#666">{}</text>"##,
            y + 4,
            e.at
        );
        let Some(&x0) = lane_x.get(&e.from) else {
            y += ROW_GAP;
            continue;
        };
        let targets: Vec<usize> = e.to.iter().filter_map(|t| lane_x.get(t).copied()).collect();
        if targets.is_empty() {
            // A short red stub pointing into its own segment's band (left from the band's
            // last lane), so the label neither leaves the picture nor enters another band.
            let text = format!("{} (nobody took it)", e.label);
            let text_w = CHAR_W * text.chars().count();
            let (x1, start) = if last_in_band.contains(&e.from) {
                (x0 - 30, (x0 - 34).saturating_sub(text_w))
            } else {
                (x0 + 30, x0 + 34)
            };
            // Over the stub like other labels; never over the time column or past the edge.
            let tx = start.min(width.saturating_sub(text_w + 4)).max(LEFT + 4);
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#c33"/><text x="{tx}" y="{}" fill="#c33" {halo}>{}</text>"##,
                y - 3,
                esc(&text)
            );
            y += ROW_GAP;
            continue;
        }
        let colour = colour_of(&e.label);
        for x1 in &targets {
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="{colour}" marker-end="url(#{})"/>"##,
                marker_id(colour)
            );
        }
        // The label sits over the first hop, between the sender and its nearest target.
        let nearest = targets
            .iter()
            .copied()
            .min_by_key(|x1| x1.abs_diff(x0))
            .unwrap_or(x0);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" fill="{colour}" {halo}>{}</text>"#,
            (x0 + nearest) / 2,
            y - 3,
            esc(&e.label)
        );
        y += ROW_GAP;
    }
    if cut > 0 {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}">… {cut} more ND frames not drawn (at most {MAX_ROWS} rows)</text>"#,
            height - 8,
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod test {
    use super::*;

    fn ex(at_ms: u64, from: usize, label: &str) -> Exchange {
        Exchange {
            at: Instant::ZERO + Duration::from_millis(at_ms),
            segment: 0,
            from: Endpoint::Host(from),
            to: vec![Endpoint::Host(9)],
            label: label.to_owned(),
            key: format!("key {label}"),
        }
    }

    fn shape(rows: &[Row<'_>]) -> Vec<String> {
        rows.iter()
            .map(|r| match r {
                Row::Exchange(e) => e.label.clone(),
                Row::Folded { count, .. } => format!("fold {count}"),
            })
            .collect()
    }

    #[test]
    fn periodic_repeats_fold_after_two_and_bursts_after_five_a_second() {
        let mut list = Vec::new();
        // A periodic RA every 200 s: drawn twice, then folded.
        for i in 0..4 {
            list.push(ex(i * 200_000, 0, "RA fe80::1"));
        }
        // A scan: one NS a millisecond to a new target each time.
        for i in 0..20 {
            list.push(ex(1_000_000 + i, 1, &format!("NS 2001:db8::{i:x}")));
        }
        // Another sender in the same second is drawn.
        list.push(ex(1_000_500, 2, "NS 2001:db8::ffff"));
        let (rows, cut) = rows(&list);
        assert_eq!(cut, 0);
        let want: Vec<String> = ["RA fe80::1", "RA fe80::1", "fold 2"]
            .into_iter()
            .map(str::to_owned)
            .chain((0..5).map(|i| format!("NS 2001:db8::{i:x}")))
            .chain(["fold 15".to_owned(), "NS 2001:db8::ffff".to_owned()])
            .collect();
        assert_eq!(shape(&rows), want);
    }

    #[test]
    fn rows_are_capped() {
        let list: Vec<Exchange> = (0..MAX_ROWS as u64 + 7)
            .map(|i| ex(i * 2_000, 0, &format!("NS 2001:db8::{i:x}")))
            .collect();
        let (rows, cut) = rows(&list);
        assert_eq!(rows.len(), MAX_ROWS);
        assert_eq!(cut, 7);
    }
}

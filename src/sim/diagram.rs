//! The ladder (sequence) diagram: one lane per host and relay port, grouped by segment,
//! one row per ND frame with arrows to every endpoint whose stack accepted it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::runner::{Endpoint, Exchange, World};

/// Rows drawn at most; later frames are summarised in a footer.
const MAX_ROWS: usize = 400;
const LANE_GAP: usize = 150;
const ROW_GAP: usize = 22;
const LEFT: usize = 110;
const TOP: usize = 90;

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
    let rows = exchanges.len().min(MAX_ROWS);
    let width = LEFT + 60 + lanes.len() * LANE_GAP + 40;
    let height = TOP + rows * ROW_GAP + 60;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r##"<defs><marker id="a" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>"##
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14">{} — ND exchanges (seed {})</text>"#,
        esc(&world.scenario.name),
        world.seed()
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
            r#"<rect x="{x0}" y="30" width="{w}" height="{}" fill="{shade}"/><text x="{}" y="44" font-weight="bold">{}</text>"#,
            height - 40,
            x0 + 6,
            esc(name)
        );
        i = j;
    }
    for (e, name, _) in &lanes {
        let x = lane_x[e];
        let _ = writeln!(
            s,
            r##"<text x="{x}" y="66" text-anchor="middle">{}</text><line x1="{x}" y1="72" x2="{x}" y2="{}" stroke="#999" stroke-dasharray="3,3"/>"##,
            esc(name),
            height - 20
        );
    }
    for (row, e) in exchanges.iter().take(rows).enumerate() {
        let y = TOP + row * ROW_GAP;
        let _ = writeln!(
            s,
            r##"<text x="10" y="{}" fill="#666">{}</text>"##,
            y + 4,
            e.at
        );
        let Some(&x0) = lane_x.get(&e.from) else {
            continue;
        };
        let targets: Vec<usize> = e.to.iter().filter_map(|t| lane_x.get(t).copied()).collect();
        if targets.is_empty() {
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="#c33"/><text x="{}" y="{}" fill="#c33">{} (nobody took it)</text>"##,
                x0 + 30,
                x0 + 34,
                y + 4,
                esc(&e.label)
            );
            continue;
        }
        let colour = colour_of(&e.label);
        for x1 in &targets {
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="{colour}" marker-end="url(#a)"/>"##
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
            r#"<text x="{}" y="{}" text-anchor="middle" fill="{colour}">{}</text>"#,
            (x0 + nearest) / 2,
            y - 3,
            esc(&e.label)
        );
    }
    if exchanges.len() > rows {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}">… {} more ND frames not drawn</text>"#,
            height - 8,
            exchanges.len() - rows
        );
    }
    s.push_str("</svg>\n");
    s
}

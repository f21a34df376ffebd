//! `explain` built from a real engine: the decision history it keeps without events,
//! and the explanation of each situation an operator meets (`crate::explain`).

use super::*;
use crate::engine::{DropReason, HISTORY_ADDRS, Tunables};
use crate::explain::{
    DriverFacts, Explanation, Fib, FibLookup, FibRoute, HostProblem, Verdict, build, render_text,
};

fn quiet() -> EngineConfig {
    let mut cfg = config();
    cfg.emit_events = false;
    cfg
}

fn fib(dev: &str, protocol: u8) -> DriverFacts {
    DriverFacts {
        fib: FibLookup::Found(Some(FibRoute {
            dev: dev.into(),
            protocol,
        })),
        host: Vec::new(),
    }
}

fn no_fib() -> DriverFacts {
    DriverFacts {
        fib: FibLookup::Found(None),
        host: Vec::new(),
    }
}

fn explain(h: &Harness, a: Ipv6Addr, driver: &DriverFacts) -> (Explanation, String) {
    let e = build(&h.engine.address_facts(h.now, a), driver);
    // The document reads back as it was written (the control socket carries it).
    let json = serde_json::to_string(&e).unwrap();
    let back: Explanation = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e);
    let text = render_text(&e);
    (e, text)
}

#[test]
fn a_healthy_guest_without_events_shows_binding_route_and_decisions() {
    let mut h = Harness::ready(quiet());
    let a = addr(10);
    h.bind_guest(10, D1);
    h.advance(Duration::from_secs(2));
    h.inject(UP, &ns_from_router(a));
    let (e, text) = explain(&h, a, &fib("br0", 199));
    assert_eq!(e.verdict, Verdict::Healthy, "{text}");
    assert!(e.next_step.is_none());
    assert_eq!(e.prefix.prefix.as_deref(), Some("2001:db8:1::/64"));
    let b = e.binding.as_ref().unwrap();
    assert_eq!((b.port.as_str(), b.state.as_str()), ("br0", "REACHABLE"));
    assert_eq!(b.since_secs, 3.0);
    assert_eq!(e.route.fib, Fib::Agrees);
    assert!(e.route.installed);
    let ns = e.uplink_ns.as_ref().unwrap();
    assert_eq!((ns.source, ns.ago_secs), (router_ll(), 0.0));
    let texts: Vec<&str> = e.decisions.iter().map(|d| d.text.as_str()).collect();
    assert!(
        texts.contains(&"NS 2001:db8:1::a from uplink relayed to br0,br1"),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"route 2001:db8:1::a/128 via br0 installed"),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"binding 2001:db8:1::a on br0 (02:00:00:00:01:0a) REACHABLE")
            || texts
                .iter()
                .any(|t| t.starts_with("binding 2001:db8:1::a on br0")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("NA 2001:db8:1::a from br0 relayed to uplink")),
        "{texts:?}"
    );
    assert!(text.starts_with("2001:db8:1::a is bound on br0"), "{text}");
    assert!(text.contains("the kernel's FIB agrees"), "{text}");
    assert!(text.contains("next step:  none needed"), "{text}");
}

#[test]
fn an_unknown_address_says_no_guest_answered() {
    let mut h = Harness::ready(quiet());
    let a = addr(0x77);
    h.inject(UP, &ns_from_router(a));
    let (e, text) = explain(&h, a, &no_fib());
    assert_eq!(e.verdict, Verdict::Unknown, "{text}");
    assert!(e.binding.is_none());
    assert_eq!(e.route.fib, Fib::NoRoute);
    assert!(
        text.contains("is unknown: no guest on a downstream port has answered"),
        "{text}"
    );
    let step = e.next_step.unwrap();
    assert_eq!(
        step.command.as_deref(),
        Some("ndisc6 2001:db8:1::77 uplink")
    );
    // The NS it relayed for it is there.
    assert_eq!(e.decisions.len(), 1);
    assert_eq!(
        e.decisions[0].text,
        "NS 2001:db8:1::77 from uplink relayed to br0,br1"
    );
    // Nothing ever seen: no decisions, no NS.
    let (e, text) = explain(&h, addr(0x78), &no_fib());
    assert_eq!(e.verdict, Verdict::Unknown);
    assert!(e.decisions.is_empty() && e.uplink_ns.is_none());
    assert!(text.contains("decisions:  none remembered"), "{text}");
}

#[test]
fn an_address_outside_the_prefixes_is_not_proxied() {
    let h = Harness::ready(quiet());
    let a: Ipv6Addr = "2001:db8:2::5".parse().unwrap();
    let (e, text) = explain(&h, a, &no_fib());
    assert_eq!(e.verdict, Verdict::NotProxied);
    assert!(!e.prefix.proxied);
    assert!(text.contains("not in any proxied prefix"), "{text}");
    assert!(e.next_step.unwrap().action.contains("`prefixes`"));
}

#[test]
fn a_port_waiting_for_an_ra_says_so_and_when_the_relay_sends_its_own() {
    let mut h = Harness::new(quiet());
    h.advance(Duration::from_secs(1));
    let a = addr(10);
    let (e, text) = explain(&h, a, &no_fib());
    assert_eq!(e.verdict, Verdict::Problem, "{text}");
    let br0 = e.ports.iter().find(|p| p.name == "br0").unwrap();
    assert!(!br0.proxying);
    assert!(
        br0.why_not
            .as_ref()
            .unwrap()
            .starts_with("waiting for a router's RA")
    );
    assert_eq!(br0.until_secs, Some(4.0), "own RAs at ra_wait (5 s)");
    let step = e.next_step.unwrap();
    assert!(
        step.action.contains("sends its own P-bit RAs in 4 s"),
        "{step:?}"
    );
    assert_eq!(step.command.as_deref(), Some("rdisc6 uplink"));
    assert!(
        text.contains("NOT proxying: waiting for a router's RA"),
        "{text}"
    );
}

#[test]
fn a_port_disabled_by_an_ra_names_the_sender_and_the_end_of_the_hold() {
    let mut cfg = quiet();
    cfg.disable_on_rogue_ra = true;
    let mut h = Harness::ready(cfg);
    h.bind_guest(10, D1);
    h.inject(D1, &rogue_ra(66));
    let (e, text) = explain(&h, addr(10), &fib("br0", 199));
    assert_eq!(e.verdict, Verdict::Problem, "{text}");
    let who = format!("{} ({})", gmac(66).link_local(), gmac(66));
    assert!(e.summary.contains(&who), "{text}");
    let br0 = e.ports.iter().find(|p| p.name == "br0").unwrap();
    assert_eq!(br0.until_secs, Some(3600.0));
    assert!(
        e.next_step
            .unwrap()
            .action
            .contains("in 3600 s unless another one comes")
    );
}

#[test]
fn a_quarantined_guest_mac_is_the_problem() {
    let mut h = Harness::ready(quiet());
    h.bind_guest(10, D1);
    // The guest itself sends an RA with the P bit (a second relay on that host).
    let p_bit = emit_nd(
        gmac(10),
        Mac::ipv6_multicast(all_nodes()),
        gmac(10).link_local(),
        all_nodes(),
        &NdMessage::RouterAdvert(RouterAdvert {
            cur_hop_limit: 64,
            flags: RaFlags::PROXY,
            router_lifetime: 1800,
            reachable_time: 0,
            retrans_timer: 0,
        }),
        &[OptionRepr::SourceLla(gmac(10))],
    );
    h.inject(D1, &p_bit);
    let (e, text) = explain(&h, addr(10), &fib("br0", 199));
    assert_eq!(e.verdict, Verdict::Problem, "{text}");
    assert!(e.summary.contains("quarantined on br0"), "{text}");
    assert_eq!(e.binding.unwrap().quarantined_secs, Some(3600.0));
}

#[test]
fn a_route_missing_from_the_fib_is_a_disagreement_with_the_command_to_restore_it() {
    let mut h = Harness::ready(quiet());
    h.bind_guest(10, D1);
    let (e, text) = explain(&h, addr(10), &no_fib());
    assert_eq!(e.verdict, Verdict::Problem, "{text}");
    assert_eq!(e.route.fib, Fib::Missing);
    assert!(
        text.contains("the kernel's FIB DISAGREES: it has no such route"),
        "{text}"
    );
    let step = e.next_step.unwrap();
    assert_eq!(
        step.command.as_deref(),
        Some("ip -6 route replace 2001:db8:1::a/128 dev br0 proto 199")
    );
    assert!(
        step.problem.contains("does not watch its routes"),
        "{step:?}"
    );
    // Pointing elsewhere, or someone else's.
    let (e, _) = explain(&h, addr(10), &fib("br1", 199));
    assert_eq!(e.route.fib, Fib::Elsewhere { dev: "br1".into() });
    let (e, _) = explain(&h, addr(10), &fib("br0", 4));
    assert_eq!(
        e.route.fib,
        Fib::Foreign {
            dev: "br0".into(),
            protocol: 4
        }
    );
    assert_eq!(
        e.next_step.unwrap().command.as_deref(),
        Some("ip -6 route del 2001:db8:1::a/128 proto 4")
    );
    // Replay has no FIB: the route is what the engine did.
    let (e, text) = explain(&h, addr(10), &DriverFacts::replay());
    assert_eq!(e.verdict, Verdict::Healthy, "{text}");
    assert!(text.contains("FIB not checked in replay"), "{text}");
}

#[test]
fn a_wrong_sysctl_comes_first_with_its_command() {
    let mut h = Harness::ready(quiet());
    h.bind_guest(10, D1);
    let mut d = fib("br0", 199);
    d.host.push(HostProblem {
        problem: "net.ipv6.conf.all.forwarding is 0, ndprelay needs 1".into(),
        command: "sysctl -w net.ipv6.conf.all.forwarding=1".into(),
    });
    let (e, text) = explain(&h, addr(10), &d);
    assert_eq!(e.verdict, Verdict::Problem);
    assert!(
        text.contains("run:        sysctl -w net.ipv6.conf.all.forwarding=1"),
        "{text}"
    );
}

#[test]
fn a_rate_limited_target_says_the_limiter_refused_it() {
    let mut cfg = quiet();
    cfg.tunables = Tunables {
        ns_rate_per_port: 5,
        ns_burst_per_port: 10,
        ..Tunables::default()
    };
    let mut h = Harness::ready(cfg);
    let t = addr(0x55);
    for _ in 0..20 {
        h.inject(
            D1,
            &ns(
                gmac(3),
                Mac::ipv6_multicast(solicited_node(t)),
                addr(3),
                solicited_node(t),
                t,
                Some(gmac(3)),
            ),
        );
    }
    let facts = h.engine.address_facts(h.now, t);
    assert!(facts.decisions.iter().any(|(_, d)| matches!(
        d,
        crate::engine::Decision::Dropped {
            reason: DropReason::RateLimited,
            ..
        }
    )));
    let (e, text) = explain(&h, t, &no_fib());
    assert_eq!(e.verdict, Verdict::Problem, "{text}");
    assert!(e.summary.contains("rate limiter refused"), "{text}");
    assert!(e.next_step.unwrap().problem.contains("limits.ns_rate"));
    assert!(text.contains("dropped on br0: rate_limited"), "{text}");
}

#[test]
fn the_history_stays_bounded_under_an_ns_scan_from_the_uplink() {
    let mut h = Harness::ready(quiet());
    h.bind_guest(10, D1);
    for i in 0..5000u32 {
        let t = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 7, (i >> 16) as u16, i as u16);
        h.inject(UP, &ns_from_router(t));
        h.clear();
    }
    assert_eq!(h.engine.history_len(), HISTORY_ADDRS);
    // The binding itself is untouched; its history went to the scan.
    let (e, _) = explain(&h, addr(10), &fib("br0", 199));
    assert_eq!(e.verdict, Verdict::Healthy);
}

//! Kernel integration tests of the I/O layer (capture, netlink, routes, guard) in
//! throw-away network namespaces. They need root (CAP_SYS_ADMIN for namespaces) and
//! are `#[ignore]`d; `scripts/test.sh netns` runs them with
//! `cargo test --lib live::tests -- --ignored --test-threads=1`.
//! Every namespace is named `ndpr-u-*` and removed on drop, also when a test fails.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::bpf;
use super::guard::Guard;
use super::netlink::{Install, LinkUpdate, Monitor, Netlink};
use super::sys::{self, PacketSocket};
use crate::live::ROUTE_PROTOCOL;

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip runs");
    assert!(st.success(), "ip {args:?} failed");
}

/// Namespaces removed on drop.
struct Netns(Vec<String>);

impl Netns {
    fn new(names: &[&str]) -> Self {
        let ns = Self(
            names
                .iter()
                .map(|n| format!("ndpr-u-{n}-{}", std::process::id()))
                .collect(),
        );
        for n in &ns.0 {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(std::process::Stdio::null())
                .status();
            ip(&["netns", "add", n]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        ns
    }
    fn name(&self, i: usize) -> &str {
        &self.0[i]
    }
    fn path(&self, i: usize) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0[i])
    }
    /// Runs `f` on a thread inside namespace `i`.
    fn run<T: Send + 'static>(&self, i: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        let p = self.path(i);
        std::thread::spawn(move || {
            sys::enter_netns(&p).expect("setns");
            f()
        })
        .join()
        .expect("thread in netns")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// veth `ndpru-a` in ns 0 and `ndpru-b` in ns 1, both up, with fixed MACs.
fn veth_pair(ns: &Netns) {
    ip(&[
        "link",
        "add",
        "ndpru-a",
        "netns",
        ns.name(0),
        "address",
        "02:00:00:00:aa:01",
        "type",
        "veth",
        "peer",
        "name",
        "ndpru-b",
        "netns",
        ns.name(1),
        "address",
        "02:00:00:00:bb:01",
    ]);
    ip(&["-n", ns.name(0), "link", "set", "ndpru-a", "up"]);
    ip(&["-n", ns.name(1), "link", "set", "ndpru-b", "up"]);
}

/// veth `d0` with peer `d0p` in the calling thread's namespace, both up. The kernel
/// sends no ND of its own on them (no DAD, no RS): the tests count the ND frames they
/// send.
fn local_veth() {
    local_veths(&[("d0", "d0p")]);
}

/// As [`local_veth`], for each (name, peer).
fn local_veths(pairs: &[(&str, &str)]) {
    for (knob, value) in [("accept_dad", "0"), ("router_solicitations", "0")] {
        std::fs::write(format!("/proc/sys/net/ipv6/conf/default/{knob}"), value)
            .expect("sysctl in the test namespace");
    }
    for (name, peer) in pairs {
        ip(&["link", "add", name, "type", "veth", "peer", "name", peer]);
        ip(&["link", "set", name, "up"]);
        ip(&["link", "set", peer, "up"]);
    }
}

/// An Ethernet + IPv6 frame with `next` and `payload` (checksums are not the filter's
/// business).
fn frame(dst_mac: [u8; 6], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&[2, 0, 0, 0, 0xbb, 1, 0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&[next, 255]);
    f.extend_from_slice(&"fe80::bb:1".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&"ff02::1:ff00:1".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(payload);
    f
}

fn ns_payload(tag: u8) -> Vec<u8> {
    let mut p = vec![135, 0, 0, 0, 0, 0, 0, 0];
    let mut target = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
    target[15] = tag;
    p.extend_from_slice(&target);
    p
}

fn collect(sock: &PacketSocket, for_: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    let end = Instant::now() + for_;
    while Instant::now() < end {
        if sys::poll_readable(sock, 50).unwrap() {
            while let Ok((n, _)) = sock.recv(&mut buf) {
                out.push(buf[..n].to_vec());
            }
        }
    }
    out
}

#[test]
#[ignore = "needs root and network namespaces"]
fn capture_sees_nd_behind_ext_headers_and_nothing_else() {
    let ns = Netns::new(&["cap-a", "cap-b"]);
    veth_pair(&ns);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let p0 = ns.path(0);
    let rx = std::thread::spawn(move || {
        sys::enter_netns(&p0).unwrap();
        let ifindex = sys::if_nametoindex("ndpru-a").unwrap();
        let (sock, _) = PacketSocket::open(ifindex, &bpf::nd_filter()).unwrap();
        // Our own transmission must not come back to us.
        sock.send(&frame([0x33, 0x33, 0xff, 0, 0, 1], 58, &ns_payload(99)))
            .unwrap();
        ready_tx.send(()).unwrap();
        collect(&sock, Duration::from_millis(1500))
    });
    ready_rx.recv().unwrap();
    ns.run(1, || {
        let s = PacketSocket::open(sys::if_nametoindex("ndpru-b").unwrap(), &bpf::nd_filter())
            .unwrap()
            .0;
        let mcast = [0x33, 0x33, 0xff, 0, 0, 1];
        s.send(&frame(mcast, 58, &ns_payload(1))).unwrap();
        s.send(&frame(mcast, 17, &[0; 16])).unwrap(); // UDP: not ND
        let mut ext = vec![58, 0, 1, 4, 0, 0, 0, 0];
        ext.extend(ns_payload(2));
        s.send(&frame(mcast, 60, &ext)).unwrap(); // NS behind Destination Options
        let mut echo = ns_payload(3);
        echo[0] = 128;
        s.send(&frame(mcast, 58, &echo)).unwrap(); // Echo Request: not ND
        // To another host's unicast MAC (a is not promiscuous, so not even the NIC takes it).
        s.send(&frame([2, 0, 0, 0, 0xcc, 1], 58, &ns_payload(4)))
            .unwrap();
        // A first fragment of an NS (the engine counts it as frag_nd), a non-first
        // fragment of ICMPv6 that looks like an NS (nothing tells what it is).
        for (offset, tag) in [(0u8, 5), (0x41, 6)] {
            let mut fragment = vec![58, 0, 0, offset, 0, 0, 0, 1];
            fragment.extend(ns_payload(tag));
            s.send(&frame(mcast, 44, &fragment)).unwrap();
        }
    });
    let got = rx.join().unwrap();
    // Only the frames this test built (their source MAC): the namespaces' kernels send
    // DAD NS and MLD reports of their own, whose last byte (a MAC's) may be any tag.
    let ours: Vec<&Vec<u8>> = got
        .iter()
        .filter(|f| f.len() >= 78 && f[6..12] == [2, 0, 0, 0, 0xbb, 1] && f[12..14] == [0x86, 0xdd])
        .collect();
    let tags: Vec<u8> = ours.iter().map(|f| f[f.len() - 1]).collect();
    assert!(tags.contains(&1), "plain NS missing: {tags:?}");
    assert!(tags.contains(&2), "NS behind ext header missing: {tags:?}");
    assert!(!tags.contains(&3), "echo leaked: {tags:?}");
    assert!(!tags.contains(&4), "other host's frame leaked: {tags:?}");
    assert!(!tags.contains(&99), "own transmission captured: {tags:?}");
    assert!(
        tags.contains(&5),
        "first fragment of an NS missing: {tags:?}"
    );
    assert!(!tags.contains(&6), "non-first fragment captured: {tags:?}");
    let udp: Vec<_> = ours.iter().filter(|f| f[20] == 17).collect();
    assert!(udp.is_empty(), "UDP leaked: {udp:02x?}");
}

/// The MAC of interface `name` in the calling thread's namespace.
fn link_mac(name: &str) -> crate::wire::Mac {
    let links = Netlink::route().unwrap().links().unwrap();
    links
        .iter()
        .find(|l| l.name == name)
        .and_then(|l| l.mac)
        .unwrap()
}

/// `frame` with a VLAN tag (`tpid`, `tci`) after its MAC addresses, as on the wire.
fn vlan_tagged(frame: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

#[test]
#[ignore = "needs root and network namespaces"]
fn a_vlan_tag_the_kernel_took_out_is_put_back_and_the_frame_dropped_by_reason() {
    let ns = Netns::new(&["vlan"]);
    ns.run(0, || {
        local_veth();
        let reader = PacketSocket::open(sys::if_nametoindex("d0").unwrap(), &bpf::nd_filter())
            .unwrap()
            .0;
        let peer = PacketSocket::open(sys::if_nametoindex("d0p").unwrap(), &bpf::nd_filter())
            .unwrap()
            .0;
        let mut batch = sys::RecvBatch::new(8, 2048);
        let plain = frame([0x33, 0x33, 0xff, 0, 0, 1], 58, &ns_payload(1));
        let sent = [
            plain.clone(),
            vlan_tagged(&plain, 0x8100, 100),
            // Priority-tagged (VLAN 0, priority 0): a tag all the same.
            vlan_tagged(&plain, 0x8100, 0),
            vlan_tagged(&plain, 0x88a8, 0x2007),
            plain.clone(),
        ];
        for f in &sent {
            peer.send(f).unwrap();
        }
        let mut got = Vec::new();
        let end = Instant::now() + Duration::from_secs(2);
        while got.len() < sent.len() && Instant::now() < end {
            if sys::poll_readable(&reader, 50).unwrap() {
                reader.recv_batch_now(&mut batch).unwrap();
                got.extend(batch.frames().map(|(f, _)| f.to_vec()));
            }
        }
        // The kernel hands the tagged frames over without their tag (in metadata): the
        // filter takes them as plain NS, and the tag is back in front of the EtherType.
        assert_eq!(got, sent, "frames as they were on the wire");
        let tagged: Vec<bool> = got
            .iter()
            .map(|f| crate::wire::parse_frame(f).err() == Some(crate::DropReason::VlanTagged))
            .collect();
        assert_eq!(tagged, [false, true, true, true, false]);
    });
}

/// Now, in ns since the Unix epoch.
fn realtime_ns() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(since.as_nanos()).expect("before 2554")
}

#[test]
#[ignore = "needs root and network namespaces"]
fn each_frame_carries_the_time_the_kernel_received_it() {
    let ns = Netns::new(&["stamp"]);
    ns.run(0, || {
        local_veth();
        let reader = PacketSocket::open(sys::if_nametoindex("d0").unwrap(), &bpf::nd_filter())
            .unwrap()
            .0;
        let peer = PacketSocket::open(sys::if_nametoindex("d0p").unwrap(), &bpf::nd_filter())
            .unwrap()
            .0;
        let mcast = [0x33, 0x33, 0xff, 0, 0, 1];
        let gap = Duration::from_millis(50);
        let mut batch = sys::RecvBatch::new(8, 2048);
        // The kernel switches receive stamping on from a work queue after the first
        // socket asks (`net_enable_timestamp`); until then a frame gets the time it is
        // read. Wait for a frame stamped before it was read.
        let stamping = (0..100).any(|_| {
            peer.send(&frame(mcast, 58, &ns_payload(0))).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            let n = reader.recv_batch_now(&mut batch).unwrap_or(0);
            let read = realtime_ns();
            n == 1 && batch.received().all(|r| r.rx_time_ns + 10_000_000 <= read)
        });
        assert!(stamping, "the kernel never stamped a frame on arrival");
        let before = realtime_ns();
        peer.send(&frame(mcast, 58, &ns_payload(1))).unwrap();
        std::thread::sleep(gap);
        // A tagged one: its time and its tag both fit in the control buffer.
        let tagged = vlan_tagged(&frame(mcast, 58, &ns_payload(2)), 0x8100, 7);
        peer.send(&tagged).unwrap();
        let sent = realtime_ns();
        std::thread::sleep(gap);
        // Both are read in one batch, well after they arrived.
        assert!(
            sys::poll_readable(&reader, 1000).unwrap(),
            "nothing received"
        );
        assert_eq!(reader.recv_batch_now(&mut batch).unwrap(), 2);
        let read = realtime_ns();
        let got: Vec<(Vec<u8>, u64)> = batch
            .received()
            .map(|r| (r.frame.to_vec(), r.rx_time_ns))
            .collect();
        assert_eq!(got[1].0, tagged, "the VLAN tag is still put back");
        let (first, second) = (got[0].1, got[1].1);
        assert!(
            before <= first && first <= second && second <= sent,
            "receive times {first}, {second} outside the sends [{before}, {sent}]"
        );
        let gap_ns = u64::try_from(gap.as_nanos()).unwrap();
        assert!(
            second - first >= gap_ns,
            "the frames' times are {} ns apart, less than the {gap_ns} ns between their sends",
            second - first
        );
        assert!(
            read - second >= gap_ns,
            "the time is the kernel's receive time, not the read's"
        );
    });
}

#[test]
#[ignore = "needs root and network namespaces"]
fn allmulti_membership_lives_with_the_socket() {
    let ns = Netns::new(&["am"]);
    ns.run(0, || {
        local_veth();
        let ifindex = sys::if_nametoindex("d0").unwrap();
        let allmulti = || {
            let mut nl = Netlink::route().unwrap();
            let l = nl
                .links()
                .unwrap()
                .into_iter()
                .find(|l| l.index == ifindex)
                .unwrap();
            l.allmulti.expect("kernel reports IFLA_ALLMULTI")
        };
        assert_eq!(allmulti(), 0);
        let sock = PacketSocket::open(ifindex, &bpf::nd_filter()).unwrap();
        assert_eq!(allmulti(), 1);
        drop(sock);
        assert_eq!(allmulti(), 0, "membership must go with the socket");
    });
}

#[test]
#[ignore = "needs root and network namespaces"]
fn routes_are_idempotent_and_only_ours_are_removed() {
    let ns = Netns::new(&["rt"]);
    ns.run(0, || {
        local_veth();
        let ifindex = sys::if_nametoindex("d0").unwrap();
        let mut nl = Netlink::route().unwrap();
        let a: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::11".parse().unwrap();
        nl.replace_route(a, ifindex, ROUTE_PROTOCOL).unwrap();
        nl.replace_route(a, ifindex, ROUTE_PROTOCOL).unwrap();
        ip(&[
            "-6",
            "route",
            "add",
            "2001:db8::11/128",
            "dev",
            "d0",
            "proto",
            "static",
        ]);
        let ours = nl.routes_with_protocol(ROUTE_PROTOCOL).unwrap();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!(
            (ours[0].dst, ours[0].dst_len, ours[0].oif),
            (a, 128, ifindex)
        );
        // A route someone else installed is never removed by us.
        nl.delete_route(b, ifindex, ROUTE_PROTOCOL).unwrap();
        let out = Command::new("ip")
            .args(["-6", "route", "show", "2001:db8::11"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("2001:db8::11"));
        nl.delete_route(a, ifindex, ROUTE_PROTOCOL).unwrap();
        nl.delete_route(a, ifindex, ROUTE_PROTOCOL).unwrap(); // already gone: fine
        assert!(nl.routes_with_protocol(ROUTE_PROTOCOL).unwrap().is_empty());
    });
}

#[test]
#[ignore = "needs root and network namespaces"]
fn a_remove_for_the_port_an_address_left_keeps_its_new_route() {
    use super::counters::DriverCounters;
    use super::executor::RouteChange;
    use super::routes::{RoutePort, Routes};
    use crate::engine::PortId;
    let ns = Netns::new(&["rm"]);
    ns.run(0, || {
        local_veths(&[("d0", "d0p"), ("d1", "d1p")]);
        let ix = |n: &str| sys::if_nametoindex(n).unwrap();
        let (d0, d1) = (ix("d0"), ix("d1"));
        let ports = [
            RoutePort {
                name: "d0",
                ifindex: Some(d0),
            },
            RoutePort {
                name: "d1",
                ifindex: Some(d1),
            },
        ];
        let a: Ipv6Addr = "2001:db8::20".parse().unwrap();
        // An earlier run's route on d1, found at start.
        Netlink::route()
            .unwrap()
            .replace_route(a, d1, ROUTE_PROTOCOL)
            .unwrap();
        let mut routes = Routes::new(
            Netlink::route().unwrap(),
            std::sync::Arc::new(DriverCounters::default()),
        );
        assert_eq!(routes.reconcile(&ports).unwrap(), [(a, 1)]);
        // The restored binding on d0 routes it there, then the earlier run's route on d1
        // is removed as moved: the route on d0 stays.
        let (p0, p1) = (PortId(0), PortId(1));
        routes.apply(&RouteChange::Install { addr: a, port: p0 }, Some(ports[0]));
        routes.apply(&RouteChange::Remove { addr: a, port: p1 }, Some(ports[1]));
        let found = Netlink::route()
            .unwrap()
            .routes_with_protocol(ROUTE_PROTOCOL)
            .unwrap();
        let found: Vec<_> = found.iter().map(|r| (r.dst, r.oif)).collect();
        assert_eq!(found, [(a, d0)]);
    });
}

#[test]
#[ignore = "needs root and network namespaces"]
fn a_foreign_host_route_is_never_replaced_and_ours_moves() {
    let ns = Netns::new(&["rf"]);
    ns.run(0, || {
        local_veths(&[("d0", "d0p"), ("d1", "d1p")]);
        let (d0, d1) = (
            sys::if_nametoindex("d0").unwrap(),
            sys::if_nametoindex("d1").unwrap(),
        );
        let mut nl = Netlink::route().unwrap();
        let show = |a: &str| {
            let out = Command::new("ip")
                .args(["-6", "route", "show", a])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        // An administrator's route: looked up, left alone, reported with its protocol.
        ip(&[
            "-6",
            "route",
            "add",
            "2001:db8::11/128",
            "dev",
            "d0",
            "proto",
            "static",
        ]);
        let b: Ipv6Addr = "2001:db8::11".parse().unwrap();
        match nl.install_host_route(b, d1, ROUTE_PROTOCOL).unwrap() {
            Install::Foreign(Some(r)) => assert_eq!((r.protocol, r.oif), (4, d0)),
            other => panic!("expected a foreign route, got {other:?}"),
        }
        assert!(
            show("2001:db8::11").contains("dev d0 proto static"),
            "{}",
            show("2001:db8::11")
        );
        // The same with a different metric (the lookup finds it, not the create).
        ip(&[
            "-6",
            "route",
            "add",
            "2001:db8::12/128",
            "dev",
            "d0",
            "metric",
            "5",
        ]);
        let c: Ipv6Addr = "2001:db8::12".parse().unwrap();
        assert!(matches!(
            nl.install_host_route(c, d1, ROUTE_PROTOCOL).unwrap(),
            Install::Foreign(Some(_))
        ));
        assert!(nl.routes_with_protocol(ROUTE_PROTOCOL).unwrap().is_empty());
        // Ours: created, then moved to another port by replacing it (a guest moving, or
        // an earlier run's route).
        let a: Ipv6Addr = "2001:db8::10".parse().unwrap();
        assert_eq!(
            nl.install_host_route(a, d0, ROUTE_PROTOCOL).unwrap(),
            Install::Done
        );
        assert_eq!(
            nl.install_host_route(a, d1, ROUTE_PROTOCOL).unwrap(),
            Install::Done
        );
        let ours = nl.routes_with_protocol(ROUTE_PROTOCOL).unwrap();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!((ours[0].dst, ours[0].oif), (a, d1));
    });
}

#[test]
#[ignore = "needs root and network namespaces"]
fn monitor_reports_down_up_delete_and_recreate() {
    let ns = Netns::new(&["mon"]);
    ns.run(0, || {
        ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d0p"]);
        let (mut mon, _route_events) = Monitor::open().unwrap();
        let mut events = Vec::new();
        let mut drain = |mon: &mut Monitor| {
            let end = Instant::now() + Duration::from_millis(300);
            while Instant::now() < end {
                events.extend(mon.poll(50).unwrap());
            }
        };
        let old = sys::if_nametoindex("d0").unwrap();
        ip(&["link", "set", "d0", "up"]);
        ip(&["link", "set", "d0p", "up"]);
        ip(&["link", "set", "d0", "mtu", "1400"]);
        ip(&["link", "del", "d0"]);
        ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d0p"]);
        drain(&mut mon);
        let new = sys::if_nametoindex("d0").unwrap();
        assert_ne!(old, new);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, LinkUpdate::NewLink(l) if l.index == old && l.is_running()))
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, LinkUpdate::NewLink(l) if l.index == old && l.mtu == 1400))
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, LinkUpdate::DelLink(l) if l.index == old))
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, LinkUpdate::NewLink(l) if l.index == new && l.name == "d0"))
        );
    });
}

#[test]
#[ignore = "needs root and network namespaces"]
fn the_main_table_is_dumped_and_its_route_changes_reported_while_subscribed() {
    let ns = Netns::new(&["rtmon"]);
    ns.run(0, || {
        ip(&["tuntap", "add", "dev", "tn0", "mode", "tun"]);
        ip(&["link", "set", "tn0", "up"]);
        let tn0 = sys::if_nametoindex("tn0").unwrap();
        let (mut mon, mut route_events) = Monitor::open().unwrap();
        route_events.want(true);
        ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:1::100/128",
            "dev",
            "tn0",
            "metric",
            "7",
        ]);
        ip(&["-6", "route", "add", "unreachable", "2001:db8:1::1:0/112"]);
        ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:1::5/128",
            "dev",
            "tn0",
            "table",
            "100",
        ]);
        let mut events = Vec::new();
        let end = Instant::now() + Duration::from_millis(300);
        while Instant::now() < end {
            events.extend(mon.poll(50).unwrap());
        }
        let routes: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                LinkUpdate::Route { route, present } => Some((*route, *present)),
                _ => None,
            })
            .collect();
        let peer: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
        assert!(
            routes.iter().any(|(r, p)| *p
                && r.dst == peer
                && r.oif == tn0
                && r.priority == 7
                && r.unicast),
            "{routes:?}"
        );
        assert!(
            routes.iter().any(|(r, _)| r.dst_len == 112 && !r.unicast),
            "{routes:?}"
        );
        assert!(
            routes.iter().all(|(r, _)| r.in_main_table()),
            "table 100 is not reported: {routes:?}"
        );
        let dump = Netlink::route().unwrap().main_routes().unwrap();
        assert!(
            dump.iter().any(|r| r.dst == peer && r.oif == tn0),
            "{dump:?}"
        );
        assert!(
            !dump
                .iter()
                .any(|r| r.dst == "2001:db8:1::5".parse::<Ipv6Addr>().unwrap()),
            "{dump:?}"
        );
        ip(&["-6", "route", "del", "2001:db8:1::100/128", "dev", "tn0"]);
        let end = Instant::now() + Duration::from_millis(300);
        let mut gone = false;
        while Instant::now() < end && !gone {
            gone = mon.poll(50).unwrap().iter().any(
                |e| matches!(e, LinkUpdate::Route { route, present: false } if route.dst == peer),
            );
        }
        assert!(gone, "RTM_DELROUTE reported");
        // Without a routed port the relay leaves the group: route changes cost it nothing.
        route_events.want(false);
        ip(&["-6", "route", "add", "2001:db8:1::200/128", "dev", "tn0"]);
        let end = Instant::now() + Duration::from_millis(300);
        let mut heard = Vec::new();
        while Instant::now() < end {
            heard.extend(mon.poll(50).unwrap());
        }
        assert!(
            !heard.iter().any(|e| matches!(e, LinkUpdate::Route { .. })),
            "route change heard after leaving the group: {heard:?}"
        );
    });
}

#[test]
#[ignore = "needs root and network namespaces"]
fn monitor_overrun_reports_resync_and_keeps_following() {
    let ns = Netns::new(&["enobufs"]);
    ns.run(0, || {
        let (mut mon, _route_events) = Monitor::open().unwrap();
        // The kernel's minimum: a few messages fit, a burst of link changes does not.
        mon.set_receive_buffer(1).unwrap();
        let batch: String = (0..40)
            .map(|i| format!("link add ov{i} type veth peer name ov{i}p\n"))
            .collect();
        let file = std::env::temp_dir().join(format!("ndpr-enobufs-{}", std::process::id()));
        std::fs::write(&file, batch).unwrap();
        ip(&["-batch", file.to_str().unwrap()]);
        let _ = std::fs::remove_file(&file);
        let mut first = Vec::new();
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end && !first.iter().any(|u| matches!(u, LinkUpdate::Resync)) {
            first.extend(mon.poll(50).unwrap());
        }
        assert!(
            first.iter().any(|u| matches!(u, LinkUpdate::Resync)),
            "80 new links into a minimal buffer must overrun it (ENOBUFS)"
        );
        // Drain what is left, then the monitor still reports new changes.
        let end = Instant::now() + Duration::from_millis(300);
        while Instant::now() < end {
            mon.poll(50).unwrap();
        }
        ip(&["link", "set", "ov0", "mtu", "1400"]);
        let mut after = Vec::new();
        let end = Instant::now() + Duration::from_secs(2);
        let changed =
            |u: &LinkUpdate| matches!(u, LinkUpdate::NewLink(l) if l.name == "ov0" && l.mtu == 1400);
        while Instant::now() < end && !after.iter().any(changed) {
            after.extend(mon.poll(50).unwrap());
        }
        assert!(
            after.iter().any(changed),
            "events after the overrun still arrive: {} updates",
            after.len()
        );
    });
}

#[test]
#[ignore = "needs root and network namespaces"]
fn guard_table_is_installed_replaced_and_removed() {
    let ns = Netns::new(&["guard"]);
    ns.run(0, || {
        ip(&["link", "add", "gx", "type", "veth", "peer", "name", "gy"]);
        let list = || {
            let out = Command::new("nft")
                .args(["list", "table", "netdev", "ndprelay"])
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        let mut g = Guard::install(&["gx".into(), "gy".into()]).unwrap();
        let (ok, text) = list();
        assert!(ok, "table missing");
        assert!(text.contains("hook ingress device \"gy\""), "{text}");
        assert!(text.contains("fib daddr type != local"), "{text}");
        assert!(text.contains("icmpv6 type 133-137"), "{text}");
        // A second install (a restart after a crash) replaces, not duplicates.
        let g2 = Guard::install(&["gx".into()]).unwrap();
        let (_, text) = list();
        assert!(!text.contains("gy"), "{text}");
        std::mem::forget(g2);
        g.remove();
        assert!(!list().0, "table left behind");
    });
}

/// ndisc6's answer for `target` asked on `ndpru-b` in ns 1: the Target Link-Layer
/// Address it printed, or `None` when nobody answered.
fn ndisc6(ns: &Netns, target: &str) -> Option<String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(1),
            "ndisc6",
            "-1",
            "-r",
            "1",
            "-w",
            "400",
        ])
        .args([target, "ndpru-b"])
        .output()
        .expect("ndisc6 runs (apt-get install ndisc6)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.contains("Target link-layer address"))
        .and_then(|l| l.split_whitespace().last())
        .map(str::to_lowercase)
}

#[test]
#[ignore = "needs root (CAP_BPF, namespaces)"]
fn the_kernel_answers_for_fresh_targets_only() {
    use super::kernel_answer::KernelAnswers;
    let ns = Netns::new(&["ka0", "ka1"]);
    veth_pair(&ns);
    // A usable source address at once: an NS from :: is DAD, which is never answered.
    ip(&[
        "-n",
        ns.name(1),
        "addr",
        "add",
        "fe80::b/64",
        "dev",
        "ndpru-b",
        "nodad",
    ]);
    let (mut answers, ifindex) = ns.run(0, || {
        let ifindex = sys::if_nametoindex("ndpru-a").expect("ndpru-a");
        let mut k = KernelAnswers::load(16).expect("program loads");
        let errors = k.sync(&[("ndpru-a", ifindex)]);
        assert!(errors.is_empty(), "{errors:?}");
        (k, ifindex)
    });
    let mac = crate::wire::Mac([2, 0, 0x5e, 0, 0x53, 0x42]);
    answers
        .answer(
            ifindex,
            "2001:db8::5".parse().unwrap(),
            mac,
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(
        ndisc6(&ns, "2001:db8::5").as_deref(),
        Some("02:00:5e:00:53:42")
    );
    assert_eq!(ndisc6(&ns, "2001:db8::6"), None, "a target not in the map");
    answers
        .answer(ifindex, "2001:db8::6".parse().unwrap(), mac, Duration::ZERO)
        .unwrap();
    assert_eq!(ndisc6(&ns, "2001:db8::6"), None, "an expired entry");
    answers.forget("2001:db8::5".parse().unwrap());
    assert_eq!(ndisc6(&ns, "2001:db8::5"), None, "a forgotten target");
}

#[test]
#[ignore = "needs root (CAP_BPF, namespaces)"]
fn the_kernel_relays_ns_and_the_bound_guests_answer_as_the_engine_would() {
    use super::kernel_relay::{KernelRelays, NaPath, NsPath};
    use crate::wire::{Mac, NaFlags, NdMessage, OptionRepr, emit_nd, solicited_node};
    let ns = Netns::new(&["kr"]);
    ns.run(0, || {
        // The guest's port ga (peer gb plays the guest), the solicitor's port sa (peer sb
        // plays the solicitor).
        local_veths(&[("ga", "gb"), ("sa", "sb")]);
        let index = |n: &str| sys::if_nametoindex(n).unwrap();
        let links = Netlink::route().unwrap().links().unwrap();
        let mac_of = |n: &str| {
            links
                .iter()
                .find(|l| l.name == n)
                .and_then(|l| l.mac)
                .unwrap()
        };
        let (ga, sa) = (index("ga"), index("sa"));
        let mut relays = KernelRelays::load(16).expect("program loads");
        let errors = relays.sync(&[("ga", ga), ("sa", sa)]);
        assert!(errors.is_empty(), "{errors:?}");
        let guest = PacketSocket::open(index("gb"), &bpf::nd_filter())
            .unwrap()
            .0;
        let asker = PacketSocket::open(index("sb"), &bpf::nd_filter())
            .unwrap()
            .0;
        // What `to` receives when `from` sends `frame`.
        let relayed = |from: &PacketSocket, to: &PacketSocket, frame: &[u8]| {
            let _ = collect(to, Duration::ZERO);
            from.send(frame).unwrap();
            collect(to, Duration::from_millis(300))
        };

        let target: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let solicitor: Ipv6Addr = "fe80::1".parse().unwrap();
        let (guest_mac, solicitor_mac) = (mac_of("gb"), mac_of("sb"));
        let other = Mac([2, 0, 0x5e, 0, 0x53, 0x99]);

        // NS from the solicitor to the guest's solicited-node group.
        let group = solicited_node(target);
        let ns = |eth_src: Mac, eth_dst: Mac, src: Ipv6Addr, slla: Mac| {
            let message = NdMessage::NeighborSolicit {
                target_addr: target,
            };
            emit_nd(
                eth_src,
                eth_dst,
                src,
                group,
                &message,
                &[OptionRepr::SourceLla(slla)],
            )
        };
        let ns_path = NsPath {
            from: sa,
            target,
            to: ga,
            mac: mac_of("ga"),
            guest_mac,
        };
        let ask = ns(
            solicitor_mac,
            Mac::ipv6_multicast(group),
            solicitor,
            solicitor_mac,
        );
        assert!(relayed(&asker, &guest, &ask).is_empty(), "no NS entry yet");
        relays.relay_ns(&ns_path, Duration::from_secs(30)).unwrap();
        let expected = ns(ns_path.mac, guest_mac, solicitor, ns_path.mac);
        assert_eq!(
            relayed(&asker, &guest, &ask),
            [expected],
            "the engine's relayed NS"
        );
        for (frame, why) in [
            (
                ns(solicitor_mac, other, solicitor, solicitor_mac),
                "to another host's MAC",
            ),
            (
                ns(
                    solicitor_mac,
                    Mac::ipv6_multicast(group),
                    Ipv6Addr::UNSPECIFIED,
                    solicitor_mac,
                ),
                "from :: (DAD)",
            ),
        ] {
            assert!(
                relayed(&asker, &guest, &frame).is_empty(),
                "NS relayed {why}"
            );
        }
        relays.forget_ns(target);
        assert!(
            relayed(&asker, &guest, &ask).is_empty(),
            "forgotten NS entry"
        );

        // The guest's NA back to the solicitor.
        let na_path = NaPath {
            from: ga,
            target,
            solicitor,
            guest_mac,
            to: sa,
            mac: mac_of("sa"),
            solicitor_mac,
        };
        let na = |eth_src: Mac, eth_dst: Mac, dst: Ipv6Addr, tlla: Mac| {
            let message = NdMessage::NeighborAdvert {
                flags: NaFlags::SOLICITED | NaFlags::OVERRIDE,
                target_addr: target,
            };
            emit_nd(
                eth_src,
                eth_dst,
                target,
                dst,
                &message,
                &[OptionRepr::TargetLla(tlla)],
            )
        };
        let answer = na(guest_mac, mac_of("ga"), solicitor, guest_mac);
        assert!(
            relayed(&guest, &asker, &answer).is_empty(),
            "no NA entry yet"
        );
        relays.relay_na(&na_path, Duration::from_secs(30)).unwrap();
        let expected = na(na_path.mac, solicitor_mac, solicitor, na_path.mac);
        assert_eq!(
            relayed(&guest, &asker, &answer),
            [expected],
            "the engine's relayed NA"
        );

        let mut bad_checksum = answer.clone();
        bad_checksum[14 + 40 + 2] ^= 1;
        for (frame, why) in [
            (na(other, mac_of("ga"), solicitor, other), "another MAC"),
            (
                na(guest_mac, mac_of("ga"), solicitor, other),
                "another TLLA",
            ),
            (na(guest_mac, other, solicitor, guest_mac), "not to our MAC"),
            (
                na(
                    guest_mac,
                    mac_of("ga"),
                    "fe80::2".parse().unwrap(),
                    guest_mac,
                ),
                "another solicitor",
            ),
            (bad_checksum, "a bad checksum"),
        ] {
            assert!(
                relayed(&guest, &asker, &frame).is_empty(),
                "NA relayed with {why}"
            );
        }
        relays.relay_na(&na_path, Duration::ZERO).unwrap();
        assert!(
            relayed(&guest, &asker, &answer).is_empty(),
            "an expired NA entry"
        );
        relays.relay_na(&na_path, Duration::from_secs(30)).unwrap();
        assert_eq!(relayed(&guest, &asker, &answer).len(), 1, "renewed");
        relays.forget_all_na();
        assert!(
            relayed(&guest, &asker, &answer).is_empty(),
            "forgotten NA entries"
        );
    });
}

/// The two ports of the in-kernel NS relay tests, in the current namespace: the guest's
/// port `ga` (peer `gb`), the solicitor's port `sa` (peer `sb`), packet sockets on both
/// peers, an NS for 2001:db8::10 from `solicitor_mac` as `sb` sends it, and the path the
/// relay is told for it (from `sa` to `ga`).
struct NsRelayPorts {
    guest: PacketSocket,
    asker: PacketSocket,
    ga: i32,
    sa: i32,
    ask: Vec<u8>,
    path: super::kernel_relay::NsPath,
}

fn ns_relay_ports(solicitor_mac: Option<crate::wire::Mac>) -> NsRelayPorts {
    use crate::wire::{Mac, NdMessage, OptionRepr, emit_nd, solicited_node};
    local_veths(&[("ga", "gb"), ("sa", "sb")]);
    let index = |n: &str| sys::if_nametoindex(n).unwrap();
    let (ga, sa) = (index("ga"), index("sa"));
    let open = |n: &str| PacketSocket::open(index(n), &bpf::nd_filter()).unwrap().0;
    let target: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let solicitor_mac = solicitor_mac.unwrap_or_else(|| link_mac("sb"));
    let group = solicited_node(target);
    let ask = emit_nd(
        solicitor_mac,
        Mac::ipv6_multicast(group),
        "fe80::1".parse().unwrap(),
        group,
        &NdMessage::NeighborSolicit {
            target_addr: target,
        },
        &[OptionRepr::SourceLla(solicitor_mac)],
    );
    let path = super::kernel_relay::NsPath {
        from: sa,
        target,
        to: ga,
        mac: Mac([2, 0, 0x5e, 0, 0x53, 2]),
        // gb's own MAC, or its socket would not take the relayed NS (other host).
        guest_mac: link_mac("gb"),
    };
    NsRelayPorts {
        guest: open("gb"),
        asker: open("sb"),
        ga,
        sa,
        ask,
        path,
    }
}

#[test]
#[ignore = "needs root (CAP_BPF, namespaces)"]
fn vlan_tagged_nd_passes_both_programs_untouched() {
    use super::kernel_answer::KernelAnswers;
    use super::kernel_relay::KernelRelays;
    let ns = Netns::new(&["kv"]);
    ns.run(0, || {
        // sb's own MAC as the solicitor's: the fast path answers to the SLLA, which sb
        // must accept.
        let NsRelayPorts {
            guest,
            asker,
            ga,
            sa,
            ask,
            path,
        } = ns_relay_ports(None);
        let tagged = vlan_tagged(&ask, 0x8100, 100);
        // What `to` receives when the solicitor sends `frame`.
        let relayed = |to: &PacketSocket, frame: &[u8]| {
            let _ = collect(to, Duration::ZERO);
            asker.send(frame).unwrap();
            collect(to, Duration::from_millis(300))
        };

        let mut relays = KernelRelays::load(16).expect("program loads");
        assert!(relays.sync(&[("ga", ga), ("sa", sa)]).is_empty());
        relays.relay_ns(&path, Duration::from_secs(30)).unwrap();
        assert!(relayed(&guest, &tagged).is_empty(), "tagged NS relayed");
        assert_eq!(relayed(&guest, &ask).len(), 1, "the untagged twin");
        drop(relays);

        let mut answers = KernelAnswers::load(16).expect("program loads");
        assert!(answers.sync(&[("sa", sa)]).is_empty());
        answers
            .answer(sa, path.target, path.mac, Duration::from_secs(30))
            .unwrap();
        assert!(relayed(&asker, &tagged).is_empty(), "tagged NS answered");
        assert_eq!(relayed(&asker, &ask).len(), 1, "the untagged twin");
    });
}

#[test]
#[ignore = "needs root (CAP_BPF, namespaces)"]
fn our_program_runs_before_one_attached_earlier_that_drops_everything() {
    use super::kernel_relay::KernelRelays;
    use super::sys::ebpf::{self, EbpfInsn};
    use crate::wire::Mac;
    let ns = Netns::new(&["kh"]);
    let name = ns.name(0).to_owned();
    ns.run(0, move || {
        let NsRelayPorts {
            guest,
            asker,
            ga,
            sa,
            ask,
            path,
        } = ns_relay_ports(Some(Mac([2, 0, 0x5e, 0, 0x53, 1])));
        // Another program on the solicitor's port, there first: it drops every frame
        // (r0 = TCX_DROP; exit). Without tcx (before 6.6), where the relay falls back to
        // a tc filter at pref 1, the other one is a tc filter at `tc`'s default pref
        // (49152) that drops every frame (classic BPF `ret TC_ACT_SHOT`).
        let drop_all = [
            EbpfInsn {
                code: 0xb7,
                regs: 0,
                off: 0,
                imm: 2,
            },
            EbpfInsn {
                code: 0x95,
                regs: 0,
                off: 0,
                imm: 0,
            },
        ];
        let other = ebpf::load_sched_cls(&drop_all, "other").expect("program loads");
        let _other_link = if kernel_has_tcx() {
            Some(ebpf::attach_tcx_ingress(&other, sa).expect("attaches"))
        } else {
            for args in [
                "qdisc add dev sa clsact",
                "filter add dev sa ingress pref 49152 protocol all bpf da bytecode 1,6_0_0_2",
            ] {
                let st = std::process::Command::new("ip")
                    .args(["netns", "exec", &name, "tc"])
                    .args(args.split(' ').map(|a| a.replace('_', " ")))
                    .status()
                    .expect("tc runs");
                assert!(st.success(), "tc {args}");
            }
            None
        };

        let mut relays = KernelRelays::load(16).expect("program loads");
        assert!(relays.sync(&[("ga", ga), ("sa", sa)]).is_empty());
        relays.relay_ns(&path, Duration::from_secs(30)).unwrap();
        let _ = collect(&guest, Duration::ZERO);
        asker.send(&ask).unwrap();
        assert_eq!(
            collect(&guest, Duration::from_millis(300)).len(),
            1,
            "the NS was relayed: our program ran first"
        );
    });
}

#[test]
#[ignore = "needs root (CAP_BPF, namespaces)"]
fn a_full_relay_map_makes_room_only_from_expired_entries() {
    use super::kernel_relay::{KernelRelays, NaPath};
    use crate::wire::Mac;
    let ns = Netns::new(&["krf"]);
    ns.run(0, || {
        local_veth();
        let d0 = sys::if_nametoindex("d0").unwrap();
        let mut relays = KernelRelays::load(1).expect("program loads");
        assert!(relays.sync(&[("d0", d0)]).is_empty());
        let path = |last: u8| NaPath {
            from: d0,
            target: "2001:db8::10".parse().unwrap(),
            solicitor: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(last)),
            guest_mac: Mac([2, 0, 0, 0, 0, 1]),
            to: d0,
            mac: Mac([2, 0, 0, 0, 0, 2]),
            solicitor_mac: Mac([2, 0, 0, 0, 0, 3]),
        };
        let long = Duration::from_secs(30);
        relays.relay_na(&path(1), long).unwrap();
        relays
            .relay_na(&path(1), long)
            .expect("replacing needs no room");
        assert!(
            relays.relay_na(&path(2), long).is_err(),
            "full of live entries"
        );
        relays.relay_na(&path(1), Duration::ZERO).unwrap();
        relays
            .relay_na(&path(2), long)
            .expect("the expired entry made room");
        assert!(relays.relay_na(&path(3), long).is_err());
    });
}

/// This kernel's (major, minor) version.
fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (v.next().unwrap_or(0), v.next().unwrap_or(0))
}

/// Whether this kernel has tcx (6.6+); before, the programs run as tc filters.
fn kernel_has_tcx() -> bool {
    kernel_version() >= (6, 6)
}

/// Whether this kernel may gate every `bpf()` call on CAP_BPF: some before Linux 6.5 do
/// when `kernel.unprivileged_bpf_disabled` is set. Not all of them: the change that
/// checks only object creation there went into stable kernels too (Debian's 6.1.192
/// lets a thread without CAP_BPF look up a map), so only the probe can tell.
fn kernel_may_gate_every_bpf_call() -> bool {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        .map_or(0, |s| s.trim().parse::<u32>().unwrap_or(0));
    kernel_version() < (6, 5) && disabled != 0
}

#[test]
#[ignore = "needs root"]
fn the_start_up_probe_finds_whether_map_access_needs_cap_bpf() {
    use super::kernel_answer::KernelAnswers;
    use super::kernel_relay::KernelRelays;
    use super::privileges::map_access_needs_bpf;
    use super::programs::KernelWitness;
    let answers = KernelAnswers::load(4).expect("program loads");
    let relays = KernelRelays::load(4).expect("program loads");
    let witness = KernelWitness::of(Some(&answers), Some(&relays), Vec::new());
    let needs = map_access_needs_bpf(|| witness.probe());
    if !kernel_may_gate_every_bpf_call() {
        assert!(
            !needs,
            "this kernel checks CAP_BPF only when maps are created"
        );
    }
    // What the daemon does with the answer works: without it a thread with no capability
    // reads the maps; with it one that kept only CAP_BPF does, and one without fails.
    let on_a_thread = |keep_bpf: bool| {
        std::thread::scope(|s| {
            s.spawn(|| {
                if keep_bpf {
                    let keep = [caps::Capability::CAP_BPF].into_iter().collect();
                    caps::set(None, caps::CapSet::Effective, &keep).unwrap();
                    caps::set(None, caps::CapSet::Permitted, &keep).unwrap();
                } else {
                    super::privileges::drop_all_on_this_thread();
                }
                witness.probe().map_err(|e| e.raw_os_error())
            })
            .join()
            .unwrap()
        })
    };
    if needs {
        assert_eq!(on_a_thread(false), Err(Some(libc::EPERM)));
        assert_eq!(on_a_thread(true), Ok(()));
    } else {
        assert_eq!(on_a_thread(false), Ok(()));
    }
    // The probe's own thread gave up every capability; this one still reads the maps.
    assert!(witness.probe().is_ok());
}

#[test]
#[cfg(feature = "libpcap")]
#[ignore = "needs root and network namespaces"]
fn the_libpcap_backend_counts_what_libpcap_dropped() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use super::counters::DriverCounters;
    use super::ports::{CaptureFilter, FrameSink, PortIo, Received};

    /// Takes nothing until opened: the capture thread waits in it while libpcap's
    /// buffer overflows.
    #[derive(Default)]
    struct Gate {
        open: AtomicBool,
        delivered: AtomicU64,
    }
    impl FrameSink for Gate {
        fn frames(&self, _: usize, _: u64, frames: &[Received<'_>]) {
            while !self.open.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.delivered
                .fetch_add(frames.len() as u64, Ordering::Relaxed);
        }
    }

    let ns = Netns::new(&["pcapdrop"]);
    ns.run(0, || {
        local_veth();
        let peer = PacketSocket::open(sys::if_nametoindex("d0p").unwrap(), &bpf::nd_filter())
            .unwrap()
            .0;
        let gate = Arc::new(Gate::default());
        let counters = Arc::new(DriverCounters::default());
        let filter = CaptureFilter {
            bpf: bpf::nd_filter(),
            pcap: bpf::nd_pcap_expr(),
            timestamps: true,
        };
        let ifindex = sys::if_nametoindex("d0").unwrap();
        let sink: Arc<Gate> = Arc::clone(&gate);
        let io = PortIo::open("d0", ifindex, 0, 1, &filter, sink, Arc::clone(&counters)).unwrap();
        let sent = 40_000;
        let solicit = frame([0x33, 0x33, 0xff, 0, 0, 1], 58, &ns_payload(1));
        for _ in 0..sent {
            while peer.send(&solicit).is_err() {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        // Take everything now: the reader looks at libpcap's counts every 32 frames
        // (its read timeout does not fire here: libpcap's poll waits for a frame).
        gate.open.store(true, Ordering::Relaxed);
        let mut delivered = 0;
        loop {
            std::thread::sleep(Duration::from_millis(1000));
            let now = gate.delivered.load(Ordering::Relaxed);
            if now == delivered {
                break;
            }
            delivered = now;
        }
        // One more frame wakes the reader to see its stop flag.
        let stopping = std::thread::spawn(move || drop(io));
        std::thread::sleep(Duration::from_millis(50));
        peer.send(&solicit).unwrap();
        stopping.join().unwrap();
        let delivered = gate.delivered.load(Ordering::Relaxed) - 1;
        let dropped = counters.rx_kernel_drops.load(Ordering::Relaxed);
        eprintln!("{sent} sent: {delivered} delivered, {dropped} counted as dropped");
        assert!(dropped > 0, "nothing counted ({delivered} delivered)");
        assert_eq!(delivered + dropped, sent, "each frame delivered or counted");
    });
}

/// Receives frames on `sock` (timestamps on) for up to `for_`, with their
/// `SCM_TIMESTAMPNS`, until one matches `want`.
fn recv_stamped(
    sock: &PacketSocket,
    for_: Duration,
    want: impl Fn(&[u8]) -> bool,
) -> Option<(Vec<u8>, u64)> {
    let mut batch = sys::RecvBatch::new(8, 2048);
    let end = Instant::now() + for_;
    while Instant::now() < end {
        if sys::poll_readable(sock, 50).unwrap() {
            while sock.recv_batch_now(&mut batch).is_ok() {
                if let Some(r) = batch.received().find(|r| want(r.frame)) {
                    return Some((r.frame.to_vec(), r.rx_time_ns));
                }
            }
        }
    }
    None
}

/// An NS for `target` from `mac` / fe80::b to the target's solicited-node group.
fn ns_for(mac: crate::wire::Mac, target: Ipv6Addr) -> Vec<u8> {
    use crate::wire::{Mac, NdMessage, OptionRepr, emit_nd, solicited_node};
    let group = solicited_node(target);
    emit_nd(
        mac,
        Mac::ipv6_multicast(group),
        "fe80::b".parse().unwrap(),
        group,
        &NdMessage::NeighborSolicit {
            target_addr: target,
        },
        &[OptionRepr::SourceLla(mac)],
    )
}

/// The target of an NS or NA frame without extension headers.
fn nd_target(frame: &[u8]) -> Option<Ipv6Addr> {
    let t: [u8; 16] = frame.get(62..78)?.try_into().ok()?;
    Some(Ipv6Addr::from(t))
}

// The daemon asks "did a program act on this very frame" by comparing the frame's
// capture timestamp with the one the program stored in the entry it used
// (`handled_tstamp`); these two tests check on real devices that the program's
// `__sk_buff->tstamp` is the `SCM_TIMESTAMPNS` the capture socket gets for the frame.

#[test]
#[ignore = "needs root (CAP_BPF, namespaces)"]
fn the_fast_path_marks_the_ns_it_answered_with_the_captures_timestamp_on_a_veth() {
    use super::kernel_answer::KernelAnswers;
    let ns = Netns::new(&["kt0", "kt1"]);
    veth_pair(&ns);
    let target: Ipv6Addr = "2001:db8::5".parse().unwrap();
    let unknown: Ipv6Addr = "2001:db8::6".parse().unwrap();
    // The uplink ndpru-a in ns 0: the program and a capture socket with timestamps.
    let (mut answers, ifindex, capture) = ns.run(0, || {
        let ifindex = sys::if_nametoindex("ndpru-a").expect("ndpru-a");
        let mut k = KernelAnswers::load(16).expect("program loads");
        assert!(k.sync(&[("ndpru-a", ifindex)]).is_empty());
        let capture = PacketSocket::open(ifindex, &bpf::nd_filter()).unwrap().0;
        (k, ifindex, capture)
    });
    answers
        .answer(
            ifindex,
            target,
            crate::wire::Mac([2, 0, 0x5e, 0, 0x53, 0x42]),
            Duration::from_secs(30),
        )
        .unwrap();
    // The asker in ns 1, across the namespace boundary.
    let asker = ns.run(1, || {
        let i = sys::if_nametoindex("ndpru-b").expect("ndpru-b");
        PacketSocket::open(i, &bpf::nd_filter()).unwrap().0
    });
    // Timestamps switch on through a deferred work item: let it run.
    std::thread::sleep(Duration::from_millis(100));
    let mac_b = crate::wire::Mac([2, 0, 0, 0, 0xbb, 1]);
    for round in 0..3 {
        asker.send(&ns_for(mac_b, target)).unwrap();
        let (_, stamp) = recv_stamped(&capture, Duration::from_secs(2), |f| {
            f.get(54) == Some(&135) && nd_target(f) == Some(target)
        })
        .expect("the capture sees the NS");
        let handled = answers.handled_tstamp(ifindex, target);
        assert_ne!(stamp, 0, "round {round}: the capture's SCM_TIMESTAMPNS");
        assert_eq!(
            handled,
            Some(stamp),
            "round {round}: the program's __sk_buff->tstamp against SCM_TIMESTAMPNS"
        );
        assert!(answers.witness().answered(ifindex, target, stamp).unwrap());
        eprintln!(
            "veth across namespaces, round {round}: SCM_TIMESTAMPNS {stamp}, handled_tstamp {handled:?}"
        );
    }
    // An NS it did not answer leaves the entry's word as it was.
    let before = answers.handled_tstamp(ifindex, target);
    asker.send(&ns_for(mac_b, unknown)).unwrap();
    let (_, stamp) = recv_stamped(&capture, Duration::from_secs(2), |f| {
        nd_target(f) == Some(unknown)
    })
    .expect("the capture sees the other NS");
    assert!(!answers.witness().answered(ifindex, target, stamp).unwrap());
    assert!(!answers.witness().answered(ifindex, unknown, stamp).unwrap());
    assert_eq!(answers.handled_tstamp(ifindex, target), before);
}

#[test]
#[ignore = "needs root (CAP_BPF, namespaces)"]
fn the_relay_marks_what_it_relayed_with_the_captures_timestamp_on_a_bridge() {
    use super::kernel_relay::{KernelRelays, NaPath, NsPath};
    use crate::wire::{Mac, NaFlags, NdMessage, OptionRepr, emit_nd};
    let ns = Netns::new(&["kb0", "kb1"]);
    let (n0, n1) = (ns.name(0).to_owned(), ns.name(1).to_owned());
    // ns 0: bridge br0 with port p0, whose peer p1 is in ns 1 (the solicitor); the
    // guest's port ga with peer gb, also in ns 0.
    ip(&[
        "-n",
        &n0,
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    ]);
    ip(&[
        "link", "add", "p0", "netns", &n0, "type", "veth", "peer", "name", "p1", "netns", &n1,
    ]);
    ip(&["-n", &n0, "link", "set", "p0", "master", "br0"]);
    for dev in ["br0", "p0"] {
        ip(&["-n", &n0, "link", "set", dev, "up"]);
    }
    ip(&["-n", &n1, "link", "set", "p1", "up"]);
    let target: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let solicitor: Ipv6Addr = "fe80::b".parse().unwrap();
    let (mut relays, br0, ga, capture, guest, br_mac, guest_mac) = ns.run(0, || {
        local_veths(&[("ga", "gb")]);
        let index = |n: &str| sys::if_nametoindex(n).unwrap();
        let (br0, ga) = (index("br0"), index("ga"));
        let mut k = KernelRelays::load(16).expect("program loads");
        assert!(k.sync(&[("br0", br0), ("ga", ga)]).is_empty());
        let capture = PacketSocket::open(br0, &bpf::nd_filter()).unwrap().0;
        let guest = PacketSocket::open(index("gb"), &bpf::nd_filter())
            .unwrap()
            .0;
        (k, br0, ga, capture, guest, link_mac("br0"), link_mac("gb"))
    });
    let ns_path = NsPath {
        from: br0,
        target,
        to: ga,
        mac: Mac([2, 0, 0x5e, 0, 0x53, 2]),
        guest_mac,
    };
    relays.relay_ns(&ns_path, Duration::from_secs(30)).unwrap();
    let asker = ns.run(1, || {
        let i = sys::if_nametoindex("p1").expect("p1");
        PacketSocket::open(i, &bpf::nd_filter()).unwrap().0
    });
    let asker_mac = ns.run(1, || link_mac("p1"));
    std::thread::sleep(Duration::from_millis(100));
    for round in 0..3 {
        asker.send(&ns_for(asker_mac, target)).unwrap();
        let (_, stamp) = recv_stamped(&capture, Duration::from_secs(2), |f| {
            f.get(54) == Some(&135) && nd_target(f) == Some(target)
        })
        .expect("the bridge's capture sees the NS");
        recv_stamped(&guest, Duration::from_secs(2), |f| f.get(54) == Some(&135))
            .expect("the guest gets the relayed NS");
        let handled = relays.ns_handled_tstamp(br0, target);
        assert_ne!(stamp, 0, "round {round}: the capture's SCM_TIMESTAMPNS");
        assert_eq!(
            handled,
            Some(stamp),
            "round {round}: the program's __sk_buff->tstamp on br0 against SCM_TIMESTAMPNS"
        );
        assert!(relays.witness().relayed_ns(br0, target, stamp).unwrap());
        eprintln!(
            "bridge br0 (NS from a port), round {round}: SCM_TIMESTAMPNS {stamp}, handled_tstamp {handled:?}"
        );
    }

    // The guest's NA back, arriving on a veth whose peer is in the same namespace.
    let na_path = NaPath {
        from: ga,
        target,
        solicitor,
        guest_mac,
        to: br0,
        mac: br_mac,
        solicitor_mac: asker_mac,
    };
    relays.relay_na(&na_path, Duration::from_secs(30)).unwrap();
    let ga_capture = ns.run(0, move || {
        PacketSocket::open(ga, &bpf::nd_filter()).unwrap().0
    });
    let ga_mac = ns.run(0, || link_mac("ga"));
    let na = emit_nd(
        guest_mac,
        ga_mac,
        target,
        solicitor,
        &NdMessage::NeighborAdvert {
            flags: NaFlags::SOLICITED | NaFlags::OVERRIDE,
            target_addr: target,
        },
        &[OptionRepr::TargetLla(guest_mac)],
    );
    for round in 0..3 {
        guest.send(&na).unwrap();
        let (_, stamp) = recv_stamped(&ga_capture, Duration::from_secs(2), |f| {
            f.get(54) == Some(&136)
        })
        .expect("ga's capture sees the NA");
        let handled = relays.na_handled_tstamp(ga, target, solicitor);
        assert_ne!(stamp, 0, "round {round}: the capture's SCM_TIMESTAMPNS");
        assert_eq!(
            handled,
            Some(stamp),
            "round {round}: the program's __sk_buff->tstamp on ga against SCM_TIMESTAMPNS"
        );
        assert!(
            relays
                .witness()
                .relayed_na(ga, target, solicitor, stamp)
                .unwrap()
        );
        eprintln!(
            "veth in one namespace (NA), round {round}: SCM_TIMESTAMPNS {stamp}, handled_tstamp {handled:?}"
        );
    }
}

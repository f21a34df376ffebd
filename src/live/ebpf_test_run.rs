//! The in-kernel programs run on crafted frames with `BPF_PROG_TEST_RUN`: each is loaded
//! as the daemon loads it, its maps filled through the loader's own API, and every frame
//! checked for the verdict and the bytes the program leaves. The kernel runs the
//! program on an skb on the loopback device (ifindex 1) unless the context names
//! another; `eth_type_trans` gives it `PACKET_HOST` for loopback's MAC
//! (00:00:00:00:00:00), `PACKET_MULTICAST` for a group and `PACKET_OTHERHOST` for any
//! other unicast MAC. A redirect is not carried out, only returned (`TC_ACT_REDIRECT`),
//! so the egress port of a relayed frame is not seen here (the netns tests in
//! `live::tests` see it).
//!
//! They need root (CAP_BPF, CAP_NET_ADMIN, a throw-away network namespace to attach
//! in) and are `#[ignore]`d; `scripts/test.sh netns` runs them with
//! `cargo test --lib -- --ignored ebpf_test_run`. A program that does not load fails
//! the test: nothing is skipped.

use std::net::Ipv6Addr;
use std::time::Duration;

use super::ebpf_maps::HANDLED_RING;
use super::kernel_answer::KernelAnswers;
use super::kernel_relay::{KernelRelays, NaPath, NsPath};
use super::sys::ebpf::{SkBuff, TestRun};
use super::sys::{self};
use crate::wire::{Mac, NaFlags, NdMessage, OptionRepr, emit_nd, solicited_node};

/// `TC_ACT_REDIRECT`: what `bpf_redirect` makes the verdict.
const REDIRECT: u32 = 7;
/// `TCX_NEXT` (-1): on to the next program and the stack, frame untouched.
const NEXT: u32 = u32::MAX;
/// Loopback's index in every namespace, where the test run's skb is.
const LO: i32 = 1;
/// Loopback's MAC: a frame to it is `PACKET_HOST`.
const LO_MAC: Mac = Mac([0; 6]);

const SOLICITOR: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const SOLICITOR_MAC: Mac = Mac([2, 0, 0x5e, 0, 0x53, 1]);
const TARGET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5);
const OUR_MAC: Mac = Mac([2, 0, 0x5e, 0, 0x53, 0x42]);
const GUEST_MAC: Mac = Mac([2, 0, 0x5e, 0, 0x53, 0x10]);
const OTHER_MAC: Mac = Mac([2, 0, 0x5e, 0, 0x53, 0x99]);
const LONG: Duration = Duration::from_secs(60);

/// Runs `f` on a thread in a namespace of its own (removed after), where attaching to
/// its loopback device touches nothing else.
fn in_netns<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = format!("ndpr-u-etr-{name}-{}", std::process::id());
    let ip = |args: &[&str]| {
        let st = std::process::Command::new("ip")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("ip runs");
        st.success()
    };
    ip(&["netns", "del", &ns]);
    assert!(ip(&["netns", "add", &ns]), "ip netns add {ns}");
    let path = std::path::PathBuf::from("/run/netns").join(&ns);
    let result = std::thread::spawn(move || {
        sys::enter_netns(&path).expect("setns");
        f()
    })
    .join();
    ip(&["netns", "del", &ns]);
    result.unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A test run's context with receive timestamp `tstamp`.
fn stamped(tstamp: u64) -> SkBuff {
    SkBuff {
        tstamp,
        ..SkBuff::default()
    }
}

/// An NS for `target` from `src` to its solicited-node group.
fn ns(
    eth_src: Mac,
    eth_dst: Mac,
    src: Ipv6Addr,
    target: Ipv6Addr,
    options: &[OptionRepr],
) -> Vec<u8> {
    emit_nd(
        eth_src,
        eth_dst,
        src,
        solicited_node(target),
        &NdMessage::NeighborSolicit {
            target_addr: target,
        },
        options,
    )
}

/// The NS a solicitor sends for [`TARGET`]: to its group, with its SLLA.
fn ask() -> Vec<u8> {
    ask_for(TARGET)
}

fn ask_for(target: Ipv6Addr) -> Vec<u8> {
    let group = Mac::ipv6_multicast(solicited_node(target));
    ns(
        SOLICITOR_MAC,
        group,
        SOLICITOR,
        target,
        &[OptionRepr::SourceLla(SOLICITOR_MAC)],
    )
}

/// An NA for [`TARGET`] to `dst`, with one TLLA.
fn na(eth_src: Mac, eth_dst: Mac, dst: Ipv6Addr, flags: NaFlags, tlla: Mac) -> Vec<u8> {
    emit_nd(
        eth_src,
        eth_dst,
        TARGET,
        dst,
        &NdMessage::NeighborAdvert {
            flags,
            target_addr: TARGET,
        },
        &[OptionRepr::TargetLla(tlla)],
    )
}

const SOLICITED_OVERRIDE: NaFlags = NaFlags::SOLICITED.union(NaFlags::OVERRIDE);

/// `frame` with an IPv6 extension header (`next` in the IPv6 header, 8 bytes `ext`
/// before the ICMPv6 message, whose checksum does not cover it).
fn with_extension(frame: &[u8], next: u8, ext: [u8; 8]) -> Vec<u8> {
    let mut f = frame[..54].to_vec();
    f[20] = next;
    let len = u16::from_be_bytes([f[18], f[19]]) + 8;
    f[18..20].copy_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&ext);
    f.extend_from_slice(&frame[54..]);
    f
}

/// A fragment header before the ICMPv6 message, at byte `offset` (a multiple of 8).
fn fragment(frame: &[u8], offset: u16, more: bool) -> Vec<u8> {
    let off = offset | u16::from(more);
    let [hi, lo] = off.to_be_bytes();
    with_extension(frame, 44, [58, 0, hi, lo, 0, 0, 0x12, 0x34])
}

/// A VLAN tag in the frame's data (as a frame from a device without tag offload).
fn vlan_tagged(frame: &[u8]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00, 0x00, 100]);
    f.extend_from_slice(&frame[12..]);
    f
}

/// `frame` with byte `at` changed by `f`.
fn patched(frame: &[u8], at: usize, f: impl FnOnce(u8) -> u8) -> Vec<u8> {
    let mut out = frame.to_vec();
    out[at] = f(out[at]);
    out
}

/// A loaded program to run.
trait Prog {
    fn run_once(&self, frame: &[u8], ctx: Option<&SkBuff>) -> std::io::Result<TestRun>;
}

impl Prog for KernelAnswers {
    fn run_once(&self, frame: &[u8], ctx: Option<&SkBuff>) -> std::io::Result<TestRun> {
        Self::test_run(self, frame, ctx)
    }
}

impl Prog for KernelRelays {
    fn run_once(&self, frame: &[u8], ctx: Option<&SkBuff>) -> std::io::Result<TestRun> {
        Self::test_run(self, frame, ctx)
    }
}

fn run(prog: &impl Prog, frame: &[u8]) -> TestRun {
    prog.run_once(frame, None)
        .expect("BPF_PROG_TEST_RUN (needs CAP_BPF and CAP_NET_ADMIN)")
}

/// Asserts that each frame goes on untouched.
fn assert_passed(prog: &impl Prog, cases: &[(Vec<u8>, &str)]) {
    for (frame, why) in cases {
        let out = run(prog, frame);
        assert_eq!(out.retval, NEXT, "{why}: verdict");
        assert_eq!(&out.data, frame, "{why}: the frame was changed");
    }
}

/// The frames neither program may take, whatever its maps say: each differs from a
/// good `frame` in one check.
fn malformed(frame: &[u8]) -> Vec<(Vec<u8>, &'static str)> {
    vec![
        (patched(frame, 21, |_| 254), "hop limit 254"),
        (patched(frame, 21, |_| 64), "hop limit 64"),
        (patched(frame, 56, |c| c ^ 1), "a bad checksum"),
        (patched(frame, 55, |_| 1), "ICMPv6 code 1"),
        (
            patched(frame, 14, |_| 0x40),
            "IP version 4 in an IPv6 EtherType",
        ),
        (patched(frame, 12, |_| 0x88), "another EtherType"),
        (vlan_tagged(frame), "a VLAN tag in the data"),
        (fragment(frame, 0, true), "a first fragment"),
        (fragment(frame, 8, false), "a non-first fragment"),
        (
            with_extension(frame, 0, [58, 0, 1, 4, 0, 0, 0, 0]),
            "a Hop-by-Hop Options header",
        ),
        (frame[..frame.len() - 1].to_vec(), "one byte short"),
        (frame[..60].to_vec(), "truncated after the ICMPv6 header"),
    ]
}

#[test]
#[ignore = "needs root (CAP_BPF, CAP_NET_ADMIN, namespaces)"]
fn ebpf_test_run_answer_program_turns_an_ns_for_a_bound_guest_into_the_engines_na() {
    in_netns("ans", || {
        let mut k = KernelAnswers::load(16).expect("the fast-path program loads");
        assert!(k.sync(&[("lo", LO)]).is_empty(), "attaches to lo");
        k.answer(LO, TARGET, OUR_MAC, LONG).unwrap();

        // To the asker's SLLA from our MAC, from the target to the asker's address,
        // S=1 R=0 O=0, our MAC as TLLA, hop limit 255, a valid checksum.
        let expected = emit_nd(
            OUR_MAC,
            SOLICITOR_MAC,
            TARGET,
            SOLICITOR,
            &NdMessage::NeighborAdvert {
                flags: NaFlags::SOLICITED,
                target_addr: TARGET,
            },
            &[OptionRepr::TargetLla(OUR_MAC)],
        );
        let out = run(&k, &ask());
        assert_eq!(out.retval, REDIRECT, "answered back out of the port");
        assert_eq!(out.data, expected, "the engine's fast-path NA");
        // An NS unicast to us (neighbour unreachability detection) too.
        let to_us = ns(
            SOLICITOR_MAC,
            LO_MAC,
            SOLICITOR,
            TARGET,
            &[OptionRepr::SourceLla(SOLICITOR_MAC)],
        );
        let out = run(&k, &to_us);
        assert_eq!(out.retval, REDIRECT, "unicast NS answered");
        assert_eq!(out.data, expected, "unicast NS: the same NA");

        let group = Mac::ipv6_multicast(solicited_node(TARGET));
        let mut cases = unsuitable_ns();
        cases.extend([(
            na(
                SOLICITOR_MAC,
                group,
                SOLICITOR,
                SOLICITED_OVERRIDE,
                SOLICITOR_MAC,
            ),
            "an NA",
        )]);
        assert_passed(&k, &cases);

        // An entry is for one port: the same NS on another passes.
        assert_passed_on_another_port(&k);

        // The kernel's word: the entry keeps the timestamp of the frame it answered.
        let hop_254 = patched(&ask(), 21, |_| 254);
        let last = assert_word_names_the_frame(&k, &hop_254, |t, at| {
            k.witness().answered(LO, t, at).unwrap()
        });
        k.answer(LO, TARGET, OUR_MAC, LONG).unwrap();
        assert!(
            k.witness().answered(LO, TARGET, last).unwrap(),
            "renewing keeps the word"
        );

        // Expired and forgotten entries.
        k.answer(LO, TARGET, OUR_MAC, Duration::ZERO).unwrap();
        assert_passed(&k, &[(ask(), "an expired entry")]);
        k.answer(LO, TARGET, OUR_MAC, LONG).unwrap();
        assert_eq!(run(&k, &ask()).retval, REDIRECT, "renewed");
        k.forget(TARGET);
        assert_passed(&k, &[(ask(), "a forgotten target")]);
    });
}

/// The NS neither program may take although its target has an entry: `malformed`
/// versions of [`ask`], and well-formed ones that are not the solicitation asked for
/// (another target or destination, DAD, a multicast source, options other than exactly
/// one SLLA).
fn unsuitable_ns() -> Vec<(Vec<u8>, &'static str)> {
    let slla = [OptionRepr::SourceLla(SOLICITOR_MAC)];
    let group = Mac::ipv6_multicast(solicited_node(TARGET));
    let mut cases = malformed(&ask());
    cases.extend([
        (ask_for("2001:db8::6".parse().unwrap()), "an unknown target"),
        (
            ns(SOLICITOR_MAC, OTHER_MAC, SOLICITOR, TARGET, &slla),
            "to another host's MAC",
        ),
        (
            ns(SOLICITOR_MAC, group, Ipv6Addr::UNSPECIFIED, TARGET, &[]),
            "DAD (from ::, no option)",
        ),
        (
            ns(SOLICITOR_MAC, group, Ipv6Addr::UNSPECIFIED, TARGET, &slla),
            "from :: with an SLLA",
        ),
        (
            ns(
                SOLICITOR_MAC,
                group,
                "ff02::1".parse().unwrap(),
                TARGET,
                &slla,
            ),
            "from a multicast source",
        ),
        (
            ns(SOLICITOR_MAC, group, SOLICITOR, TARGET, &[]),
            "no option",
        ),
        (
            ns(
                SOLICITOR_MAC,
                group,
                SOLICITOR,
                TARGET,
                &[OptionRepr::TargetLla(SOLICITOR_MAC)],
            ),
            "a TLLA instead of an SLLA",
        ),
        (
            ns(
                SOLICITOR_MAC,
                group,
                SOLICITOR,
                TARGET,
                &[OptionRepr::Raw(vec![14, 1, 1, 2, 3, 4, 5, 6])],
            ),
            "a nonce instead of an SLLA",
        ),
        (
            ns(
                SOLICITOR_MAC,
                group,
                SOLICITOR,
                TARGET,
                &[
                    OptionRepr::SourceLla(SOLICITOR_MAC),
                    OptionRepr::Raw(vec![14, 1, 1, 2, 3, 4, 5, 6]),
                ],
            ),
            "an SLLA and a nonce",
        ),
    ]);
    cases
}

/// Runs [`ask`] at receive time 1000 through `prog`, which takes it, then `passed`
/// (which it leaves alone) at 2000, and checks that `took(target, rx_tstamp)`, the
/// kernel's word, names the first frame and no other; then that the entry remembers
/// the frame while [`HANDLED_RING`] - 1 later ones are taken (a capture queue backed
/// up behind the program) and forgets it after one more. Returns the last stamp taken.
fn assert_word_names_the_frame(
    prog: &impl Prog,
    passed: &[u8],
    took: impl Fn(Ipv6Addr, u64) -> bool,
) -> u64 {
    let out = prog.run_once(&ask(), Some(&stamped(1_000))).unwrap();
    assert_eq!(out.retval, REDIRECT);
    assert!(took(TARGET, 1_000), "taken at 1000");
    assert!(!took(TARGET, 999), "another frame");
    assert!(!took(TARGET, 0), "a frame without timestamp");
    assert!(
        !took("2001:db8::6".parse().unwrap(), 1_000),
        "another target"
    );
    let out = prog.run_once(passed, Some(&stamped(2_000))).unwrap();
    assert_eq!(out.retval, NEXT);
    assert!(!took(TARGET, 2_000), "a frame it passed");
    assert!(took(TARGET, 1_000), "still the last one taken");
    let later = 3_001..3_000 + HANDLED_RING as u64;
    for t in later.clone() {
        assert_eq!(
            prog.run_once(&ask(), Some(&stamped(t))).unwrap().retval,
            REDIRECT
        );
    }
    assert!(
        took(TARGET, 1_000),
        "remembered behind {} later frames",
        later.end - 3_001
    );
    let last = later.end;
    assert_eq!(
        prog.run_once(&ask(), Some(&stamped(last))).unwrap().retval,
        REDIRECT
    );
    assert!(
        !took(TARGET, 1_000),
        "forgotten after {HANDLED_RING} later frames"
    );
    assert!((3_001..=last).all(|t| took(TARGET, t)), "the later frames");
    last
}

/// Checks that [`ask`] goes on untouched on another port than the entry's.
fn assert_passed_on_another_port(prog: &impl Prog) {
    let other_port = SkBuff {
        ifindex: dummy_port(),
        ..SkBuff::default()
    };
    let out = prog.run_once(&ask(), Some(&other_port)).unwrap();
    assert_eq!((out.retval, out.data), (NEXT, ask()), "another port");
}

/// A second device in the test's namespace: a veth, up, so a test run can be on it.
fn dummy_port() -> u32 {
    let st = std::process::Command::new("ip")
        .args([
            "link", "add", "etr0", "type", "veth", "peer", "name", "etr1",
        ])
        .status()
        .expect("ip runs");
    assert!(st.success(), "ip link add etr0 type veth");
    let i = sys::if_nametoindex("etr0").expect("etr0");
    u32::try_from(i).expect("ifindex")
}

#[test]
#[ignore = "needs root (CAP_BPF, CAP_NET_ADMIN, namespaces)"]
fn ebpf_test_run_relay_program_relays_an_ns_to_the_bound_guest_as_the_engine_would() {
    in_netns("rns", || {
        let mut k = KernelRelays::load(16).expect("the relay program loads");
        assert!(k.sync(&[("lo", LO)]).is_empty(), "attaches to lo");
        let path = NsPath {
            from: LO,
            target: TARGET,
            to: 7,
            mac: OUR_MAC,
            guest_mac: GUEST_MAC,
        };
        k.relay_ns(&path, LONG).unwrap();

        // To the guest's MAC from ours, our MAC as SLLA; IPv6 as it came.
        let group = Mac::ipv6_multicast(solicited_node(TARGET));
        let slla = [OptionRepr::SourceLla(SOLICITOR_MAC)];
        let expected = ns(
            OUR_MAC,
            GUEST_MAC,
            SOLICITOR,
            TARGET,
            &[OptionRepr::SourceLla(OUR_MAC)],
        );
        let out = run(&k, &ask());
        assert_eq!(out.retval, REDIRECT, "relayed to the guest's port");
        assert_eq!(out.data, expected, "the engine's relayed NS");
        // Unicast to our MAC (the solicitor's cache has us for the target).
        let to_us = ns(SOLICITOR_MAC, LO_MAC, SOLICITOR, TARGET, &slla);
        let out = run(&k, &to_us);
        assert_eq!(out.retval, REDIRECT, "an NS to our MAC");
        assert_eq!(out.data, expected, "an NS to our MAC: the same relayed NS");

        assert_passed(&k, &unsuitable_ns());

        assert_passed_on_another_port(&k);

        // The kernel's word: the entry keeps the timestamp of the frame it relayed.
        let dad = ns(SOLICITOR_MAC, group, Ipv6Addr::UNSPECIFIED, TARGET, &[]);
        let last = assert_word_names_the_frame(&k, &dad, |t, at| {
            k.witness().relayed_ns(LO, t, at).unwrap()
        });
        k.relay_ns(&path, LONG).unwrap();
        assert!(
            k.witness().relayed_ns(LO, TARGET, last).unwrap(),
            "renewing keeps the word"
        );

        k.relay_ns(&path, Duration::ZERO).unwrap();
        assert_passed(&k, &[(ask(), "an expired entry")]);
        k.relay_ns(&path, LONG).unwrap();
        assert_eq!(run(&k, &ask()).retval, REDIRECT, "renewed");
        k.forget_ns(TARGET);
        assert_passed(&k, &[(ask(), "a forgotten target")]);
    });
}

#[test]
#[ignore = "needs root (CAP_BPF, CAP_NET_ADMIN, namespaces)"]
fn ebpf_test_run_relay_program_relays_the_guests_na_back_as_the_engine_would() {
    in_netns("rna", || {
        let mut k = KernelRelays::load(16).expect("the relay program loads");
        assert!(k.sync(&[("lo", LO)]).is_empty(), "attaches to lo");
        let path = NaPath {
            from: LO,
            target: TARGET,
            solicitor: SOLICITOR,
            guest_mac: GUEST_MAC,
            to: 7,
            mac: OUR_MAC,
            solicitor_mac: SOLICITOR_MAC,
        };
        k.relay_na(&path, LONG).unwrap();

        // The guest answers our relayed NS: to our MAC (loopback's here), its TLLA.
        let answer = na(GUEST_MAC, LO_MAC, SOLICITOR, SOLICITED_OVERRIDE, GUEST_MAC);
        // To the solicitor from our MAC, our MAC as TLLA, flags as the guest set them.
        let expected = na(
            OUR_MAC,
            SOLICITOR_MAC,
            SOLICITOR,
            SOLICITED_OVERRIDE,
            OUR_MAC,
        );
        let out = run(&k, &answer);
        assert_eq!(out.retval, REDIRECT, "relayed to the solicitor's port");
        assert_eq!(out.data, expected, "the engine's relayed NA");
        let router = NaFlags::ROUTER | NaFlags::SOLICITED;
        let out = run(&k, &na(GUEST_MAC, LO_MAC, SOLICITOR, router, GUEST_MAC));
        assert_eq!(out.retval, REDIRECT);
        assert_eq!(
            out.data,
            na(OUR_MAC, SOLICITOR_MAC, SOLICITOR, router, OUR_MAC),
            "R and S kept, O clear kept"
        );

        let mut cases = malformed(&answer);
        cases.extend([
            (
                na(
                    GUEST_MAC,
                    OTHER_MAC,
                    SOLICITOR,
                    SOLICITED_OVERRIDE,
                    GUEST_MAC,
                ),
                "not to our MAC",
            ),
            (
                na(
                    GUEST_MAC,
                    Mac::ipv6_multicast("ff02::1".parse().unwrap()),
                    "ff02::1".parse().unwrap(),
                    SOLICITED_OVERRIDE,
                    GUEST_MAC,
                ),
                "to all nodes",
            ),
            (
                na(
                    GUEST_MAC,
                    LO_MAC,
                    "ff02::1".parse().unwrap(),
                    SOLICITED_OVERRIDE,
                    GUEST_MAC,
                ),
                "to a multicast address at our MAC",
            ),
            (
                na(
                    GUEST_MAC,
                    LO_MAC,
                    "fe80::2".parse().unwrap(),
                    SOLICITED_OVERRIDE,
                    GUEST_MAC,
                ),
                "to another solicitor",
            ),
            (
                na(OTHER_MAC, LO_MAC, SOLICITOR, SOLICITED_OVERRIDE, OTHER_MAC),
                "from another MAC",
            ),
            (
                na(GUEST_MAC, LO_MAC, SOLICITOR, SOLICITED_OVERRIDE, OTHER_MAC),
                "another TLLA",
            ),
            (
                na(OTHER_MAC, LO_MAC, SOLICITOR, SOLICITED_OVERRIDE, GUEST_MAC),
                "the guest's TLLA from another MAC",
            ),
            (
                emit_nd(
                    GUEST_MAC,
                    LO_MAC,
                    TARGET,
                    SOLICITOR,
                    &NdMessage::NeighborAdvert {
                        flags: SOLICITED_OVERRIDE,
                        target_addr: TARGET,
                    },
                    &[OptionRepr::SourceLla(GUEST_MAC)],
                ),
                "an SLLA instead of a TLLA",
            ),
            (
                emit_nd(
                    GUEST_MAC,
                    LO_MAC,
                    TARGET,
                    SOLICITOR,
                    &NdMessage::NeighborAdvert {
                        flags: SOLICITED_OVERRIDE,
                        target_addr: TARGET,
                    },
                    &[],
                ),
                "no option",
            ),
            (
                emit_nd(
                    GUEST_MAC,
                    LO_MAC,
                    "2001:db8::6".parse().unwrap(),
                    SOLICITOR,
                    &NdMessage::NeighborAdvert {
                        flags: SOLICITED_OVERRIDE,
                        target_addr: "2001:db8::6".parse().unwrap(),
                    },
                    &[OptionRepr::TargetLla(GUEST_MAC)],
                ),
                "another target",
            ),
        ]);
        assert_passed(&k, &cases);

        // The kernel's word, keyed by the NA's port, target and destination.
        let out = k.test_run(&answer, Some(&stamped(1_000))).unwrap();
        assert_eq!(out.retval, REDIRECT);
        assert!(
            k.witness()
                .relayed_na(LO, TARGET, SOLICITOR, 1_000)
                .unwrap(),
            "relayed at 1000"
        );
        assert!(
            !k.witness().relayed_na(LO, TARGET, SOLICITOR, 999).unwrap(),
            "another frame"
        );
        let fe80_2: Ipv6Addr = "fe80::2".parse().unwrap();
        assert!(
            !k.witness().relayed_na(LO, TARGET, fe80_2, 1_000).unwrap(),
            "another solicitor"
        );
        assert!(
            !k.witness().relayed_ns(LO, TARGET, 1_000).unwrap(),
            "not an NS"
        );
        let spoofed = na(OTHER_MAC, LO_MAC, SOLICITOR, SOLICITED_OVERRIDE, OTHER_MAC);
        let out = k.test_run(&spoofed, Some(&stamped(2_000))).unwrap();
        assert_eq!(out.retval, NEXT);
        assert!(
            !k.witness()
                .relayed_na(LO, TARGET, SOLICITOR, 2_000)
                .unwrap(),
            "a frame it passed"
        );
        k.relay_na(&path, LONG).unwrap();
        assert!(
            k.witness()
                .relayed_na(LO, TARGET, SOLICITOR, 1_000)
                .unwrap(),
            "renewing keeps it"
        );

        k.relay_na(&path, Duration::ZERO).unwrap();
        assert_passed(&k, &[(answer.clone(), "an expired entry")]);
        k.relay_na(&path, LONG).unwrap();
        assert_eq!(run(&k, &answer).retval, REDIRECT, "renewed");
        k.forget_all_na();
        assert_passed(&k, &[(answer, "forgotten entries")]);
    });
}

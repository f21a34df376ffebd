//! Keeps the host kernel out of the ND frames the relay handles (DESIGN.md, Data plane).
//!
//! Relayed ND brings frames to the relay's MAC that are addressed to foreign IPv6
//! addresses: the guest's NA to the router's link-local, the router's unicast NS for a
//! guest. With `forwarding=1` the kernel would route them (Hop Limit 254, so invalid
//! at the receiver), send Redirects or "not a neighbour" errors, and even solicit the
//! router's link-local on the guest side. `ip6_forward` emits those errors *before* the
//! FORWARD hook, and with `br_netfilter` the ip6 PREROUTING hook also sees frames
//! bridged between guests (pkttype rewritten to host), so the guard sits in the
//! *netdev ingress* hook of each relay port: it runs after the packet taps (the relay's
//! capture still sees every frame) and before IPv6 input, and on a bridge it sees only
//! what the bridge delivers to the host, never guest-to-guest traffic. It drops ICMPv6
//! ND (types 133–137, extension headers included) that arrived unicast to this host's
//! MAC but is not for a local address; ND for the host's own addresses and all
//! multicast ND are untouched.
//!
//! The table is replaced atomically in one batch (re-installed when a port is
//! re-created) and deleted on exit; a crashed run's table is replaced by the next start.
//! Equivalent nft(8) text:
//!
//! ```text
//! table netdev ndprelay {
//!   chain in-br0 {
//!     type filter hook ingress device "br0" priority 0; policy accept;
//!     meta protocol ip6 meta l4proto ipv6-icmp icmpv6 type 133-137 meta pkttype host
//!       fib daddr type != local counter drop
//!   }
//! }
//! ```
//!
//! The nf_tables messages are written by hand (with `nfnetlink.rs`'s builder; the
//! socket is `netlink-sys`'s): no maintained pure-Rust crate writes nf_tables rules
//! that fits. `nftnl` binds the C library libnftnl (a system library to build and ship
//! against), the `nftables` crate runs the `nft` binary with JSON (a subprocess and a
//! runtime dependency), and `rustables`, the one pure-Rust netlink implementation, is
//! GPL-3.0 (ndprelay is MIT OR Apache-2.0) and calls itself rough and trial-and-error.
//! One table with one rule per port is a few dozen attributes, tested below.

use std::io;

use netlink_packet_core::{NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST};
use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};

use super::nfnetlink::{MsgBuilder, error_code, messages};
use super::sys;

/// nf_tables table name (family netdev).
pub const TABLE: &str = "ndprelay";

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFPROTO_NETDEV: u8 = 5;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEV: u16 = 3;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_PROTOCOL: u32 = 1;
const NFT_META_L4PROTO: u32 = 16;
const NFT_META_PKTTYPE: u32 = 19;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_CMP_LTE: u32 = 3;
const NFT_CMP_GTE: u32 = 5;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFTA_FIB_DREG: u16 = 1;
const NFTA_FIB_RESULT: u16 = 2;
const NFTA_FIB_FLAGS: u16 = 3;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 2;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NF_NETDEV_INGRESS: u32 = 0;
const RTN_LOCAL: u32 = 2;
const PACKET_HOST: u8 = 0;

fn nfgen(family: u8, res_id: u16) -> [u8; 4] {
    let r = res_id.to_be_bytes();
    [family, 0, r[0], r[1]]
}

fn msg_type(m: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | m
}

struct Exprs<'a>(&'a mut MsgBuilder);

impl Exprs<'_> {
    fn expr(&mut self, name: &str, data: impl FnOnce(&mut MsgBuilder)) -> &mut Self {
        self.0.nest(NFTA_LIST_ELEM).attr_str(NFTA_EXPR_NAME, name);
        self.0.nest(NFTA_EXPR_DATA);
        data(self.0);
        self.0.nest_end().nest_end();
        self
    }
    fn meta(&mut self, key: u32) -> &mut Self {
        self.expr("meta", |b| {
            b.attr_be32(NFTA_META_KEY, key)
                .attr_be32(NFTA_META_DREG, NFT_REG_1);
        })
    }
    fn cmp(&mut self, op: u32, value: &[u8]) -> &mut Self {
        self.expr("cmp", |b| {
            b.attr_be32(NFTA_CMP_SREG, NFT_REG_1)
                .attr_be32(NFTA_CMP_OP, op);
            b.nest(NFTA_CMP_DATA)
                .attr(NFTA_DATA_VALUE, value)
                .nest_end();
        })
    }
}

/// Builds the batch that (re)creates the table with one ingress chain per port (each
/// must exist). The add-delete-add of the table makes it replace an old one atomically.
pub fn build_install(ports: &[String], seq0: u32) -> (Vec<u8>, u32) {
    let mut b = MsgBuilder::new();
    let mut seq = seq0;
    let mut next = || {
        seq += 1;
        seq
    };
    let rq = NLM_F_REQUEST;
    let create = rq | NLM_F_CREATE | NLM_F_ACK;
    b.begin(
        NFNL_MSG_BATCH_BEGIN,
        rq,
        next(),
        &nfgen(0, NFNL_SUBSYS_NFTABLES),
    )
    .end();
    let fam = nfgen(NFPROTO_NETDEV, 0);
    for (ty, flags) in [
        (NFT_MSG_NEWTABLE, create),
        (NFT_MSG_DELTABLE, rq | NLM_F_ACK),
        (NFT_MSG_NEWTABLE, create),
    ] {
        b.begin(msg_type(ty), flags, next(), &fam)
            .attr_str(NFTA_TABLE_NAME, TABLE)
            .end();
    }
    for port in ports {
        let chain = format!("in-{port}");
        b.begin(msg_type(NFT_MSG_NEWCHAIN), create, next(), &fam)
            .attr_str(NFTA_CHAIN_TABLE, TABLE)
            .attr_str(NFTA_CHAIN_NAME, &chain)
            .nest(NFTA_CHAIN_HOOK)
            .attr_be32(NFTA_HOOK_HOOKNUM, NF_NETDEV_INGRESS)
            .attr_be32(NFTA_HOOK_PRIORITY, 0)
            .attr_str(NFTA_HOOK_DEV, port)
            .nest_end()
            .attr_be32(NFTA_CHAIN_POLICY, NF_ACCEPT)
            .attr_str(NFTA_CHAIN_TYPE, "filter")
            .end();
        b.begin(
            msg_type(NFT_MSG_NEWRULE),
            create | NLM_F_APPEND,
            next(),
            &fam,
        )
        .attr_str(NFTA_RULE_TABLE, TABLE)
        .attr_str(NFTA_RULE_CHAIN, &chain)
        .nest(NFTA_RULE_EXPRESSIONS);
        let mut e = Exprs(&mut b);
        e.meta(NFT_META_PROTOCOL)
            .cmp(NFT_CMP_EQ, &0x86ddu16.to_be_bytes())
            .meta(NFT_META_L4PROTO)
            .cmp(NFT_CMP_EQ, &[58])
            .expr("payload", |b| {
                b.attr_be32(NFTA_PAYLOAD_DREG, NFT_REG_1)
                    .attr_be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER)
                    .attr_be32(NFTA_PAYLOAD_OFFSET, 0)
                    .attr_be32(NFTA_PAYLOAD_LEN, 1);
            })
            .cmp(NFT_CMP_GTE, &[133])
            .cmp(NFT_CMP_LTE, &[137])
            .meta(NFT_META_PKTTYPE)
            .cmp(NFT_CMP_EQ, &[PACKET_HOST])
            .expr("fib", |b| {
                b.attr_be32(NFTA_FIB_DREG, NFT_REG_1)
                    .attr_be32(NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE)
                    .attr_be32(NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
            })
            // The fib address type is a host-order u32.
            .cmp(NFT_CMP_NEQ, &RTN_LOCAL.to_ne_bytes())
            .expr("counter", |_| {})
            .expr("immediate", |b| {
                b.attr_be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
                b.nest(NFTA_IMMEDIATE_DATA)
                    .nest(NFTA_DATA_VERDICT)
                    .attr_be32(NFTA_VERDICT_CODE, NF_DROP)
                    .nest_end()
                    .nest_end();
            });
        b.nest_end().end();
    }
    let last = next();
    b.begin(
        NFNL_MSG_BATCH_END,
        rq,
        last,
        &nfgen(0, NFNL_SUBSYS_NFTABLES),
    )
    .end();
    (b.into_bytes(), last)
}

/// Builds the batch deleting the table.
pub fn build_remove(seq0: u32) -> (Vec<u8>, u32) {
    let mut b = MsgBuilder::new();
    let rq = NLM_F_REQUEST;
    b.begin(
        NFNL_MSG_BATCH_BEGIN,
        rq,
        seq0 + 1,
        &nfgen(0, NFNL_SUBSYS_NFTABLES),
    )
    .end();
    b.begin(
        msg_type(NFT_MSG_DELTABLE),
        rq | NLM_F_ACK,
        seq0 + 2,
        &nfgen(NFPROTO_NETDEV, 0),
    )
    .attr_str(NFTA_TABLE_NAME, TABLE)
    .end();
    b.begin(
        NFNL_MSG_BATCH_END,
        rq,
        seq0 + 3,
        &nfgen(0, NFNL_SUBSYS_NFTABLES),
    )
    .end();
    (b.into_bytes(), seq0 + 3)
}

/// The installed guard table; removed by [`Guard::remove`].
#[derive(Debug)]
pub struct Guard {
    sock: Socket,
    seq: u32,
    installed: bool,
}

impl Guard {
    /// Installs (or atomically replaces) the guard for `ports`.
    pub fn install(ports: &[String]) -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        let mut g = Self {
            sock,
            seq: 0,
            installed: false,
        };
        g.try_update(ports)?;
        Ok(g)
    }

    fn try_update(&mut self, ports: &[String]) -> io::Result<()> {
        let (msg, last) = build_install(ports, self.seq);
        let first = self.seq + 1;
        self.seq = last;
        self.send_batch(&msg, first, last)?;
        self.installed = true;
        log::debug!(
            "nf_tables guard `netdev {TABLE}` installed for {}",
            ports.join(", ")
        );
        Ok(())
    }

    /// Replaces the rules for a new port list (reload). Failures are logged.
    pub fn update(&mut self, ports: &[String]) {
        if let Err(e) = self.try_update(ports) {
            log::warn!("cannot update the nf_tables guard `netdev {TABLE}`: {e}");
        }
    }

    /// Deletes the table (idempotent).
    pub fn remove(&mut self) {
        if !self.installed {
            return;
        }
        let (msg, last) = build_remove(self.seq);
        let first = self.seq + 1;
        self.seq = last;
        match self.send_batch(&msg, first, last) {
            Ok(()) => self.installed = false,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.installed = false,
            Err(e) => log::warn!("cannot remove the nf_tables guard `netdev {TABLE}`: {e}"),
        }
    }

    /// Sends a batch and waits: the first error aborts the batch and is returned; no
    /// error within the batch's acks means it was committed.
    fn send_batch(&mut self, msg: &[u8], first: u32, last: u32) -> io::Result<()> {
        let mut pending = messages(msg).filter(|m| m.flags() & NLM_F_ACK != 0).count();
        self.sock.send(msg, 0)?;
        let mut buf = vec![0u8; 1 << 16];
        while pending > 0 {
            if !sys::poll_readable(&self.sock, 2000)? {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nf_tables: no answer",
                ));
            }
            let n = self.sock.recv(&mut buf.as_mut_slice(), 0)?.min(buf.len());
            for m in messages(&buf[..n]) {
                if !(first..=last).contains(&m.sequence_number()) {
                    continue;
                }
                match error_code(&m) {
                    None => {}
                    Some(0) => pending -= 1,
                    Some(errno) => return Err(io::Error::from_raw_os_error(errno)),
                }
            }
        }
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod test {
    use netlink_packet_core::{NLA_TYPE_MASK, NlasIterator};

    use super::*;

    /// (type without the flag bits, value) of each attribute; panics on a malformed one.
    fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
        NlasIterator::new(buf).map(|a| {
            let a = a.unwrap();
            let (kind, len) = (a.kind() & NLA_TYPE_MASK, usize::from(a.length()));
            (kind, &a.into_inner()[4..len])
        })
    }

    #[test]
    fn install_batch_is_framed_and_names_each_port() {
        let ports = vec!["eth0".to_owned(), "br0".to_owned()];
        let (msg, last) = build_install(&ports, 100);
        let msgs: Vec<_> = messages(&msg).collect();
        // begin, table, del table, table, (chain, rule) per port, end
        assert_eq!(msgs.len(), 9);
        assert_eq!(msgs[0].message_type(), NFNL_MSG_BATCH_BEGIN);
        assert_eq!(msgs[8].message_type(), NFNL_MSG_BATCH_END);
        assert_eq!(msgs[8].sequence_number(), last);
        assert_eq!(last, 109);
        let total: usize = msgs.iter().map(|m| (m.payload().len() + 16 + 3) & !3).sum();
        assert_eq!(total, msg.len());
        let rules: Vec<_> = msgs
            .iter()
            .filter(|m| m.message_type() == msg_type(NFT_MSG_NEWRULE))
            .collect();
        assert_eq!(rules.len(), 2);
        for (rule, port) in rules.iter().zip(&ports) {
            let exprs = attrs(&rule.payload()[4..])
                .find(|(t, _)| *t == NFTA_RULE_EXPRESSIONS)
                .unwrap()
                .1;
            let names: Vec<String> = attrs(exprs)
                .map(|(_, e)| {
                    let n = attrs(e).find(|(t, _)| *t == NFTA_EXPR_NAME).unwrap().1;
                    String::from_utf8_lossy(&n[..n.len() - 1]).into_owned()
                })
                .collect();
            assert_eq!(
                names,
                [
                    "meta",
                    "cmp",
                    "meta",
                    "cmp",
                    "payload",
                    "cmp",
                    "cmp",
                    "meta",
                    "cmp",
                    "fib",
                    "cmp",
                    "counter",
                    "immediate"
                ]
            );
            let chain = attrs(&rule.payload()[4..])
                .find(|(t, _)| *t == NFTA_RULE_CHAIN)
                .unwrap()
                .1;
            assert_eq!(chain, format!("in-{port}\0").as_bytes());
        }
        // Each chain hooks its own device's ingress.
        let chains: Vec<_> = msgs
            .iter()
            .filter(|m| m.message_type() == msg_type(NFT_MSG_NEWCHAIN))
            .collect();
        for (chain, port) in chains.iter().zip(&ports) {
            let hook = attrs(&chain.payload()[4..])
                .find(|(t, _)| *t == NFTA_CHAIN_HOOK)
                .unwrap()
                .1;
            let dev = attrs(hook).find(|(t, _)| *t == NFTA_HOOK_DEV).unwrap().1;
            assert_eq!(dev, format!("{port}\0").as_bytes());
        }
    }

    #[test]
    fn remove_batch_deletes_the_table() {
        let (msg, last) = build_remove(7);
        let msgs: Vec<_> = messages(&msg).collect();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[1].message_type(), msg_type(NFT_MSG_DELTABLE));
        assert_eq!(last, 10);
    }
}

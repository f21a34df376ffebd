//! Fuzzes the frame parser and, for every ND message it accepts, the rewriter: neither may
//! panic, and every rewritten frame must parse again with a valid checksum. Each input is
//! parsed as it is (the checksum check and everything before it) and, when it is ICMPv6,
//! once more with its checksum fixed up, so mutations reach the ND validation behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndprelay::wire::{LlaRewrite, Mac, Parsed, Rewrite, parse_frame, rewrite};
use ndprelay_fuzz::with_fixed_checksum;

fn check(data: &[u8]) {
    let Ok(Parsed::Nd(packet)) = parse_frame(data) else {
        return;
    };
    let ours = Mac([0x02, 0, 0, 0, 0, 0xaa]);
    let rw = Rewrite {
        eth_src: ours,
        eth_dst: packet.eth_dst,
        src_addr: None,
        dst_addr: None,
        slla: LlaRewrite::Replace(ours),
        tlla: LlaRewrite::Remove,
        set_proxy_flag: true,
        clear_pio_on_link: true,
        max_mtu: Some(1400),
    };
    let mut out = Vec::new();
    rewrite(&packet, &rw, &mut out);
    match parse_frame(&out) {
        Ok(Parsed::Nd(again)) => assert_eq!(again.message.icmp_type(), packet.message.icmp_type()),
        other => panic!("rewritten frame no longer parses as ND: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = with_fixed_checksum(data) {
        check(&fixed);
    }
});

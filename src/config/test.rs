//! Config parsing tests.
use super::*;

#[test]
fn explore() {
    for t in [
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    prefixs: [],\n)",
        "(\n    uplink: \"eth0\",\n    prefixes: [],\n)",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    forwarding: Kernal,\n)",
        "(\n    uplink: [\"eth0\"],\n    downstream: [\"br0\"],\n)",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"]\n    prefixes: [],\n)",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    timers: (retrans: \"1s\"),\n)",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    timers: (retrans_timer: 1),\n)",
        "(\n    uplink: \"eth0\",\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n)",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    fast_path: Some(\"2s\"),\n seed: 3, install_routes: Some(true), dump_dir: None, prefixes: [\"2001:db8::/64\"])",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    ra_relay: 1,\n)",
        "(\n    uplink: \"eth0\",\n    downstream: [\"br0\"],\n    limits: (max_probes: -1),\n)",
    ] {
        match Config::from_str_with_path(t, "x.ron") {
            Ok(c) => println!("OK {c:?}\n"),
            Err(e) => println!("{e}\n"),
        }
    }
}

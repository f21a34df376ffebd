//! The NS→NA histogram: from relaying an NS to relaying the NA that answers it.

use super::*;
use crate::engine::NS_NA_BOUNDS_MICROS;

fn histogram(h: &Harness) -> crate::engine::NsNaHistogram {
    h.engine.snapshot(h.now).ns_na
}

/// Index of the bucket whose upper bound is `micros`.
fn bucket(micros: u64) -> usize {
    NS_NA_BOUNDS_MICROS
        .iter()
        .position(|&b| b == micros)
        .unwrap()
}

#[test]
fn an_answer_relayed_37_us_after_its_ns_lands_in_the_50_us_bucket() {
    let mut h = Harness::ready(config());
    assert_eq!(histogram(&h).count, 0);
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(h.take(D1).len(), 1, "the NS is relayed");
    h.advance(Duration::from_micros(37));
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    assert_eq!(h.take(UP).len(), 1, "the NA is relayed back");
    let hist = histogram(&h);
    assert_eq!(hist.count, 1);
    assert_eq!(hist.sum_micros, 37);
    let mut want = [0; NS_NA_BOUNDS_MICROS.len() + 1];
    want[bucket(50)] = 1;
    assert_eq!(hist.buckets, want);

    // The same answer again is relayed, but its NS was timed already.
    h.advance(Duration::from_micros(5));
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    assert_eq!(h.take(UP).len(), 1);
    assert_eq!(histogram(&h).count, 1);
}

#[test]
fn an_unanswered_ns_counts_nothing() {
    let mut h = Harness::ready(config());
    h.inject(UP, &ns_from_router(addr(11)));
    assert_eq!(h.take(D1).len(), 1, "the NS is relayed");
    h.advance(Duration::from_secs(30));
    assert_eq!(h.count("pending_failed"), 1, "the target never answered");
    assert_eq!(histogram(&h), Default::default());
}

#[test]
fn a_bound_target_is_timed_from_the_ns_relayed_to_its_port() {
    let mut h = Harness::ready(config());
    h.bind_guest(12, D2);
    let before = histogram(&h);
    assert_eq!(before.count, 1, "binding it took one NS and its answer");
    h.inject(UP, &ns_from_router(addr(12)));
    assert_eq!(h.take(D2).len(), 1);
    // The router asks again before the answer: the clock restarts with the second
    // relay (an NS to a bound target is not paced), which the answer is timed from.
    h.advance(Duration::from_micros(1_500));
    h.inject(UP, &ns_from_router(addr(12)));
    assert_eq!(h.take(D2).len(), 1);
    h.advance(Duration::from_micros(500));
    h.inject(D2, &na_to_router(gmac(12), D2, addr(12)));
    assert_eq!(h.take(UP).len(), 1);
    let after = histogram(&h);
    assert_eq!(after.count, 2);
    assert_eq!(after.sum_micros - before.sum_micros, 500);
    assert_eq!(after.buckets[bucket(500)] - before.buckets[bucket(500)], 1);
}

#[test]
fn an_answer_the_kernel_relayed_stops_the_clock_without_counting() {
    let mut cfg = config();
    cfg.relay_in_kernel = true;
    // The router's NS for bound guest 10 went through the engine (the kernel was told
    // about the guest by it).
    let mut h = Harness::guest_asked_for(cfg);
    assert_eq!(h.take(D1).len(), 1, "the engine relayed the NS");
    let before = histogram(&h);
    h.advance(Duration::from_millis(1));
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    assert!(h.take(UP).is_empty(), "the kernel relayed the answer");
    assert_eq!(h.count("relayed_na_by_kernel"), 1);
    // The same answer without a TLLA, which the program leaves to the engine.
    h.advance(Duration::from_millis(500));
    let no_tlla = na(
        gmac(10),
        D1_MAC,
        addr(10),
        router_ll(),
        SOLICITED,
        addr(10),
        None,
    );
    h.inject(D1, &no_tlla);
    assert_eq!(h.take(UP).len(), 1, "the engine relayed this one");
    assert_eq!(
        histogram(&h),
        before,
        "not timed from the NS the kernel's answer closed"
    );
}

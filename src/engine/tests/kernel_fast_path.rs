//! The in-kernel fast path: what the engine tells the kernel, when it leaves an NS to
//! it, and when it takes the answering back.

use super::*;
use crate::engine::LinkEvent;

fn kernel_config() -> EngineConfig {
    let mut cfg = config();
    cfg.fast_path = Some(Duration::from_secs(5));
    cfg.fast_path_in_kernel = true;
    cfg
}

/// The `until` of the single `KernelAnswer` told since the last clear, checking the rest.
fn told(h: &Harness, target: Ipv6Addr) -> Instant {
    match h.kernel.as_slice() {
        [
            Action::KernelAnswer {
                port,
                target: t,
                mac,
                until,
            },
        ] => {
            assert_eq!((*port, *t, *mac), (UP, target, UP_MAC));
            *until
        }
        other => panic!("expected one KernelAnswer, got {other:?}"),
    }
}

fn answers_on_up(h: &mut Harness) -> usize {
    h.take(UP).iter().filter(|s| s.is_na_for(addr(10))).count()
}

#[test]
fn the_first_ns_is_answered_here_and_the_kernel_answers_the_next_ones() {
    let mut h = Harness::ready(kernel_config());
    h.bind_guest(10, D1);
    // bind_guest confirmed the guest a second ago.
    let window_end = h.now + Duration::from_secs(4);
    let before_telling = h.now;
    h.advance(Duration::from_micros(10));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(answers_on_up(&mut h), 1, "not told yet: the engine answers");
    assert_eq!(h.take(D1).len(), 1, "relayed so the binding re-verifies");
    assert_eq!(told(&h, addr(10)), window_end);
    h.clear();

    // An NS that reached the kernel before its table had the entry, handled by the
    // engine only after the telling: the kernel did not answer it, so the engine does.
    h.advance(Duration::from_millis(5));
    h.inject_seen_at(UP, &ns_from_router(addr(10)), before_telling);
    assert_eq!(
        answers_on_up(&mut h),
        1,
        "the kernel says it did not answer"
    );
    assert_eq!(h.count("answered_by_kernel"), 0);

    h.advance(Duration::from_millis(100));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(answers_on_up(&mut h), 0, "the kernel answered it");
    assert_eq!(h.count("answered_by_kernel"), 1);
    assert!(h.events.contains(&Event::AnsweredByKernel {
        port: UP,
        target: addr(10)
    }));
    assert!(h.kernel.is_empty(), "nothing new to tell");

    // The guest confirms: the next NS extends what the kernel was told.
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    let reconfirmed = h.now;
    h.clear();
    h.advance(Duration::from_secs(1));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(answers_on_up(&mut h), 0, "still valid: the kernel answered");
    assert_eq!(told(&h, addr(10)), reconfirmed + Duration::from_secs(5));
}

#[test]
fn shapes_the_kernel_does_not_answer_are_answered_here() {
    let mut h = Harness::guest_asked_for(kernel_config());
    h.clear();
    // A unicast NUD probe without SLLA: 24 bytes, which the program passes on.
    h.advance(Duration::from_millis(100));
    h.inject(
        UP,
        &ns(ROUTER_MAC, UP_MAC, router_ll(), addr(10), addr(10), None),
    );
    assert_eq!(answers_on_up(&mut h), 1);
    assert_eq!(h.count("answered_by_kernel"), 0);
}

#[test]
fn near_and_past_the_window_the_engine_answers_or_relays_as_without_the_kernel() {
    let mut h = Harness::guest_asked_for(kernel_config());
    let until = told(&h, addr(10));
    h.clear();
    // 5 ms before the end the kernel still answers, and says so.
    let left = until.saturating_since(h.now).total_micros();
    h.advance(Duration::from_micros(left - 5_000));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(answers_on_up(&mut h), 0);
    assert_eq!(h.count("answered_by_kernel"), 1);
    h.advance(Duration::from_secs(1));
    h.clear();
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(answers_on_up(&mut h), 0, "binding no longer recent");
    assert_eq!(h.take(D1).len(), 1, "relayed");
    assert!(h.kernel.is_empty());
}

#[test]
fn link_changes_removal_and_reload_take_the_answering_back() {
    let forgot = |h: &Harness| {
        h.kernel
            .iter()
            .any(|a| matches!(a, Action::KernelForget { target } if *target == addr(10)))
    };
    let mut h = Harness::guest_asked_for(kernel_config());
    h.clear();
    let new_mac = Mac([0x02, 0, 0, 0, 0, 0x99]);
    h.link(UP, LinkEvent::MacChanged(new_mac));
    assert!(forgot(&h), "a new uplink MAC");
    h.clear();
    h.advance(Duration::from_millis(100));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(answers_on_up(&mut h), 1, "answered here until told again");
    assert!(matches!(h.kernel.as_slice(), [Action::KernelAnswer { mac, .. }] if *mac == new_mac));

    h.clear();
    h.link(D1, LinkEvent::Down);
    assert!(forgot(&h), "the guest's port went down");

    let mut h = Harness::guest_asked_for(kernel_config());
    h.clear();
    h.engine.reload(h.now, kernel_config()).unwrap();
    h.drain();
    assert!(forgot(&h), "reload");

    let mut h = Harness::guest_asked_for(kernel_config());
    h.clear();
    // The guest stops answering: its binding dies after the probes, and the kernel must
    // not answer for it any longer.
    h.advance(Duration::from_secs(120));
    assert!(h.binding(addr(10)).is_none());
    assert!(forgot(&h), "binding removed");
}

#[test]
fn a_refused_entry_leaves_the_answering_to_the_engine() {
    let mut h = Harness::guest_asked_for(kernel_config());
    h.engine.kernel_answer_refused(addr(10));
    h.kernel_model.refuse_answer(addr(10));
    h.clear();
    h.advance(Duration::from_millis(100));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(answers_on_up(&mut h), 1);
    assert_eq!(h.kernel.len(), 1, "told again");
}

#[test]
fn without_the_option_the_kernel_is_never_told() {
    let mut cfg = kernel_config();
    cfg.fast_path_in_kernel = false;
    let mut h = Harness::ready(cfg);
    h.bind_guest(10, D1);
    for _ in 0..3 {
        h.inject(UP, &ns_from_router(addr(10)));
        h.advance(Duration::from_millis(100));
    }
    assert!(h.kernel.is_empty());
    assert_eq!(answers_on_up(&mut h), 3);
}

#[test]
fn an_entry_told_again_after_it_ended_is_not_counted_on_at_once() {
    let mut h = Harness::guest_asked_for(kernel_config());
    let first = told(&h, addr(10));
    h.clear();
    // The window ends (the kernel's entry with it); later the guest confirms again and
    // the next NS tells the kernel anew. NS that reached the kernel between its old
    // entry's end and the new one went unanswered there, so the new entry gets its
    // margin like a first one.
    h.advance(first.saturating_since(h.now) + Duration::from_secs(1));
    h.inject(UP, &ns_from_router(addr(10)));
    h.inject(D1, &na_to_router(gmac(10), D1, addr(10)));
    h.clear();
    let between = h.now;
    h.advance(Duration::from_micros(10));
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(answers_on_up(&mut h), 1);
    assert!(told(&h, addr(10)) > first);
    h.clear();
    h.advance(Duration::from_millis(1));
    h.inject_seen_at(UP, &ns_from_router(addr(10)), between);
    assert_eq!(
        answers_on_up(&mut h),
        1,
        "seen by the kernel between the entries"
    );
    assert_eq!(h.count("answered_by_kernel"), 0);
    h.inject(UP, &ns_from_router(addr(10)));
    assert_eq!(answers_on_up(&mut h), 0, "the new entry answers");
    assert_eq!(h.count("answered_by_kernel"), 1);
}

#[test]
fn a_backed_up_queue_loses_no_ns_the_kernel_saw_before_its_entry() {
    let mut h = Harness::ready(kernel_config());
    h.bind_guest(10, D1);
    let ns = ns_from_router(addr(10));
    // The kernel sees this NS before it has an entry for the guest ...
    let seen = h.now;
    h.advance(Duration::from_micros(10));
    // ... the engine handles the next one first and tells the kernel ...
    h.inject(UP, &ns);
    assert_eq!(answers_on_up(&mut h), 1);
    told(&h, addr(10));
    h.clear();
    // ... and reaches the first one 50 ms later, its receive queue backed up that far:
    // by the engine's own tables the kernel was answering by then, but the kernel's
    // word is that it did not answer this frame, so the engine does.
    h.advance(Duration::from_millis(50));
    h.inject_seen_at(UP, &ns, seen);
    assert_eq!(
        answers_on_up(&mut h),
        1,
        "answered by the engine: nothing lost"
    );
    assert_eq!(h.count("answered_by_kernel"), 0);
}

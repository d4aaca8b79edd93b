//! The owner's side of the runner in namespaces: the level-triggered role and the takeover
//! barrier (the VIPs go up only after the owner answers, or a timeout; leaving Master first
//! cancels the takeover).

mod runner_common;

use std::time::{Duration, Instant};

use havip::fsm::State;
use havip::runner::{StartOptions, TakeoverGate, TakeoverRequest, TransitionReason};
use runner_common::{cfg, has_addr, Lan, Node};
use tokio::sync::mpsc::UnboundedReceiver;

const VIP: &str = "192.0.2.100";

fn gated(timeout: Duration) -> (StartOptions, UnboundedReceiver<TakeoverRequest>) {
    let (gate, rx) = TakeoverGate::with_timeout(timeout);
    (
        StartOptions {
            takeover: Some(gate),
        },
        rx,
    )
}

/// The next takeover request, within `limit`.
fn next_request(rx: &mut UnboundedReceiver<TakeoverRequest>, limit: Duration) -> TakeoverRequest {
    let t0 = Instant::now();
    loop {
        if let Ok(r) = rx.try_recv() {
            return r;
        }
        assert!(t0.elapsed() < limit, "no takeover request within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn the_vip_goes_up_only_after_the_owner_answers() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let (opts, mut rx) = gated(Duration::from_secs(30));
    let na = Node::start_with(a.clone(), cfg("vi", 81, 200, "192.0.2.100/24"), opts);
    let nb = Node::start(b.clone(), cfg("vi", 81, 100, "192.0.2.100/24"));
    let req = next_request(&mut rx, Duration::from_secs(3));
    assert_eq!(req.instance(), "vi");
    let role = *na.role.borrow();
    assert_eq!(role.state, State::Master);
    assert!(!role.vips_held, "the role says: VIPs not up yet");
    assert_eq!(req.since(), role.since);
    assert!(matches!(role.reason, TransitionReason::Vrrp(_)), "{role:?}");
    // The owner works: the VIP stays down, and the state machine keeps advertising (the backup
    // hears a Master and stays Backup well past its Master_Down_Interval of ~360 ms).
    nb.wait_state(State::Backup, Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(800));
    assert!(!has_addr(&a, VIP), "VIP added before the owner answered");
    assert!(!has_addr(&b, VIP));
    assert_eq!(nb.state(), State::Backup, "adverts went on while waiting");
    assert!(!req.is_cancelled());
    let t0 = Instant::now();
    req.ready();
    na.wait(Duration::from_millis(500), "VIP up after the answer", |s| {
        s.vips_held && has_addr(&a, VIP)
    });
    assert!(
        t0.elapsed() < Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    let role = *na.role.borrow();
    assert!(role.state == State::Master && role.vips_held, "{role:?}");

    // Level-triggered: adverts and counters do not wake the role (the status does change).
    let mut role_rx = na.role.clone();
    let mut status_rx = na.status.clone();
    role_rx.borrow_and_update();
    status_rx.borrow_and_update();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        status_rx.has_changed().unwrap(),
        "counters moved the status"
    );
    assert!(
        !role_rx.has_changed().unwrap(),
        "the role moved without a change"
    );

    // Leaving Master: the VIPs are removed before the role says Backup/Initialize.
    drop(nb);
    na.shutdown();
    assert!(!has_addr(&a, VIP));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn a_silent_owner_delays_the_vip_by_the_timeout_only() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let (opts, mut rx) = gated(Duration::from_millis(600));
    let na = Node::start_with(a.clone(), cfg("vi", 82, 200, "192.0.2.100/24"), opts);
    let req = next_request(&mut rx, Duration::from_secs(3));
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(400));
    assert!(!has_addr(&a, VIP), "VIP added before the timeout");
    na.wait(Duration::from_secs(1), "VIP up after the timeout", |s| {
        s.vips_held && has_addr(&a, VIP)
    });
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(550), "{took:?}");
    assert!(req.is_cancelled(), "a timed-out request reads as cancelled");
    assert_eq!(na.state(), State::Master);
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn leaving_master_before_the_answer_cancels_the_takeover() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let (opts, mut rx) = gated(Duration::from_secs(30));
    let na = Node::start_with(a.clone(), cfg("vi", 83, 100, "192.0.2.100/24"), opts);
    let mut req = next_request(&mut rx, Duration::from_secs(3));
    assert_eq!(na.role.borrow().state, State::Master);
    // A higher priority joins and preempts (a's adverts went on: b sees a Master to preempt).
    let nb = Node::start(b.clone(), cfg("vi", 83, 200, "192.0.2.100/24"));
    nb.wait_state(State::Master, Duration::from_secs(3));
    na.wait_state(State::Backup, Duration::from_secs(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(1), req.cancelled())
            .await
            .expect("cancelled");
    });
    assert!(req.is_cancelled());
    let role = *na.role.borrow();
    assert!(role.state == State::Backup && !role.vips_held, "{role:?}");
    assert!(
        matches!(
            role.reason,
            TransitionReason::Vrrp(havip::fsm::Reason::HigherPriority { .. })
        ),
        "{role:?}"
    );
    // A late answer adds nothing.
    req.ready();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!has_addr(&a, VIP), "a cancelled takeover added the VIP");
    assert!(has_addr(&b, VIP));
    assert!(rx.try_recv().is_err(), "no new request while Backup");
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn update_in_place_keeps_the_state_and_refuses_identity_changes() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let na = Node::start(a.clone(), cfg("vi", 84, 200, "192.0.2.100/24"));
    let nb = Node::start(b.clone(), cfg("vi", 84, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(1));
    let since = na.role.borrow().since;

    // Notify and GARP on the Master: applied, no transition, VIP kept.
    let mut c = cfg("vi", 84, 200, "192.0.2.100/24");
    c.notify.master = Some("true".into());
    c.garp.refresh = Some(Duration::from_millis(200));
    na.update(c.clone()).expect("in place");
    let before = na.status.borrow().counters.garp_sent;
    na.wait(Duration::from_secs(2), "the new GARP refresh runs", |s| {
        s.counters.garp_sent >= before + 3
    });
    assert_eq!(na.role.borrow().since, since, "no transition");
    assert!(has_addr(&a, VIP));

    // Identity changes are refused, nothing changed.
    let mut bad = c.clone();
    bad.vrid = 85;
    bad.vips[0].prefix_len = 32;
    match na.update(bad) {
        Err(havip::runner::Error::RestartNeeded { fields, .. }) => assert_eq!(
            fields,
            vec![
                havip::config::ConfigField::Vrid,
                havip::config::ConfigField::Vips
            ]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(na.state(), State::Master);

    // A priority raised in place on the Backup: it preempts (the state machine learns the new
    // priority as tracking would tell it), without a restart (no Startup transition).
    let mut hi = cfg("vi", 84, 250, "192.0.2.100/24");
    hi.notify = c.notify.clone();
    nb.update(hi).expect("priority in place");
    nb.wait_state(State::Master, Duration::from_secs(2));
    na.wait_state(State::Backup, Duration::from_secs(1));
    let role = *nb.role.borrow();
    assert!(
        matches!(
            role.reason,
            TransitionReason::Vrrp(havip::fsm::Reason::MasterDown(
                havip::fsm::DownCause::Preempting { .. }
            ))
        ),
        "{role:?}"
    );
    assert_eq!(nb.status.borrow().effective_priority, 250);
    wait_vip(&b);
    assert!(!has_addr(&a, VIP));

    // A clone of the handle stops the instance like the original.
    nb.shutdown_clone();
    assert!(!has_addr(&b, VIP), "stopped through a clone: VIP removed");
}

fn wait_vip(ns: &testns::Netns) {
    let t0 = Instant::now();
    while !has_addr(ns, VIP) {
        assert!(t0.elapsed() < Duration::from_secs(1), "VIP not added");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn checks_added_and_removed_in_place() {
    use havip::config::{CheckConfig, CheckSpec};
    use havip::track::ProbeSpec;
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let base = cfg("vi", 86, 200, "192.0.2.100/24");
    let na = Node::start(a.clone(), base.clone());
    na.wait_state(State::Master, Duration::from_secs(3));
    // A weight-0 check on a closed port: FAULT, VIP removed, without a restart.
    let mut c = base.clone();
    c.checks.push(CheckConfig {
        check: CheckSpec {
            name: "closed".into(),
            probe: ProbeSpec::Tcp {
                addr: "127.0.0.1:9".parse().unwrap(),
            },
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(200),
            rise: 1,
            fall: 1,
        },
        weight: 0,
    });
    na.update(c).expect("checks change in place");
    na.wait_state(State::Fault, Duration::from_secs(2));
    assert!(!has_addr(&a, VIP), "FAULT removes the VIP");
    let role = *na.role.borrow();
    assert_eq!(
        role.reason,
        TransitionReason::Vrrp(havip::fsm::Reason::TrackFault)
    );
    // The check goes away: the fault clears, Master again (alone on the LAN).
    na.update(base).expect("checks change in place");
    na.wait_state(State::Master, Duration::from_secs(2));
    wait_vip(&a);
}

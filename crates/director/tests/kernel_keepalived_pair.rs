//! The LVS director pair end to end with keepalived 2.2.7 as both directors, inside the IPVS lab
//! VM: traffic through the VIP reaches every real server (DR, NAT, ipip and GUE tunnels), and
//! when the Master dies under load the Backup takes over within a bound. The same scenarios run
//! against `director run` by passing `Implementation::director(BIN)` once it programs IPVS.
//! Run: `tests/lab/run '<test binary> --ignored --test-threads=2'` (tests/check does).
//!
//! Timers: VRRPv3, 200 ms adverts, priorities 150/100 (see `checks::DETECTION_BOUND`).
//! kernel_pair_failover.rs runs the same scenarios with our director.

mod lab_pair;

use lab_pair::checks::{
    self, assert_failover, assert_spread, echo, has_echo_conn, open_echo, secs, DETECTION_BOUND,
};
use lab_pair::{Crash, Forwarding, Implementation, Lab, Load, PairSpec};

const KEEPALIVED: Implementation = Implementation::Keepalived;

/// A keepalived pair up and programmed on both nodes, dir1 Master.
fn pair(spec: PairSpec) -> Lab {
    checks::pair(spec, &KEEPALIVED)
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_spreads_and_survives_the_masters_death() {
    let lab = pair(PairSpec::new(Forwarding::Dr, 3));
    assert_spread(&lab, 3);
    let f = assert_failover(&lab, Crash::Node, 0);
    // dir1 is gone: what was sent to it before dir2's gratuitous ARP is lost, unless dir2's ARP
    // came before dir1's links went down (a slow `ip link` on a busy emulator: measured 0 then)
    if f.gone.saturating_sub(f.crash) < f.detection.unwrap_or_default() {
        assert!(f.failed >= 1, "{}", f.line());
    }
    assert!(lab.holds_vip(1));
    assert_spread(&lab, 3);
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_kill_9_of_keepalived_alone_loses_at_most_the_request_in_flight() {
    // keepalived killed with SIGKILL cannot withdraw anything: the VIP and the IPVS table stay
    // in dir1's kernel, which keeps forwarding until dir2's gratuitous ARP moves the client. The
    // one request that straddles the move can fail: its SYN went through dir1, its next segment
    // reaches dir2, which has no entry for it (no sync daemon here), and dir2's own stack answers
    // RST (measured: 0 or 1 of ~130 requests).
    let lab = pair(PairSpec::new(Forwarding::Dr, 2));
    let f = assert_failover(&lab, Crash::Process, 1);
    assert!(f.failed <= 1, "{}", f.line());
    assert!(lab.holds_vip(0), "the dead daemon's VIP stays on dir1");
    assert!(lab.holds_vip(1));
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn nat_gateway_follows_the_master() {
    let lab = pair(PairSpec::new(Forwarding::Nat, 3));
    assert_spread(&lab, 3);
    assert_failover(&lab, Crash::Node, 0);
    // replies reach the client only through the gateway VIP, now on dir2
    assert_spread(&lab, 3);
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn ipip_tunnel_spreads_and_fails_over() {
    let lab = pair(PairSpec::new(Forwarding::Ipip, 2));
    assert_spread(&lab, 2);
    assert_failover(&lab, Crash::Node, 0);
    assert_spread(&lab, 2);
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn gue_tunnel_spreads() {
    let lab = pair(PairSpec::new(Forwarding::Gue { port: 6080 }, 2));
    assert_spread(&lab, 2);
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_graceful_stop_then_the_old_master_preempts() {
    // SIGTERM: keepalived sends a priority-0 advert, so dir2 takes over after its Skew_Time
    // ((256 - 100) x 200 ms / 256 = 122 ms) instead of Master_Down_Interval. Only a request that
    // straddles a move of the VIP can fail (its next segment meets a node without its entry).
    let lab = pair(PairSpec::new(Forwarding::Dr, 2));
    let f = assert_failover(&lab, Crash::Graceful, 1);
    assert!(f.failed <= 1, "{}", f.line());
    assert!(!lab.holds_vip(0));
    // dir1 comes back with the higher priority and preempts
    let back = lab
        .under_load(Load::for_time(secs(3.0)), secs(0.5), 0, |lab| {
            lab.start_director(0, &Implementation::Keepalived)
        })
        .expect("return run");
    eprintln!("return (preempt): {}", back.line());
    let took = back.detection.expect("dir1 never took the VIP back");
    assert!(took < DETECTION_BOUND + secs(2.0), "{}", back.line());
    assert!(back.failed <= 1, "{}", back.line());
    assert!(
        lab_pair::wait_until(secs(2.0), || !lab.holds_vip(1)),
        "dir2 keeps the VIP after the preemption"
    );
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_return_without_preemption_stays_backup() {
    let mut spec = PairSpec::new(Forwarding::Dr, 2);
    spec.preempt = false;
    let lab = pair(spec);
    lab.crash(0, Crash::Node).expect("crash");
    lab.wait_vip(1, DETECTION_BOUND).expect("takeover");
    lab.revive(0).expect("revive");
    let back = lab
        .under_load(Load::for_time(secs(3.0)), secs(0.3), 0, |lab| {
            lab.start_director(0, &Implementation::Keepalived)
        })
        .expect("return run");
    eprintln!("return (nopreempt): {}", back.line());
    assert_eq!(back.detection, None, "dir1 took the VIP: {}", back.line());
    assert_eq!(back.failed, 0, "{}", back.line());
    assert!(lab.holds_vip(1));
    assert_eq!(lab.spread(4).get("<failed>"), None);
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_connection_survives_failover_with_the_sync_daemon() {
    let mut spec = PairSpec::new(Forwarding::Dr, 2);
    spec.sync_daemon = true;
    let lab = pair(spec);
    let (mut s, mut r, name) = open_echo(&lab);
    assert!(name == "r1" || name == "r2", "{name}");
    assert_eq!(echo(&mut s, &mut r, "before").expect("echo"), "before");
    // IPVS syncs a connection after net.ipv4.vs.sync_threshold (3) packets
    assert!(
        lab_pair::wait_every(secs(3.0), lab_pair::POLL_CMD, || has_echo_conn(&lab, 1)),
        "the Backup never learned the connection\n{}",
        lab.logs()
    );
    lab.crash(0, Crash::Node).expect("crash");
    lab.wait_vip(1, DETECTION_BOUND).expect("takeover");
    assert_eq!(
        echo(&mut s, &mut r, "after").expect("echo after the failover"),
        "after",
        "the same connection, through dir2, to {name}"
    );
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_connection_breaks_on_failover_without_the_sync_daemon() {
    // The control: dir2 has no entry for the connection; a non-SYN segment schedules nothing in
    // IPVS and reaches dir2's own stack, where nothing listens on VIP:9000, so it answers RST.
    let lab = pair(PairSpec::new(Forwarding::Dr, 2));
    let (mut s, mut r, _) = open_echo(&lab);
    assert_eq!(echo(&mut s, &mut r, "before").expect("echo"), "before");
    lab.crash(0, Crash::Node).expect("crash");
    lab.wait_vip(1, DETECTION_BOUND).expect("takeover");
    assert!(!has_echo_conn(&lab, 1));
    let after = echo(&mut s, &mut r, "after");
    assert!(after.as_deref().map_or(true, |l| l != "after"), "{after:?}");
}

#[test]
fn keepalived_configs_differ_only_in_priority() {
    for fwd in [
        Forwarding::Dr,
        Forwarding::Nat,
        Forwarding::Ipip,
        Forwarding::Gue { port: 6080 },
    ] {
        let spec = PairSpec::new(fwd, 3);
        let a = lab_pair::keepalived_conf(&spec, 0);
        let b = lab_pair::keepalived_conf(&spec, 1);
        let diff: Vec<(&str, &str)> = a.lines().zip(b.lines()).filter(|(x, y)| x != y).collect();
        assert_eq!(
            diff,
            [
                ("  router_id dir1", "  router_id dir2"),
                ("  priority 150", "  priority 100")
            ]
        );
        assert!(a.contains("advert_int 0.2"), "{a}");
        assert_eq!(a.matches("real_server ").count(), 3 * 2, "{a}");
        assert_eq!(a.contains("10.77.1.1/24 dev eth1"), fwd == Forwarding::Nat);
        let y = lab_pair::director_yaml(&spec, 1, std::path::Path::new("/tmp/x"));
        assert!(
            y.contains("priority: 100") && y.contains("advert_interval: 200ms"),
            "{y}"
        );
    }
    let gue = lab_pair::keepalived_conf(&PairSpec::new(Forwarding::Gue { port: 6080 }, 1), 0);
    assert!(gue.contains("lvs_method TUN type gue port 6080"), "{gue}");
}

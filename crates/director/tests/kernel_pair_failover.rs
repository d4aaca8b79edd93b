//! The LVS director pair end to end with OUR director (`director run`) as both directors, inside
//! the IPVS lab VM: the same scenarios as kernel_keepalived_pair.rs (same topology, timers, real
//! servers and load, from `lab_pair`), plus what differs: only the VIP holder has the virtual
//! services, the Backup's table stays empty, and the new Master programs them on takeover.
//! Run: `tests/lab/run '<test binary> --ignored --test-threads=2'` (tests/check does).

mod lab_pair;
mod netns_common;

use lab_pair::checks::{
    self, assert_failover, assert_spread, echo, has_echo_conn, open_echo, secs, DETECTION_BOUND,
};
use lab_pair::{wait_every, wait_until, Crash, Forwarding, Implementation, Lab, Load, PairSpec};

fn ours() -> Implementation {
    Implementation::director(netns_common::BIN)
}

/// A pair of our directors, dir1 Master and programmed, dir2's table empty.
fn pair(spec: PairSpec) -> Lab {
    checks::pair(spec, &ours())
}

/// The services are on dir`node+1` only, within `limit`, and the other's table empties.
fn assert_only_on(lab: &Lab, node: usize, limit: std::time::Duration) {
    lab.wait_programmed(node, limit)
        .expect("the Master's table");
    let other = 1 - node;
    let empty = wait_every(limit, lab_pair::POLL_CMD, || {
        lab.ipvs_counts(other).ok() == Some((0, 0))
    });
    assert!(empty, "d{} keeps {:?}", other + 1, lab.ipvs_counts(other));
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
    lab.wait_programmed(1, secs(1.0)).expect("dir2 programmed");
    assert_spread(&lab, 3);
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_kill_9_of_the_director_alone_loses_at_most_the_request_in_flight() {
    // SIGKILL leaves the VIP and the services in dir1's kernel, which keeps forwarding until
    // dir2's gratuitous ARP moves the client; the request straddling the move can fail (its next
    // segment reaches dir2, which has no entry for it, and dir2's stack answers RST).
    let lab = pair(PairSpec::new(Forwarding::Dr, 2));
    let f = assert_failover(&lab, Crash::Process, 1);
    assert!(f.failed <= 1, "{}", f.line());
    assert!(lab.holds_vip(0), "the dead daemon's VIP stays on dir1");
    assert!(lab.holds_vip(1));
    lab.wait_programmed(1, secs(1.0)).expect("dir2 programmed");
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn nat_gateway_follows_the_master() {
    let lab = pair(PairSpec::new(Forwarding::Nat, 3));
    assert_spread(&lab, 3);
    assert_failover(&lab, Crash::Node, 0);
    // replies reach the client only through the gateway VIP (the `inside` instance), now dir2's
    assert!(
        wait_until(DETECTION_BOUND, || lab.directors[1]
            .sh(&format!(
                "ip -4 addr show dev eth1 | grep -q ' {}/'",
                lab.spec.gateway
            ))
            .is_ok()),
        "the gateway VIP is not on dir2\n{}",
        lab.logs()
    );
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
    // SIGTERM: the director sends a priority-0 advert and withdraws its services, so dir2 takes
    // over after its Skew_Time (122 ms) instead of Master_Down_Interval. Only a request that
    // straddles a move of the VIP can fail.
    let lab = pair(PairSpec::new(Forwarding::Dr, 2));
    let f = assert_failover(&lab, Crash::Graceful, 1);
    assert!(f.failed <= 1, "{}", f.line());
    assert!(!lab.holds_vip(0));
    assert_only_on(&lab, 1, secs(2.0));
    // dir1 comes back with the higher priority and preempts; dir2 withdraws. The load runs 6 s:
    // the debug binary takes up to ~3 s to start under emulation before VRRP begins.
    let back = lab
        .under_load(Load::for_time(secs(6.0)), secs(0.5), 0, |lab| {
            lab.start_director(0, &ours())
        })
        .expect("return run");
    eprintln!("return (preempt): {}", back.line());
    let Some(took) = back.detection else {
        panic!("dir1 never took the VIP back\n{}", lab.logs());
    };
    assert!(took < DETECTION_BOUND + secs(3.0), "{}", back.line());
    assert!(back.failed <= 1, "{}\n{}", back.line(), lab.logs());
    assert!(
        wait_until(secs(2.0), || !lab.holds_vip(1)),
        "dir2 keeps the VIP after the preemption"
    );
    assert_only_on(&lab, 0, secs(2.0));
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_return_without_preemption_stays_backup_with_an_empty_table() {
    let mut spec = PairSpec::new(Forwarding::Dr, 2);
    spec.preempt = false;
    let lab = pair(spec);
    lab.crash(0, Crash::Node).expect("crash");
    lab.wait_vip(1, DETECTION_BOUND).expect("takeover");
    lab.revive(0).expect("revive");
    let back = lab
        .under_load(Load::for_time(secs(3.0)), secs(0.3), 0, |lab| {
            lab.start_director(0, &ours())
        })
        .expect("return run");
    eprintln!("return (no preempt): {}", back.line());
    assert_eq!(back.detection, None, "dir1 took the VIP: {}", back.line());
    assert_eq!(back.failed, 0, "{}", back.line());
    assert!(lab.holds_vip(1));
    // what dir1 left in its kernel when it died is withdrawn: the Backup keeps nothing
    assert_only_on(&lab, 1, secs(3.0));
    assert_eq!(lab.spread(4).get("<failed>"), None);
}

/// `ipvsadm -L --daemon` on dir`node+1`.
fn sync_daemon(lab: &Lab, node: usize) -> String {
    lab.directors[node]
        .exec(&["ipvsadm", "-L", "--daemon"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_connection_survives_failover_with_the_sync_daemon() {
    let mut spec = PairSpec::new(Forwarding::Dr, 2);
    spec.sync_daemon = true;
    let lab = pair(spec);
    // the Backup learns only what is sent while its sync daemon runs (a connection is synced
    // once, after net.ipv4.vs.sync_threshold packets, then every sync_period packets)
    for node in 0..2 {
        let role = ["master", "backup"][node];
        assert!(
            wait_every(secs(5.0), lab_pair::POLL_CMD, || sync_daemon(&lab, node)
                .contains(&format!("{role} sync daemon"))),
            "d{}: no {role} sync daemon: {:?}\n{}",
            node + 1,
            sync_daemon(&lab, node),
            lab.logs()
        );
    }
    let (mut s, mut r, name) = open_echo(&lab);
    assert!(name == "r1" || name == "r2", "{name}");
    assert_eq!(echo(&mut s, &mut r, "before").expect("echo"), "before");
    // the Backup's sync daemon (backup state) learns the connection though the Backup has no
    // virtual service: IPVS keeps synced connections without one
    assert!(
        wait_every(secs(3.0), lab_pair::POLL_CMD, || has_echo_conn(&lab, 1)),
        "the Backup never learned the connection\n{}",
        lab.logs()
    );
    lab.crash(0, Crash::Node).expect("crash");
    lab.wait_vip(1, DETECTION_BOUND).expect("takeover");
    assert_eq!(
        echo(&mut s, &mut r, "after").expect("echo after the failover"),
        "after",
        "the same connection, through dir2, to {name}\n{}",
        lab.logs()
    );
}

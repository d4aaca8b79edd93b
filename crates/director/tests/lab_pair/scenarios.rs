//! The scenarios both pair test files run (kernel_keepalived_pair.rs with keepalived 2.2.7,
//! kernel_pair_failover.rs with our director), one function each, taking the implementation.
//! What only our director promises (the Backup's table stays empty, the new Master programs on
//! takeover) is asserted when the implementation does not program the Backup.

use std::time::Duration;

use super::checks::{
    assert_failover, assert_spread, echo, has_echo_conn, open_echo, pair, secs, DETECTION_BOUND,
};
use super::{wait_every, wait_until, Crash, Forwarding, Implementation, Lab, Load, PairSpec};

/// Only the VIP holder programs: its services are on dir`node+1` only, within `limit`.
fn only_on(lab: &Lab, imp: &Implementation, node: usize, limit: Duration) {
    if imp.programs_backup() {
        return;
    }
    lab.wait_programmed(node, limit)
        .expect("the Master's table");
    let other = 1 - node;
    let empty = wait_every(limit, super::POLL_CMD, || {
        lab.ipvs_counts(other).ok() == Some((0, 0))
    });
    assert!(empty, "d{} keeps {:?}", other + 1, lab.ipvs_counts(other));
}

/// DR, three real servers: spread, dir1's node dies under load, dir2 serves.
pub fn dr_spreads_and_survives_the_masters_death(imp: &Implementation) {
    let lab = pair(PairSpec::new(Forwarding::Dr, 3), imp);
    assert_spread(&lab, 3);
    let f = assert_failover(&lab, Crash::Node, 0);
    // dir1 is gone: what was sent to it before dir2's gratuitous ARP is lost, unless dir2's ARP
    // came before dir1's links went down (a slow `ip link` on a busy emulator: measured 0 then)
    if f.gone.saturating_sub(f.crash) < f.detection.unwrap_or_default() {
        assert!(f.failed >= 1, "{}", f.line());
    }
    assert!(lab.holds_vip(1));
    if !imp.programs_backup() {
        // (dir1's kernel keeps its table: a dead node withdraws nothing)
        lab.wait_programmed(1, secs(1.0)).expect("dir2 programmed");
    }
    assert_spread(&lab, 3);
}

/// SIGKILL of the daemon alone: it cannot withdraw anything; the VIP and the IPVS table stay
/// in dir1's kernel, which keeps forwarding until dir2's gratuitous ARP moves the client. The
/// one request that straddles the move can fail: its next segment reaches dir2, which has no
/// entry for it (no sync daemon here), and dir2's own stack answers RST.
pub fn dr_kill_9_of_the_daemon_alone(imp: &Implementation) {
    let lab = pair(PairSpec::new(Forwarding::Dr, 2), imp);
    let f = assert_failover(&lab, Crash::Process, 1);
    assert!(f.failed <= 1, "{}", f.line());
    assert!(lab.holds_vip(0), "the dead daemon's VIP stays on dir1");
    assert!(lab.holds_vip(1));
    if !imp.programs_backup() {
        lab.wait_programmed(1, secs(1.0)).expect("dir2 programmed");
    }
}

/// NAT: the real servers' gateway is a second VIP of the instance, so replies follow the Master.
pub fn nat_gateway_follows_the_master(imp: &Implementation) {
    let lab = pair(PairSpec::new(Forwarding::Nat, 3), imp);
    assert_spread(&lab, 3);
    assert_failover(&lab, Crash::Node, 0);
    let gateway = format!(
        "ip -4 addr show dev eth1 | grep -q ' {}/'",
        lab.spec.gateway
    );
    assert!(
        wait_until(DETECTION_BOUND, || lab.directors[1].sh(&gateway).is_ok()),
        "the gateway VIP is not on dir2\n{}",
        lab.logs()
    );
    assert_spread(&lab, 3);
}

/// ipip: spread, failover, spread.
pub fn ipip_tunnel_spreads_and_fails_over(imp: &Implementation) {
    let lab = pair(PairSpec::new(Forwarding::Ipip, 2), imp);
    assert_spread(&lab, 2);
    assert_failover(&lab, Crash::Node, 0);
    assert_spread(&lab, 2);
}

/// GUE (the kernel's `fou`): spread.
pub fn gue_tunnel_spreads(imp: &Implementation) {
    let lab = pair(PairSpec::new(Forwarding::Gue { port: 6080 }, 2), imp);
    assert_spread(&lab, 2);
}

/// SIGTERM: a priority-0 advert, so dir2 takes over after its Skew_Time
/// ((256 - 100) x 200 ms / 256 = 122 ms) instead of Master_Down_Interval; only a request that
/// straddles a move of the VIP can fail. Then dir1 comes back with the higher priority and
/// preempts. `start`: how long the daemon may take to start (a debug build under emulation
/// takes up to ~3 s before VRRP begins).
pub fn dr_graceful_stop_then_the_old_master_preempts(imp: &Implementation, start: Duration) {
    let lab = pair(PairSpec::new(Forwarding::Dr, 2), imp);
    let f = assert_failover(&lab, Crash::Graceful, 1);
    assert!(f.failed <= 1, "{}", f.line());
    assert!(!lab.holds_vip(0));
    only_on(&lab, imp, 1, secs(2.0));
    let back = lab
        .under_load(Load::for_time(secs(3.0) + start), secs(0.5), 0, |lab| {
            lab.start_director(0, imp)
        })
        .expect("return run");
    eprintln!("return (preempt): {}", back.line());
    let Some(took) = back.detection else {
        panic!("dir1 never took the VIP back\n{}", lab.logs());
    };
    assert!(
        took < DETECTION_BOUND + secs(2.0).max(start),
        "{}",
        back.line()
    );
    assert!(back.failed <= 1, "{}\n{}", back.line(), lab.logs());
    assert!(
        wait_until(secs(2.0), || !lab.holds_vip(1)),
        "dir2 keeps the VIP after the preemption"
    );
    only_on(&lab, imp, 0, secs(2.0));
}

/// Without preemption the returning dir1 stays Backup: no VIP move, no failed request, and
/// (ours) what dir1 left in its kernel when it died is withdrawn.
pub fn dr_return_without_preemption_stays_backup(imp: &Implementation) {
    let mut spec = PairSpec::new(Forwarding::Dr, 2);
    spec.preempt = false;
    let lab = pair(spec, imp);
    lab.crash(0, Crash::Node).expect("crash");
    lab.wait_vip(1, DETECTION_BOUND).expect("takeover");
    lab.revive(0).expect("revive");
    let back = lab
        .under_load(Load::for_time(secs(3.0)), secs(0.3), 0, |lab| {
            lab.start_director(0, imp)
        })
        .expect("return run");
    eprintln!("return (no preempt): {}", back.line());
    assert_eq!(back.detection, None, "dir1 took the VIP: {}", back.line());
    assert_eq!(back.failed, 0, "{}", back.line());
    assert!(lab.holds_vip(1));
    only_on(&lab, imp, 1, secs(3.0));
    assert_eq!(lab.spread(4).get("<failed>"), None);
}

/// `ipvsadm -L --daemon` on dir`node+1`.
fn sync_daemon(lab: &Lab, node: usize) -> String {
    lab.directors[node]
        .exec(&["ipvsadm", "-L", "--daemon"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// With the sync daemon, a long-lived connection through the VIP survives the Master's death:
/// the Backup's sync daemon learned it (after net.ipv4.vs.sync_threshold packets), even where
/// the Backup has no virtual service (IPVS keeps synced connections without one).
pub fn dr_connection_survives_failover_with_the_sync_daemon(imp: &Implementation) {
    let mut spec = PairSpec::new(Forwarding::Dr, 2);
    spec.sync_daemon = true;
    let lab = pair(spec, imp);
    if !imp.programs_backup() {
        // the Backup learns only what is sent while its sync daemon runs
        for node in 0..2 {
            let role = ["master", "backup"][node];
            assert!(
                wait_every(secs(5.0), super::POLL_CMD, || sync_daemon(&lab, node)
                    .contains(&format!("{role} sync daemon"))),
                "d{}: no {role} sync daemon: {:?}\n{}",
                node + 1,
                sync_daemon(&lab, node),
                lab.logs()
            );
        }
    }
    let (mut s, mut r, name) = open_echo(&lab);
    assert!(name == "r1" || name == "r2", "{name}");
    assert_eq!(echo(&mut s, &mut r, "before").expect("echo"), "before");
    assert!(
        wait_every(secs(3.0), super::POLL_CMD, || has_echo_conn(&lab, 1)),
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

//! The runner in namespaces, continued: crash of the master, partition and heal, role-driven
//! ownership with a fence, and notify commands.

mod runner_common;

use std::time::{Duration, Instant};

use havip::config::RoleMode;
use havip::fsm::State;
use runner_common::{cfg, has_addr, mac, Lan, Node};

const VIP: &str = "192.0.2.100";

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn crash_of_the_master_backup_takes_over_within_master_down_interval() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let na = Node::start(a.clone(), cfg("vi", 71, 200, "192.0.2.100/24"));
    let nb = Node::start(b.clone(), cfg("vi", 71, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    let t0 = Instant::now();
    na.crash();
    assert!(
        has_addr(&a, VIP),
        "a crash leaves the VIP behind (no clean exit)"
    );
    nb.wait_state(State::Master, Duration::from_secs(3));
    let took = t0.elapsed();
    // Master_Down_Interval = 3 * 100 ms + (256 - 100) * 100 ms / 256 = 360.9 ms; the last
    // advert heard was up to 100 ms before the crash, so the takeover is at most ~361 ms after it.
    assert!(took >= Duration::from_millis(200), "too early: {took:?}");
    assert!(took < Duration::from_millis(900), "too late: {took:?}");
    let last = nb
        .status
        .borrow()
        .last_transition
        .clone()
        .expect("transition");
    assert!(
        last.reason.to_string().contains("stopped advertising"),
        "{}",
        last.reason
    );
    assert!(has_addr(&b, VIP));
    assert!(has_addr(&a, VIP), "the crashed master's VIP is still there");

    // The crashed node restarts as BACKUP (preempt off): it removes the leftover VIP at once,
    // so exactly one node holds it (keepalived does the same within ~60 ms).
    let mut c = cfg("vi", 71, 200, "192.0.2.100/24");
    c.preempt = false;
    let t0 = Instant::now();
    let na = Node::start(a.clone(), c);
    na.wait_state(State::Backup, Duration::from_secs(1));
    while has_addr(&a, VIP) {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "the restarted BACKUP keeps the crashed master's VIP"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(na.state(), State::Backup);
    assert!(!has_addr(&a, VIP) && has_addr(&b, VIP), "VIP on b only");
    assert!(!na.status.borrow().vips_held);
    assert_eq!(nb.state(), State::Master);
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn a_leftover_vip_is_removed_at_start_in_fault_and_on_attach() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    // Link down at start: FAULT, and a VIP left on the interface by a killed process goes.
    a.ip(&["addr", "add", "192.0.2.100/24", "dev", "eth0"])
        .unwrap();
    a.ip(&["link", "set", "eth0", "down"]).unwrap();
    let na = Node::start(a.clone(), cfg("vi", 73, 100, "192.0.2.100/24"));
    na.wait_state(State::Fault, Duration::from_secs(1));
    na.wait(Duration::from_secs(1), "leftover removed in FAULT", |_| {
        !has_addr(&a, VIP)
    });
    na.shutdown();

    // Started before its interface's source address exists (the interface only carries the
    // leftover VIP, which is never a source): FAULT; the address appears, the instance attaches
    // as BACKUP and removes the leftover on attach.
    let b = lan.host("192.0.2.2/24");
    b.ip(&["addr", "flush", "dev", "eth0"]).unwrap();
    b.ip(&["addr", "add", "192.0.2.100/24", "dev", "eth0"])
        .unwrap();
    let mut c = cfg("vi", 74, 100, "192.0.2.100/24");
    c.preempt = false;
    let nb = Node::start(b.clone(), c);
    nb.wait_state(State::Fault, Duration::from_secs(1));
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"])
        .unwrap();
    nb.wait(Duration::from_secs(2), "attached, leftover removed", |s| {
        s.state != State::Fault && !has_addr(&b, VIP)
    });
    // The leftover was the primary address of 192.0.2.0/24 and 192.0.2.2 its secondary: removing
    // it must not delete the operator's address (the kernel would, without promote_secondaries),
    // and the instance stays attached instead of falling back to FAULT.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        has_addr(&b, "192.0.2.2"),
        "the interface's own address survives"
    );
    assert_eq!(nb.state(), State::Backup);
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn partition_then_heal_leaves_one_master_and_clients_follow() {
    let lan = Lan::new();
    let (a, port_a) = lan.host_port("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let c = lan.host("192.0.2.3/24");
    let na = Node::start(a.clone(), cfg("vi", 72, 200, "192.0.2.100/24"));
    let nb = Node::start(b.clone(), cfg("vi", 72, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    // Links stay up; A is cut off the LAN: B stops hearing A and takes over too (split brain).
    lan.connect(&port_a, false);
    nb.wait_state(State::Master, Duration::from_secs(2));
    assert_eq!(na.state(), State::Master);
    // The client talks to the VIP on B during the split.
    c.exec(&["ping", "-c1", "-W1", VIP])
        .expect("VIP on B answers");
    let neigh = || {
        c.sh(&format!("ip neigh show {VIP} dev eth0"))
            .expect("neigh")
    };
    assert!(neigh().contains(&mac(&b)), "{}", neigh());
    std::thread::sleep(Duration::from_millis(1100)); // past the ARP locktime
    let t0 = Instant::now();
    lan.connect(&port_a, true);
    // Exactly one Master within about one advert interval: A hears B's lower priority, answers
    // at once, B hears A's higher priority and steps down.
    nb.wait_state(State::Backup, Duration::from_secs(2));
    let converged = t0.elapsed();
    assert!(converged < Duration::from_millis(500), "{converged:?}");
    assert_eq!(na.state(), State::Master);
    assert!(has_addr(&a, VIP) && !has_addr(&b, VIP));
    // A re-announced the VIP: the client's entry moves back to A within a second.
    let t1 = Instant::now();
    while !neigh().contains(&mac(&a)) {
        assert!(
            t1.elapsed() < Duration::from_secs(1),
            "client still at {}",
            neigh()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    c.exec(&["ping", "-c1", "-W1", VIP])
        .expect("VIP on A answers");
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn role_driven_failing_fence_keeps_the_vip_off_then_claim_and_release() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let flag = std::env::temp_dir().join(testns::unique_name("havipfence"));
    let mut c = cfg("db", 73, 100, "192.0.2.100/24");
    c.role = RoleMode::External {
        fence: Some(format!("test -e {}", flag.display())),
    };
    let n = Node::start(a.clone(), c);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(n.state(), State::Backup, "role-driven: no election");
    assert!(!has_addr(&a, VIP));
    let e = n.claim().expect_err("fence fails");
    assert!(e.contains("fence"), "{e}");
    assert!(!has_addr(&a, VIP), "failed fence: VIP not taken");
    assert_eq!(n.state(), State::Backup);
    std::fs::write(&flag, "").expect("flag");
    n.claim().expect("fence succeeds");
    assert!(has_addr(&a, VIP));
    assert_eq!(n.state(), State::Master);
    assert!(n.status.borrow().counters.garp_sent > 0);
    n.release().expect("release");
    assert!(!has_addr(&a, VIP));
    assert_eq!(n.state(), State::Backup);
    n.claim().expect("claim again");
    n.shutdown();
    assert!(!has_addr(&a, VIP), "shutdown removes a claimed VIP");
    let _ = std::fs::remove_file(&flag);
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn notify_commands_run_with_keepalived_arguments() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let out = std::env::temp_dir().join(testns::unique_name("havipnotify"));
    let cmd = format!("f() {{ echo \"$*|$HAVIP_FROM\" >> {}; }}; f", out.display());
    let mut c = cfg("vi_gw", 74, 150, "192.0.2.100/24");
    c.notify.backup = Some(cmd.clone());
    c.notify.master = Some(cmd.clone());
    c.notify.stop = Some(cmd);
    let n = Node::start(a.clone(), c);
    n.wait_state(State::Master, Duration::from_secs(3));
    n.shutdown();
    let got = std::fs::read_to_string(&out).expect("notify output");
    let _ = std::fs::remove_file(&out);
    assert_eq!(
        got,
        "INSTANCE vi_gw BACKUP 150|INIT\nINSTANCE vi_gw MASTER 150|BACKUP\nINSTANCE vi_gw STOP 150|MASTER\n",
        "one line per transition, in order; stop last"
    );
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn dropping_every_handle_resigns_and_removes_the_vip() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let na = Node::start(a.clone(), cfg("vi", 75, 200, "192.0.2.100/24"));
    let nb = Node::start(b.clone(), cfg("vi", 75, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    let t0 = Instant::now();
    na.drop_handle();
    assert!(
        !has_addr(&a, VIP),
        "VIP removed without an explicit shutdown"
    );
    // The resign (priority 0) made B take over after Skew_Time, not Master_Down_Interval.
    let last = nb
        .status
        .borrow()
        .last_transition
        .clone()
        .expect("transition");
    assert_eq!(last.to, State::Master);
    assert!(
        last.reason.to_string().contains("resigned"),
        "{}",
        last.reason
    );
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn garp_refresh_repeats_while_master() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let mut c = cfg("vi", 76, 200, "192.0.2.100/24");
    c.garp.repeat = 1;
    c.garp.refresh = Some(Duration::from_millis(200));
    let na = Node::start(a.clone(), c);
    na.wait_state(State::Master, Duration::from_secs(3));
    let n0 = na.status.borrow().counters.garp_sent;
    std::thread::sleep(Duration::from_millis(1100));
    let n1 = na.status.borrow().counters.garp_sent;
    // One frame per refresh, every 200 ms: about 5 in 1.1 s.
    assert!((4..=7).contains(&(n1 - n0)), "{n0} -> {n1}");
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn interface_deleted_and_recreated_faults_then_recovers() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let na = Node::start(a.clone(), cfg("vi", 77, 200, "192.0.2.100/24"));
    let nb = Node::start(b.clone(), cfg("vi", 77, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    a.ip(&["link", "del", "eth0"]).expect("delete eth0");
    na.wait_state(State::Fault, Duration::from_secs(2));
    nb.wait_state(State::Master, Duration::from_secs(2));
    // The same name again, a new index and MAC: the instance reopens its sockets and preempts.
    a.plug(&lan.bridge, "eth0", "192.0.2.1/24")
        .expect("re-plug");
    na.wait_state(State::Master, Duration::from_secs(4));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    assert!(has_addr(&a, VIP) && !has_addr(&b, VIP));
}

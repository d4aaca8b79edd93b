//! The runner in network namespaces: two (or three) nodes on a bridge, real raw sockets, real
//! netlink, real GARP. Each test builds its own namespaces and bridge.

mod runner_common;

use std::time::{Duration, Instant};

use havip::config::{CheckConfig, CheckSpec, TrackInterface};

use havip::fsm::State;
use havip::track::ProbeSpec;
use runner_common::{cfg, has_addr, mac, pair, Lan, Node};

const VIP: &str = "192.0.2.100";

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn election_by_priority_vip_on_master_only_then_graceful_handover() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let na = Node::start(a.clone(), cfg("vi", 51, 200, "192.0.2.100/24"));
    let nb = Node::start(b.clone(), cfg("vi", 51, 100, "192.0.2.100/24"));
    // Master_Down_Interval at 100 ms: 3 * 100 ms + skew (< 100 ms).
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait(Duration::from_secs(2), "backup sees A as master", |s| {
        s.state == State::Backup && s.master == Some("192.0.2.1".parse().unwrap())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(nb.state(), State::Backup, "stays backup while A advertises");
    assert!(has_addr(&a, VIP), "VIP on master");
    assert!(!has_addr(&b, VIP), "no VIP on backup");
    assert!(na.status.borrow().vips_held);
    assert!(nb.status.borrow().counters.adverts_rx > 0);

    // Graceful stop: priority 0 -> the backup takes over after Skew_Time (~61 ms at p=100).
    let t0 = Instant::now();
    na.shutdown();
    assert!(!has_addr(&a, VIP), "shutdown removed the VIP");
    nb.wait_state(State::Master, Duration::from_secs(2));
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(600), "handover took {took:?}");
    assert!(has_addr(&b, VIP));
    let last = nb.status.borrow().last_transition.clone().unwrap();
    assert!(
        last.reason.to_string().contains("resigned"),
        "{}",
        last.reason
    );
    nb.shutdown();
    assert!(!has_addr(&b, VIP));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn link_down_on_master_faults_it_and_backup_takes_over() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let na = Node::start(a.clone(), cfg("vi", 52, 200, "192.0.2.100/24"));
    let nb = Node::start(b.clone(), cfg("vi", 52, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(1));
    a.ip(&["link", "set", "eth0", "down"]).unwrap();
    let t0 = Instant::now();
    na.wait_state(State::Fault, Duration::from_secs(2));
    assert!(!has_addr(&a, VIP), "FAULT removes the VIP");
    assert!(na
        .status
        .borrow()
        .fault_reason
        .as_deref()
        .unwrap_or("")
        .contains("eth0"));
    nb.wait_state(State::Master, Duration::from_secs(3));
    // Master_Down_Interval for p=100 at 100 ms is 361 ms.
    assert!(
        t0.elapsed() < Duration::from_millis(1200),
        "{:?}",
        t0.elapsed()
    );
    assert!(has_addr(&b, VIP));
    // Link back: A preempts again (higher priority, preempt on).
    a.ip(&["link", "set", "eth0", "up"]).unwrap();
    na.wait_state(State::Master, Duration::from_secs(4));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    assert!(has_addr(&a, VIP) && !has_addr(&b, VIP));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn garp_moves_the_observers_neighbour_entry_to_the_new_master() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let c = lan.host("192.0.2.3/24");
    let na = Node::start(a.clone(), cfg("vi", 53, 200, "192.0.2.100/24"));
    let nb = Node::start(b.clone(), cfg("vi", 53, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    c.exec(&["ping", "-c1", "-W1", VIP])
        .expect("VIP answers on A");
    let neigh = |ns: &testns::Netns| ns.sh(&format!("ip neigh show {VIP} dev eth0")).unwrap();
    assert!(neigh(&c).contains(&mac(&a)), "{}", neigh(&c));
    // Past the ARP locktime (1 s), so an announcement may override the entry.
    std::thread::sleep(Duration::from_millis(1100));
    let garp_before = nb.status.borrow().counters.garp_sent;
    na.shutdown();
    nb.wait_state(State::Master, Duration::from_secs(2));
    let mac_b = mac(&b);
    let t0 = Instant::now();
    while !neigh(&c).contains(&mac_b) {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "observer still has {}",
            neigh(&c)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(nb.status.borrow().counters.garp_sent > garp_before);
    // No traffic from C was needed: the entry moved on the announcement alone.
    c.exec(&["ping", "-c1", "-W1", VIP])
        .expect("VIP answers on B");
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn unicast_mode_elects_and_fails_over_and_ignores_strangers() {
    // A veth pair, not the bridge (see `runner_common::pair`).
    let (a, b) = pair("192.0.2.1/24", "192.0.2.2/24");
    a.ip(&["addr", "add", "192.0.2.9/24", "dev", "eth0"])
        .unwrap();
    let mut ca = cfg("vi", 54, 200, "192.0.2.100/24");
    ca.unicast_peers = vec!["192.0.2.2".parse().unwrap()];
    let mut cb = cfg("vi", 54, 100, "192.0.2.100/24");
    cb.unicast_peers = vec!["192.0.2.1".parse().unwrap()];
    // A stranger (a second address on A's link) advertising priority 250 by unicast to B must
    // be ignored by B: it is not a configured peer.
    let mut cs = cfg("vs", 54, 250, "192.0.2.100/24");
    cs.unicast_src = Some("192.0.2.9".parse().unwrap());
    cs.unicast_peers = vec!["192.0.2.2".parse().unwrap()];
    cs.vips = vec![havip::config::Vip {
        addr: "192.0.2.200".parse().unwrap(),
        prefix_len: 32,
    }];
    let nb = Node::start(b.clone(), cb);
    let stranger = Node::start(a.clone(), cs);
    stranger.wait_state(State::Master, Duration::from_secs(3));
    let na = Node::start(a.clone(), ca);
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait(Duration::from_secs(3), "B backup of A", |st| {
        st.state == State::Backup && st.master == Some("192.0.2.1".parse().unwrap())
    });
    assert!(
        nb.status
            .borrow()
            .counters
            .drops
            .get("not_from_peer")
            .copied()
            .unwrap_or(0)
            > 0
    );
    drop(stranger);
    let t0 = Instant::now();
    na.shutdown();
    nb.wait_state(State::Master, Duration::from_secs(2));
    assert!(
        t0.elapsed() < Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
    assert!(has_addr(&b, VIP));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn ipv6_vip_v3_election_and_handover() {
    let lan = Lan::new();
    let a = lan.host("2001:db8::1/64");
    let b = lan.host("2001:db8::2/64");
    let na = Node::start(a.clone(), cfg("vi6", 55, 200, "2001:db8::100/64"));
    let nb = Node::start(b.clone(), cfg("vi6", 55, 100, "2001:db8::100/64"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(nb.state(), State::Backup);
    assert!(has_addr(&a, "2001:db8::100") && !has_addr(&b, "2001:db8::100"));
    assert!(
        na.status.borrow().counters.garp_sent > 0,
        "unsolicited NA sent"
    );
    na.shutdown();
    assert!(!has_addr(&a, "2001:db8::100"));
    nb.wait_state(State::Master, Duration::from_secs(2));
    assert!(has_addr(&b, "2001:db8::100"));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn tcp_check_on_a_port_that_stops_accepting_releases_the_vip() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    // The "reverse proxy" on A: a listener in A's namespace (a socket keeps its namespace).
    let listener = a
        .run(|| std::net::TcpListener::bind("127.0.0.1:18080"))
        .unwrap()
        .expect("listen in A");
    let mut ca = cfg("vi", 56, 200, "192.0.2.100/24");
    ca.checks = vec![CheckConfig {
        check: CheckSpec {
            name: "proxy".into(),
            probe: ProbeSpec::Tcp {
                addr: "127.0.0.1:18080".parse().unwrap(),
            },
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(200),
            rise: 2,
            fall: 2,
        },
        weight: 0,
    }];
    ca.track_interfaces = vec![TrackInterface {
        name: "lo".into(),
        weight: 0,
    }];
    let na = Node::start(a.clone(), ca);
    let nb = Node::start(b.clone(), cfg("vi", 56, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    drop(listener);
    na.wait_state(State::Fault, Duration::from_secs(2));
    assert!(na
        .status
        .borrow()
        .fault_reason
        .as_deref()
        .unwrap_or("")
        .contains("proxy"));
    assert!(!has_addr(&a, VIP));
    nb.wait_state(State::Master, Duration::from_secs(2));
    assert!(has_addr(&b, VIP));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn external_weight_lowers_master_below_backup() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let na = Node::start(a.clone(), cfg("vi", 57, 150, "192.0.2.100/24"));
    let nb = Node::start(b.clone(), cfg("vi", 57, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    na.set_weight(-100);
    na.wait(Duration::from_secs(1), "priority 50", |s| {
        s.effective_priority == 50
    });
    nb.wait_state(State::Master, Duration::from_secs(2));
    na.wait_state(State::Backup, Duration::from_secs(2));
    assert!(has_addr(&b, VIP) && !has_addr(&a, VIP));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn external_fault_holds_the_master_in_fault_until_cleared() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let na = Node::start(a.clone(), cfg("vi", 60, 150, "192.0.2.100/24"));
    let nb = Node::start(b.clone(), cfg("vi", 60, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    // The owner's fault: a true FAULT (not a low priority), its reason published.
    na.set_fault(Some("quorum lost"));
    na.wait_state(State::Fault, Duration::from_secs(1));
    assert_eq!(
        na.status.borrow().fault_reason.as_deref(),
        Some("quorum lost")
    );
    assert!(!has_addr(&a, VIP), "FAULT holds no VIP");
    nb.wait_state(State::Master, Duration::from_secs(2));
    assert!(has_addr(&b, VIP));
    // A weight does not lift it: only clearing the fault does.
    na.set_weight(50);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(na.state(), State::Fault);
    na.set_fault(None);
    na.wait(Duration::from_secs(2), "out of FAULT", |s| {
        s.state != State::Fault && s.fault_reason.is_none()
    });
    // 150 + 50 preempts the Backup's 100.
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    assert!(has_addr(&a, VIP) && !has_addr(&b, VIP));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn http_check_on_a_hung_proxy_releases_the_vip() {
    use std::io::{Read, Write};
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    // A tiny HTTP server in A's namespace that answers 200 until told to hang: then it keeps
    // accepting connections (the kernel still completes the handshake) but never answers,
    // like a wedged reverse proxy. A TCP connect check would not notice; the HTTP check does.
    let listener = a
        .run(|| std::net::TcpListener::bind("127.0.0.1:18081"))
        .unwrap()
        .expect("listen in A");
    let hung = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hung2 = hung.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            if hung2.load(std::sync::atomic::Ordering::SeqCst) {
                held.push(s);
                continue;
            }
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let mut ca = cfg("vi", 58, 200, "192.0.2.100/24");
    ca.checks = vec![CheckConfig {
        check: CheckSpec {
            name: "proxy-http".into(),
            probe: ProbeSpec::Http {
                addr: "127.0.0.1:18081".parse().unwrap(),
                host: Some("proxy.example".into()),
                path: "/healthz".into(),
                expect_status: 200,
            },
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(150),
            rise: 1,
            fall: 2,
        },
        weight: 0,
    }];
    let na = Node::start(a.clone(), ca);
    let nb = Node::start(b.clone(), cfg("vi", 58, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    hung.store(true, std::sync::atomic::Ordering::SeqCst);
    let t0 = Instant::now();
    na.wait_state(State::Fault, Duration::from_secs(2));
    // fall 2 at 50 ms + 150 ms timeouts: well under a second.
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    let reason = na.status.borrow().fault_reason.clone().unwrap_or_default();
    assert!(reason.contains("timed out"), "{reason}");
    nb.wait_state(State::Master, Duration::from_secs(2));
    assert!(has_addr(&b, VIP) && !has_addr(&a, VIP));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn ipv6_unicast_with_global_sources() {
    let (a, b) = pair("2001:db8::1/64", "2001:db8::2/64");
    let mut ca = cfg("vi6", 59, 200, "2001:db8::100/64");
    ca.unicast_src = Some("2001:db8::1".parse().unwrap());
    ca.unicast_peers = vec!["2001:db8::2".parse().unwrap()];
    let mut cb = cfg("vi6", 59, 100, "2001:db8::100/64");
    cb.unicast_src = Some("2001:db8::2".parse().unwrap());
    cb.unicast_peers = vec!["2001:db8::1".parse().unwrap()];
    let na = Node::start(a.clone(), ca);
    let nb = Node::start(b.clone(), cb);
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait(Duration::from_secs(2), "B backup of A", |st| {
        st.state == State::Backup && st.master == Some("2001:db8::1".parse().unwrap())
    });
    assert!(has_addr(&a, "2001:db8::100") && !has_addr(&b, "2001:db8::100"));
    na.shutdown();
    nb.wait_state(State::Master, Duration::from_secs(2));
    assert!(has_addr(&b, "2001:db8::100"));
}

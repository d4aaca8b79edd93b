//! The runner when its interface or address is not there: it starts in FAULT with the reason,
//! attaches by itself when they appear, and uses the address it now sends from in elections.

mod runner_common;

use std::time::Duration;

use havip::fsm::State;
use runner_common::{addrs, cfg, has_addr, Lan, Node};

fn fault_reason(n: &Node) -> Option<String> {
    n.status.borrow().fault_reason.clone()
}

fn wait_reason(n: &Node, want: &str) {
    n.wait(Duration::from_secs(3), want, |s| {
        s.state == State::Fault && s.fault_reason.as_deref() == Some(want)
    });
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn late_interface_and_address_fault_then_the_instance_wins_the_election() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let b = lan.host("192.0.2.2/24");
    let nb = Node::start(b.clone(), cfg("vi", 81, 100, "192.0.2.100/24"));
    nb.wait_state(State::Master, Duration::from_secs(3));
    let mut c = cfg("vi", 81, 200, "192.0.2.100/24");
    c.interface = "eth1".into();
    let na = Node::start(a.clone(), c);
    wait_reason(&na, "interface eth1 not found");
    // The NIC appears without an address: still FAULT, now for the address.
    a.plug(&lan.bridge, "eth1", "").expect("plug eth1");
    wait_reason(&na, "no IPv4 address on eth1");
    assert_eq!(nb.state(), State::Master);
    // The address arrives: the instance attaches, runs the election and preempts b.
    a.ip(&["addr", "add", "192.0.2.5/24", "dev", "eth1"])
        .expect("address");
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    assert_eq!(fault_reason(&na), None);
    let failures = na.status.borrow().counters.attach_failures;
    assert!(
        failures >= 2,
        "missing NIC, then missing address: {failures}"
    );
    assert_eq!(
        nb.status.borrow().master,
        Some("192.0.2.5".parse().unwrap()),
        "b hears a's adverts from eth1's address"
    );
    assert!(addrs(&a, "eth1").contains("192.0.2.100/24"));
    assert!(!has_addr(&b, "192.0.2.100"));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn ipv6_instance_attaches_when_the_link_local_address_appears() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let mut c = cfg("vi6", 82, 200, "2001:db8::100/64");
    c.interface = "eth1".into();
    let na = Node::start(a.clone(), c);
    wait_reason(&na, "interface eth1 not found");
    // Up without any configured address: the kernel adds fe80:: after link up (DAD is off
    // in these namespaces); the address event attaches the instance.
    a.plug(&lan.bridge, "eth1", "").expect("plug eth1");
    na.wait_state(State::Master, Duration::from_secs(3));
    let src = na.status.borrow().master.expect("master address");
    assert!(src.to_string().starts_with("fe80::"), "{src}");
    assert!(addrs(&a, "eth1").contains("2001:db8::100/64"));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn recreated_interface_with_a_new_address_uses_it_for_the_tie_break() {
    // Equal priorities: the higher primary address wins (RFC 9568 - Section 6.4.3).
    let lan = Lan::new();
    let a = lan.host("192.0.2.3/24");
    let b = lan.host("192.0.2.2/24");
    let na = Node::start(a.clone(), cfg("vi", 83, 100, "192.0.2.100/24"));
    let nb = Node::start(b.clone(), cfg("vi", 83, 100, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    nb.wait_state(State::Backup, Duration::from_secs(2));
    // a's eth0 is deleted and comes back as 192.0.2.1, now below b's 192.0.2.2.
    a.ip(&["link", "del", "eth0"]).expect("delete eth0");
    wait_reason(&na, "interface eth0 not found");
    nb.wait_state(State::Master, Duration::from_secs(2));
    let port = a
        .plug(&lan.bridge, "eth0", "192.0.2.1/24")
        .expect("re-plug");
    na.wait_state(State::Backup, Duration::from_secs(3));
    // Split brain: both become Master. On heal the tie-break must use 192.0.2.1 (a loses); with
    // the old 192.0.2.3 each side would think it wins and both would stay Master.
    lan.connect(&port, false);
    na.wait_state(State::Master, Duration::from_secs(3));
    assert_eq!(nb.state(), State::Master);
    lan.connect(&port, true);
    na.wait(Duration::from_secs(3), "a yields to b", |s| {
        s.state == State::Backup && s.master == Some("192.0.2.2".parse().unwrap())
    });
    assert_eq!(nb.state(), State::Master);
    assert!(has_addr(&b, "192.0.2.100"));
    assert!(!has_addr(&a, "192.0.2.100"));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn source_address_removed_faults_and_a_new_one_recovers() {
    let lan = Lan::new();
    let a = lan.host("192.0.2.1/24");
    let na = Node::start(a.clone(), cfg("vi", 84, 200, "192.0.2.100/24"));
    na.wait_state(State::Master, Duration::from_secs(3));
    assert_eq!(
        na.status.borrow().master,
        Some("192.0.2.1".parse().unwrap())
    );
    // The only address goes: nothing to send from, FAULT, VIP removed.
    a.ip(&["addr", "del", "192.0.2.1/24", "dev", "eth0"])
        .expect("del address");
    wait_reason(&na, "no IPv4 address on eth0");
    assert!(!has_addr(&a, "192.0.2.100"));
    // Another address: attached again, Master, sending from the new address.
    a.ip(&["addr", "add", "192.0.2.7/24", "dev", "eth0"])
        .expect("add address");
    na.wait_state(State::Master, Duration::from_secs(3));
    assert_eq!(
        na.status.borrow().master,
        Some("192.0.2.7".parse().unwrap())
    );
    assert!(has_addr(&a, "192.0.2.100"));
}

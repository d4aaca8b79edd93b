//! Transport and lifecycle modes with the `director` binary in namespaces: unicast peers, an
//! IPv6 VIP, SIGHUP reload (an invalid file keeps the running config, a valid one is applied),
//! an interface that appears after the start (FAULT with the reason, then the election).

mod netns_common;

use std::time::Duration;

use netns_common::{instance, wait_for, Lan};

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn unicast_peers_elect_and_fail_over() {
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    // A third node with the same VRID but not in the peer lists: its adverts must be ignored.
    let mut c = lan.host("c", "198.51.100.3/24");
    let uni =
        |src: &str, peer: &str| format!("    unicast_src_ip: {src}\n    unicast_peer: [{peer}]\n");
    a.start(&instance(
        "web",
        71,
        150,
        "198.51.100.100/24",
        &uni("198.51.100.1", "198.51.100.2"),
    ));
    b.start(&instance(
        "web",
        71,
        100,
        "198.51.100.100/24",
        &uni("198.51.100.2", "198.51.100.1"),
    ));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    // c sends unicast to b with a higher priority; b accepts adverts from a only.
    c.start(&instance(
        "web",
        71,
        250,
        "198.51.100.101/24",
        &uni("198.51.100.3", "198.51.100.2"),
    ));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(b.state().as_deref(), Some("BACKUP"));
    let doc = b.status_json().expect("status");
    assert_eq!(doc["instances"][0]["master"], "198.51.100.1", "{doc}");
    // No multicast on the wire from a: nothing to 224.0.0.18.
    let dump =
        b.ns.sh("timeout 0.5 tcpdump -nli eth0 -c 2 'ip proto 112' 2>/dev/null || true")
            .unwrap_or_default();
    assert!(!dump.contains("224.0.0.18"), "{dump}");
    assert!(dump.contains("198.51.100.1 > 198.51.100.2"), "{dump}");
    a.crash();
    b.wait_state("MASTER", Duration::from_secs(2));
    wait_for(Duration::from_secs(1), "VIP on b", || {
        b.has_addr("198.51.100.100")
    });
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn ipv6_vip_moves_on_graceful_stop() {
    let lan = Lan::new();
    let mut a = lan.host("a", "2001:db8::1/64");
    let mut b = lan.host("b", "2001:db8::2/64");
    let vip = "2001:db8::100/64";
    a.start(&instance("web6", 72, 150, vip, ""));
    b.start(&instance("web6", 72, 100, vip, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    wait_for(Duration::from_secs(1), "VIP on a", || {
        a.has_addr("2001:db8::100")
    });
    assert!(!b.has_addr("2001:db8::100"));
    a.signal("TERM");
    b.wait_state("MASTER", Duration::from_secs(1));
    assert!(a.wait_exit(Duration::from_secs(6)).success());
    assert!(!a.has_addr("2001:db8::100"));
    wait_for(Duration::from_secs(1), "VIP on b", || {
        b.has_addr("2001:db8::100")
    });
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn sighup_invalid_file_keeps_running_valid_file_is_applied() {
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    let one = instance("web", 73, 150, "198.51.100.100/24", "");
    a.start(&one);
    a.wait_state("MASTER", Duration::from_secs(3));

    // Invalid: VRID out of range. The daemon keeps running its instance and says why.
    a.write_config(&instance("web", 73, 150, "198.51.100.100/24", "").replace("73", "300"));
    a.signal("HUP");
    let log = lan.dir.join("a.log");
    wait_for(Duration::from_secs(2), "reload refusal logged", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("VRID 300 out of range 1..255"))
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let at = format!("{}:7:24:", a.config_path().display());
    assert!(
        text.contains(&at),
        "the refusal names FILE:LINE:COL ({at}): {text}"
    );
    assert_eq!(a.state().as_deref(), Some("MASTER"));
    assert!(a.has_addr("198.51.100.100"));

    // Valid: a second instance added, the first one untouched.
    let two = instance("api", 74, 150, "198.51.100.101/24", "");
    a.write_config(&format!("{one}{two}"));
    a.signal("HUP");
    wait_for(Duration::from_secs(3), "api is master", || {
        a.status_json().is_some_and(|d| {
            d["instances"][1]["name"] == "api" && d["instances"][1]["state"] == "MASTER"
        })
    });
    assert!(a.has_addr("198.51.100.101"));
    let doc = a.status_json().expect("status");
    assert_eq!(
        doc["instances"][0]["state"], "MASTER",
        "web untouched: {doc}"
    );

    // Removed: web goes away and its VIP with it.
    a.write_config(&two);
    a.signal("HUP");
    wait_for(Duration::from_secs(3), "web removed", || {
        a.status_json()
            .is_some_and(|d| d["instances"].as_array().is_some_and(|v| v.len() == 1))
    });
    wait_for(Duration::from_secs(1), "web's VIP removed", || {
        !a.has_addr("198.51.100.100")
    });
    assert!(a.has_addr("198.51.100.101"));
    a.signal("TERM");
    assert!(a.wait_exit(Duration::from_secs(6)).success());
    assert!(!a.has_addr("198.51.100.101"));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn missing_interface_is_fault_in_status_until_the_nic_appears_then_it_wins() {
    let lan = Lan::new();
    let mut b = lan.host("b", "198.51.100.2/24");
    b.start(&instance("web", 75, 100, "198.51.100.100/24", ""));
    b.wait_state("MASTER", Duration::from_secs(3));
    // a is configured on eth1, which does not exist yet: the daemon runs, the instance is in
    // FAULT and says why (as keepalived does), instead of exiting.
    let mut a = lan.host("a", "198.51.100.1/24");
    a.start(&instance("web", 75, 150, "198.51.100.100/24", "").replace("eth0", "eth1"));
    wait_for(Duration::from_secs(3), "FAULT with its reason", || {
        a.state().as_deref() == Some("FAULT")
            && a.instance_field("fault_reason").as_deref() == Some("interface eth1 not found")
    });
    let out = std::process::Command::new(netns_common::BIN)
        .args(["status", "--socket"])
        .arg(a.socket())
        .output()
        .expect("director status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAULT") && text.contains("[fault: interface eth1 not found]"),
        "{text}"
    );
    // The NIC appears (with its address): the instance attaches, runs the election and, with
    // the higher priority, preempts b.
    a.ns.plug(&lan.bridge, "eth1", "198.51.100.5/24")
        .expect("plug eth1");
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(2));
    assert_eq!(a.instance_field("fault_reason"), None);
    let doc = b.status_json().expect("status");
    assert_eq!(doc["instances"][0]["master"], "198.51.100.5", "{doc}");
    wait_for(Duration::from_secs(1), "VIP on a's eth1", || {
        a.ns.sh("ip -o addr show dev eth1")
            .is_ok_and(|s| s.contains(" 198.51.100.100/24"))
    });
    assert!(!b.has_addr("198.51.100.100"));
    a.signal("TERM");
    assert!(a.wait_exit(Duration::from_secs(6)).success());
}

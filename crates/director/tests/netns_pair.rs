//! Two `director run` processes in namespaces on a bridge, configured with YAML files, as an
//! operator runs them: election, preemption, crash and graceful failover, restart after a crash
//! (as BACKUP, and preempting), partition and heal, `director status --json`. 100 ms adverts keep every test within a few seconds.

mod netns_common;

use std::time::{Duration, Instant};

use netns_common::{instance, wait_for, Lan, BIN};

const VIP: &str = "198.51.100.100";
const VIP24: &str = "198.51.100.100/24";
const IGNORE: &str = "needs root and network namespaces: tests/check runs it";

/// RFC 9568 - Section 6.1: Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time, with
/// Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256; in milliseconds.
fn master_down_ms(priority: u64, adver_ms: u64) -> u64 {
    3 * adver_ms + (256 - priority) * adver_ms / 256
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn election_by_priority_and_status_json() {
    let _ = IGNORE;
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    a.start(&instance("web", 51, 150, VIP24, ""));
    b.start(&instance("web", 51, 100, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    wait_for(Duration::from_secs(1), "VIP on a", || a.has_addr(VIP));
    assert!(!b.has_addr(VIP), "the backup holds no VIP");

    // The status document, from the running daemon.
    let doc = b.status_json().expect("status");
    let i = &doc["instances"][0];
    assert_eq!(doc["version"], 1);
    assert_eq!(i["name"], "web");
    assert_eq!(i["interface"], "eth0");
    assert_eq!(i["vrid"], 51);
    assert_eq!(i["vrrp_version"], 3);
    assert_eq!(i["state"], "BACKUP");
    assert_eq!(i["vips"][0], VIP24);
    assert_eq!(
        i["master"], "198.51.100.1",
        "backup knows the master: {doc}"
    );
    assert_eq!(i["priority"], 100);
    assert_eq!(i["effective_priority"], 100);
    assert_eq!(i["last_transition"]["to"], "BACKUP");
    assert!(i["last_transition"]["at_unix_ms"].as_u64().unwrap_or(0) > 1_600_000_000_000);

    // The human table.
    let out = std::process::Command::new(BIN)
        .args(["status", "--socket"])
        .arg(a.socket())
        .output()
        .expect("status");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("INSTANCE  IFACE  VRID  STATE"), "{table}");
    assert!(
        table.contains("web       eth0   51    MASTER  150"),
        "{table}"
    );

    // A stable pair: still one master after several adverts.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(a.state().as_deref(), Some("MASTER"));
    assert_eq!(b.state().as_deref(), Some("BACKUP"));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn equal_priority_higher_primary_address_wins() {
    // RFC 9568 - Section 6.4.3 ({Active}): "If the Priority in the ADVERTISEMENT is equal to the
    // local Priority and the primary IPvX Address of the sender is greater than the local
    // primary IPvX Address, then ... transition to the {Backup} state". The tie-break is between
    // two masters (a Backup never preempts an equal-priority master), so both start apart.
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    isolate(&[&a.port, &b.port], true);
    a.start(&instance("web", 52, 100, VIP24, ""));
    b.start(&instance("web", 52, 100, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("MASTER", Duration::from_secs(3));
    isolate(&[&a.port, &b.port], false);
    a.wait_state("BACKUP", Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        b.state().as_deref(),
        Some("MASTER"),
        "198.51.100.2 > 198.51.100.1 wins"
    );
    assert_eq!(a.state().as_deref(), Some("BACKUP"));
    assert!(b.has_addr(VIP) && !a.has_addr(VIP));
}

/// Bridge port isolation: isolated ports do not reach each other; links stay up.
fn isolate(ports: &[&String], on: bool) {
    for p in ports {
        let v = if on { "on" } else { "off" };
        testns::run(&["bridge", "link", "set", "dev", p, "isolated", v]).expect("bridge isolated");
    }
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn preempt_and_nopreempt() {
    let lan = Lan::new();
    // b (lower priority) is master alone; a (higher) joins and preempts.
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    b.start(&instance("web", 53, 100, VIP24, ""));
    b.wait_state("MASTER", Duration::from_secs(3));
    a.start(&instance("web", 53, 150, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    wait_for(Duration::from_secs(1), "VIP moved to a", || {
        a.has_addr(VIP) && !b.has_addr(VIP)
    });

    // Same again with `preempt: false` on the higher-priority node: it stays backup.
    let lan2 = Lan::new();
    let mut c = lan2.host("c", "198.51.100.1/24");
    let mut d = lan2.host("d", "198.51.100.2/24");
    d.start(&instance("web", 53, 100, VIP24, ""));
    d.wait_state("MASTER", Duration::from_secs(3));
    c.start(&instance("web", 53, 150, VIP24, "    preempt: false\n"));
    c.wait_state("BACKUP", Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        c.state().as_deref(),
        Some("BACKUP"),
        "nopreempt: c must not take over"
    );
    assert_eq!(d.state().as_deref(), Some("MASTER"));
    assert!(d.has_addr(VIP) && !c.has_addr(VIP));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn crash_of_the_master_backup_takes_over_within_master_down_interval() {
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    let client = lan.host("client", "198.51.100.50/24");
    a.start(&instance("web", 54, 150, VIP24, ""));
    b.start(&instance("web", 54, 100, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    let neigh = || {
        client
            .ns
            .sh(&format!(
                "ping -c1 -W1 {VIP} >/dev/null 2>&1; ip neigh show {VIP}"
            ))
            .unwrap_or_default()
    };
    let a_mac = a.mac();
    wait_for(Duration::from_secs(2), "client talks to a", || {
        neigh().contains(&a_mac)
    });
    let t0 = Instant::now();
    a.crash();
    // A killed process leaves its VIP on a live host (nothing removes it by hand here).
    b.wait_state("MASTER", Duration::from_secs(3));
    let took = t0.elapsed();
    // b's own priority sets its Master_Down_Interval: 300 ms + 60 ms skew; margin for the
    // status polling (a process per poll) and a loaded host.
    let limit = Duration::from_millis(master_down_ms(100, 100) + 300);
    assert!(took <= limit, "failover took {took:?}, limit {limit:?}");
    assert!(
        took >= Duration::from_millis(200),
        "took {took:?}: faster than 2 adverts, b cannot have waited"
    );
    wait_for(Duration::from_millis(500), "VIP on b", || b.has_addr(VIP));
    // The gratuitous ARP moved the client's neighbour entry to b's MAC.
    let b_mac = b.mac();
    wait_for(
        Duration::from_secs(1),
        "client's neighbour entry moves to b",
        || {
            client
                .ns
                .sh(&format!("ip neigh show {VIP}"))
                .is_ok_and(|s| s.contains(&b_mac))
        },
    );
    wait_for(
        Duration::from_secs(1),
        "client reaches the VIP on b",
        || neigh().contains(&b_mac),
    );
}

/// Which of `hosts` carry the VIP now.
fn holders<'a>(hosts: &[&'a netns_common::Host]) -> Vec<&'a str> {
    hosts
        .iter()
        .filter(|h| h.has_addr(VIP))
        .map(|h| h.name.as_str())
        .collect()
}

/// a (150) is master, b (100) backup; a is killed (-9) and b takes over. The VIP is still on
/// a's interface (a killed process removes nothing).
fn crash_the_master(lan: &Lan, vrid: u8) -> (netns_common::Host, netns_common::Host) {
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    a.start(&instance("web", vrid, 150, VIP24, ""));
    b.start(&instance("web", vrid, 100, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    wait_for(Duration::from_secs(1), "VIP on a", || a.has_addr(VIP));
    a.crash();
    b.wait_state("MASTER", Duration::from_secs(3));
    wait_for(Duration::from_millis(500), "VIP on b", || b.has_addr(VIP));
    assert!(
        a.has_addr(VIP),
        "the killed master's VIP stays on its interface"
    );
    (a, b)
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn killed_master_restarted_as_backup_removes_its_leftover_vip() {
    // Issue 15 section 1: two nodes answering ARP for one address after a restart.
    let lan = Lan::new();
    let (mut a, b) = crash_the_master(&lan, 57);
    let t0 = Instant::now();
    a.start(&instance("web", 57, 150, VIP24, "    preempt: false\n"));
    wait_for(
        Duration::from_secs(1),
        "VIP on exactly one node (b)",
        || holders(&[&a, &b]) == ["b"],
    );
    let took = t0.elapsed();
    assert!(took <= Duration::from_secs(1), "{took:?}");
    a.wait_state("BACKUP", Duration::from_secs(1));
    // And it stays so: a is a BACKUP that does not preempt.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a.state().as_deref(), Some("BACKUP"));
    assert_eq!(b.state().as_deref(), Some("MASTER"));
    assert_eq!(holders(&[&a, &b]), ["b"]);
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn killed_master_restarted_preempts_and_the_vip_ends_on_it_alone() {
    let lan = Lan::new();
    let (mut a, b) = crash_the_master(&lan, 58);
    // preempt_delay keeps a BACKUP for a while after its start: long enough to see that it
    // does not hold the VIP beside b meanwhile.
    let t0 = Instant::now();
    a.start(&instance("web", 58, 150, VIP24, "    preempt_delay: 2s\n"));
    wait_for(
        Duration::from_secs(1),
        "VIP on exactly one node (b)",
        || holders(&[&a, &b]) == ["b"],
    );
    assert!(t0.elapsed() <= Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(a.state().as_deref(), Some("BACKUP"));
    // After the delay a preempts: the VIP ends on a alone.
    a.wait_state("MASTER", Duration::from_secs(4));
    b.wait_state("BACKUP", Duration::from_secs(1));
    wait_for(
        Duration::from_secs(1),
        "VIP on exactly one node (a)",
        || holders(&[&a, &b]) == ["a"],
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(holders(&[&a, &b]), ["a"]);
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn graceful_stop_hands_over_within_skew_time_and_removes_the_vip() {
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    a.start(&instance("web", 55, 150, VIP24, ""));
    b.start(&instance("web", 55, 100, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    wait_for(Duration::from_secs(1), "VIP on a", || a.has_addr(VIP));
    let t0 = Instant::now();
    a.signal("TERM");
    b.wait_state("MASTER", Duration::from_secs(2));
    let took = t0.elapsed();
    // RFC 9568 - Section 6.4.2: on a priority-0 advert the backup sets its Master_Down_Timer
    // to Skew_Time (60 ms at priority 100); margin for polling.
    assert!(
        took <= Duration::from_millis(60 + 250),
        "handover took {took:?}"
    );
    let status = a.wait_exit(Duration::from_secs(6));
    assert!(status.success(), "director exits 0 on SIGTERM: {status}");
    assert!(!a.has_addr(VIP), "the stopped node left its VIP behind");
    assert!(!a.socket().exists(), "the status socket file is removed");
    wait_for(Duration::from_millis(500), "VIP on b", || b.has_addr(VIP));
    let doc = b.status_json().expect("status");
    let reason = doc["instances"][0]["last_transition"]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!reason.is_empty(), "{doc}");
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn partition_and_heal_one_master_and_the_client_follows() {
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    let client = lan.host("client", "198.51.100.50/24");
    a.start(&instance("web", 56, 150, VIP24, ""));
    b.start(&instance("web", 56, 100, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));

    // Partition: the two directors' bridge ports are isolated from each other (links stay up;
    // the client's port is not isolated, so it still reaches both).
    isolate(&[&a.port, &b.port], true);
    b.wait_state("MASTER", Duration::from_secs(3));
    assert_eq!(
        a.state().as_deref(),
        Some("MASTER"),
        "split brain: both are master"
    );
    // The client talks to b during the split (b announced last).
    wait_for(
        Duration::from_secs(2),
        "client's neighbour entry points to b",
        || {
            client
                .ns
                .sh(&format!(
                    "ping -c1 -W1 {VIP} >/dev/null 2>&1; ip neigh show {VIP}"
                ))
                .map(|s| s.contains(&b.mac()))
                .unwrap_or(false)
        },
    );

    // Heal.
    isolate(&[&a.port, &b.port], false);
    let t0 = Instant::now();
    b.wait_state("BACKUP", Duration::from_secs(2));
    let one = t0.elapsed();
    assert!(
        one <= Duration::from_millis(100 + 200),
        "one master {one:?} after heal (advert interval 100 ms + polling margin)"
    );
    assert_eq!(a.state().as_deref(), Some("MASTER"));
    // The client reaches the VIP on the survivor within 1 s: its neighbour entry moves to a
    // (a re-announces when it hears the lower-priority master).
    let a_mac = a.mac();
    wait_for(
        Duration::from_secs(1),
        "client reaches the VIP on a",
        || {
            client
                .ns
                .sh(&format!(
                    "ping -c1 -W1 {VIP} >/dev/null 2>&1 && ip neigh show {VIP}"
                ))
                .map(|s| s.contains(&a_mac))
                .unwrap_or(false)
        },
    );
    assert!(
        t0.elapsed() <= Duration::from_millis(1300),
        "client followed after {:?}",
        t0.elapsed()
    );
    assert!(!b.has_addr(VIP), "b released the VIP");
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn sighup_updates_notify_in_place_and_restarts_on_an_identity_change() {
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    a.start(&instance("web", 59, 150, VIP24, ""));
    b.start(&instance("web", 59, 100, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    let since = |h: &netns_common::Host| {
        h.status_json().expect("status")["instances"][0]["last_transition"]["at_unix_ms"].clone()
    };
    let (a_since, b_since) = (since(&a), since(&b));
    let log = lan.dir.join("a.log");
    let logged = |what: &str| std::fs::read_to_string(&log).is_ok_and(|l| l.contains(what));

    // A notify command added: applied in place, the master keeps its VIP, no transition anywhere.
    let marker = lan.dir.join("notified");
    let notify = format!(
        "    notify:\n      backup: \"touch {}\"\n",
        marker.display()
    );
    a.write_config(&instance("web", 59, 150, VIP24, &notify));
    a.signal("HUP");
    wait_for(Duration::from_secs(2), "update logged", || {
        logged("reload: updated in place")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !logged("reload: restarting"),
        "a notify change restarted the instance"
    );
    assert_eq!(a.state().as_deref(), Some("MASTER"));
    assert_eq!(since(&a), a_since, "no transition on a");
    assert_eq!(since(&b), b_since, "b never took over");
    assert!(a.has_addr(VIP) && !b.has_addr(VIP));

    // The priority lowered in place below b's: a advertises it, b preempts, a becomes BACKUP
    // and runs the notify command it learnt in place. Still no restart.
    a.write_config(&instance("web", 59, 50, VIP24, &notify));
    a.signal("HUP");
    b.wait_state("MASTER", Duration::from_secs(2));
    a.wait_state("BACKUP", Duration::from_secs(1));
    wait_for(
        Duration::from_secs(2),
        "the notify given in place ran",
        || marker.exists(),
    );
    assert!(
        !logged("reload: restarting"),
        "a priority change restarted the instance"
    );
    let reason = b.status_json().expect("status")["instances"][0]["last_transition"]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(reason.contains("preempting"), "{reason}");
    wait_for(Duration::from_secs(1), "VIP on b only", || {
        holders(&[&a, &b]) == ["b"]
    });

    // An identity-side change (preempt off) restarts the instance (a BACKUP: nothing to hand
    // over); it comes back as BACKUP.
    a.write_config(&instance(
        "web",
        59,
        50,
        VIP24,
        &format!("{notify}    preempt: false\n"),
    ));
    a.signal("HUP");
    wait_for(Duration::from_secs(2), "restart logged", || {
        logged("reload: restarting with new settings")
    });
    a.wait_state("BACKUP", Duration::from_secs(2));
    assert_eq!(b.state().as_deref(), Some("MASTER"));
    assert_eq!(holders(&[&a, &b]), ["b"]);
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn cleanup_removes_a_killed_daemons_vip_but_never_a_running_ones() {
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    a.start(&instance("web", 60, 150, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    wait_for(Duration::from_secs(1), "VIP on a", || a.has_addr(VIP));
    let cleanup = |a: &netns_common::Host| {
        a.ns.command(BIN)
            .args(["cleanup", "-c"])
            .arg(a.config_path())
            .output()
            .expect("director cleanup")
    };
    // A daemon answers on the socket: it holds the VIP, the cleanup leaves it.
    let out = cleanup(&a);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing removed"),
        "{out:?}"
    );
    assert!(a.has_addr(VIP));
    // Killed (systemd's ExecStopPost runs after this): the leftover goes.
    a.crash();
    assert!(a.has_addr(VIP));
    let out = cleanup(&a);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("web: removed 198.51.100.100/24 from eth0"),
        "{out:?}"
    );
    assert!(!a.has_addr(VIP));
    // Nothing left: still success, nothing said.
    let out = cleanup(&a);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
}

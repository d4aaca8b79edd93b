//! Real-server health checks in `director run`, in namespaces on a bridge (no IPVS needed: the
//! host kernel has none, and a Master whose programming fails for want of IPVS still raises its
//! VIP). A real server's TCP listener lives in its own namespace and counts the connections it
//! accepts: the checks are shared (two services, one backend: one probe per interval per
//! director, counted at the server), `director status --json` shows each check's result, and a
//! director that loses its path to the pool loses its quorum and gives the VIP to its peer.

mod netns_common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netns_common::{instance, wait_for, Host, Lan};

const VIP: &str = "198.51.100.100";
const VIP24: &str = "198.51.100.100/24";
const RS: &str = "198.51.100.20";

/// Two NAT services on the VIP, both with real server RS:80 and the same tcp check (200 ms),
/// each with a quorum of 1 lowering the priority by 100.
fn services() -> String {
    let svc = |port: u16| {
        format!(
            "  - instance: web
    address: {VIP}
    port: {port}
    forwarding: nat
    checks: [{{kind: tcp, interval: 200ms, timeout: 100ms}}]
    quorum: 1
    quorum_down: {{priority_decrease: 100}}
    real_servers: [{{address: {RS}, port: 80}}]
"
        )
    };
    format!("virtual_servers:\n{}{}", svc(80), svc(8080))
}

/// Directors a (priority 150) and b (120) on `lan`, each running instance `web` with VRID
/// `vrid` and the virtual services `svc`: a Master, b Backup.
fn pair(lan: &Lan, vrid: u8, svc: &str) -> (Host, Host) {
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    a.start(&format!("{}{svc}", instance("web", vrid, 150, VIP24, "")));
    b.start(&format!("{}{svc}", instance("web", vrid, 120, VIP24, "")));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    (a, b)
}

/// Accepts and closes on RS:80 inside `ns`, counting connections, until `stop`.
fn acceptor(ns: &testns::Netns, stop: Arc<AtomicBool>) -> Arc<AtomicUsize> {
    let l = ns
        .run(|| TcpListener::bind((RS, 80)))
        .expect("enter the namespace")
        .expect("bind the real server");
    l.set_nonblocking(true).expect("nonblocking");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match l.accept() {
                Ok(_) => {
                    h.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    hits
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn shared_checks_status_and_quorum_failover() {
    let lan = Lan::new();
    let r = lan.host("r", &format!("{RS}/24"));
    let stop = Arc::new(AtomicBool::new(false));
    let hits = acceptor(&r.ns, Arc::clone(&stop));
    let (a, b) = pair(&lan, 51, &services());

    // Status: each (service, real server) with its check's last result.
    wait_for(
        Duration::from_secs(3),
        "b reports the real server up",
        || {
            b.status_json().is_some_and(|d| {
                let h = &d["health"];
                h.as_array().is_some_and(|l| l.len() == 2)
                    && h[0]["health"] == "up"
                    && h[1]["health"] == "up"
            })
        },
    );
    let doc = a.status_json().expect("status");
    let h = &doc["health"][0];
    assert_eq!(h["service"], format!("tcp:{VIP}:80"), "{doc}");
    assert_eq!(h["real_server"], format!("{RS}:80"));
    let c = &h["checks"][0];
    assert_eq!(c["kind"], "tcp");
    assert_eq!(c["connect"], format!("{RS}:80"));
    assert_eq!(c["state"], "up");
    assert_eq!(c["reason"], "connected");
    assert!(c["latency_us"].as_u64().is_some(), "{doc}");
    assert!(c["since_unix_ms"].as_u64().unwrap_or(0) > 1_600_000_000_000);
    let (ok, table) = a.cli(&["status"]);
    assert!(
        ok && table.contains("REAL SERVER") && table.contains("connected"),
        "{table}"
    );

    // Sharing: two services, one backend, one probe per 200 ms per director.
    let before = hits.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(2));
    let probes = hits.load(Ordering::SeqCst) - before;
    assert!(
        (16..=24).contains(&probes),
        "2 directors x 10 intervals = 20 connections, not 40: {probes}"
    );

    // a loses its path to the pool: its quorum is lost (150 - 100 = 50 < 120): b takes over.
    a.ns.sh(&format!("ip route add blackhole {RS}/32"))
        .expect("blackhole");
    b.wait_state("MASTER", Duration::from_secs(3));
    a.wait_state("BACKUP", Duration::from_secs(1));
    wait_for(Duration::from_secs(1), "VIP on b", || b.has_addr(VIP));
    let doc = a.status_json().expect("status");
    assert_eq!(doc["instances"][0]["effective_priority"], 50, "{doc}");
    assert_eq!(doc["health"][0]["health"], "down", "{doc}");
    assert_eq!(doc["health"][0]["checks"][0]["state"], "down");

    // The path is back: a's quorum holds again, it preempts.
    a.ns.sh(&format!("ip route del blackhole {RS}/32"))
        .expect("route del");
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    assert_eq!(a.instance_field("state").as_deref(), Some("MASTER"));
    stop.store(true, Ordering::SeqCst);
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn quorum_down_fault_is_a_vrrp_fault_until_the_quorum_holds_again() {
    let lan = Lan::new();
    let r = lan.host("r", &format!("{RS}/24"));
    let stop = Arc::new(AtomicBool::new(false));
    let _hits = acceptor(&r.ns, Arc::clone(&stop));
    let svc = services().replace(
        "quorum_down: {priority_decrease: 100}",
        "quorum_down: {fault: true}",
    );
    let (a, b) = pair(&lan, 52, &svc);
    wait_for(
        Duration::from_secs(3),
        "a reports the real server up",
        || {
            a.status_json().is_some_and(|d| {
                d["health"][0]["health"] == "up" && d["health"][1]["health"] == "up"
            })
        },
    );

    // a loses its path to the pool: a true FAULT (not priority 1), with the quorum as reason.
    a.ns.sh(&format!("ip route add blackhole {RS}/32"))
        .expect("blackhole");
    a.wait_state("FAULT", Duration::from_secs(3));
    b.wait_state("MASTER", Duration::from_secs(3));
    wait_for(Duration::from_secs(1), "VIP on b only", || {
        b.has_addr(VIP) && !a.has_addr(VIP)
    });
    let why = a.instance_field("fault_reason").unwrap_or_default();
    assert!(why.contains("quorum lost"), "{why}");
    let doc = a.status_json().expect("status");
    assert_eq!(doc["instances"][0]["effective_priority"], 150, "{doc}");

    // The path is back: the fault clears and a (150) preempts b (120).
    a.ns.sh(&format!("ip route del blackhole {RS}/32"))
        .expect("route del");
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    assert_eq!(a.instance_field("fault_reason"), None);
    stop.store(true, Ordering::SeqCst);
}

//! Tracking and role-driven mode with the `director` binary in namespaces: link down -> FAULT,
//! a dead or hung proxy (tcp / http check) releases the VIP, a failing fence keeps it off.

mod netns_common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use netns_common::{instance, wait_for, Host, Lan, BIN};

const VIP: &str = "198.51.100.100";
const VIP24: &str = "198.51.100.100/24";

/// A master `a` (150) and a backup `b` (100) on one LAN; `a_extra` is added to a's instance.
fn pair(lan: &Lan, vrid: u8, a_extra: &str) -> (Host, Host) {
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    a.start(&instance("web", vrid, 150, VIP24, a_extra));
    b.start(&instance("web", vrid, 100, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    wait_for(Duration::from_secs(1), "VIP on a", || a.has_addr(VIP));
    (a, b)
}

/// A tiny HTTP server on 127.0.0.1:8080 inside `host`'s namespace (a stand-in reverse proxy).
struct Proxy(Child);

impl Proxy {
    fn start(host: &Host) -> Proxy {
        let child = host
            .ns
            .command("python3")
            .args(["-m", "http.server", "8080", "--bind", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 http.server");
        // Owned before waiting, so a timeout (a panic) still kills it.
        let proxy = Proxy(child);
        wait_for(Duration::from_secs(5), "proxy listens", || {
            host.ns
                .sh("ss -Hltn 'sport = :8080'")
                .is_ok_and(|s| s.contains("127.0.0.1:8080"))
        });
        proxy
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.0.id().to_string()])
            .status();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn link_down_faults_the_master_and_link_up_recovers() {
    let lan = Lan::new();
    let (a, b) = pair(&lan, 61, "");
    // Carrier lost on a's eth0: the bridge side of its veth goes down.
    testns::run(&["ip", "link", "set", &a.port, "down"]).expect("port down");
    a.wait_state("FAULT", Duration::from_secs(2));
    assert!(!a.has_addr(VIP), "FAULT holds no VIP");
    b.wait_state("MASTER", Duration::from_secs(2));
    testns::run(&["ip", "link", "set", &a.port, "up"]).expect("port up");
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn dead_proxy_port_tcp_check_releases_the_vip() {
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    let proxy = Proxy::start(&a);
    let mut b = lan.host("b", "198.51.100.2/24");
    let check = "    track_check:\n      - name: proxy\n        tcp: 127.0.0.1:8080\n        interval: 100ms\n        timeout: 100ms\n        fall: 2\n";
    a.start(&instance("web", 62, 150, VIP24, check));
    b.start(&instance("web", 62, 100, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    drop(proxy);
    a.wait_state("FAULT", Duration::from_secs(2));
    let why = a.instance_field("fault_reason").unwrap_or_default();
    assert!(why.contains("proxy"), "the fault names the check: {why}");
    b.wait_state("MASTER", Duration::from_secs(2));
    wait_for(Duration::from_secs(1), "VIP moved to b", || {
        b.has_addr(VIP) && !a.has_addr(VIP)
    });
    // The proxy comes back: a recovers and (preempt) takes the VIP back.
    let _proxy = Proxy::start(&a);
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn hung_proxy_http_check_releases_the_vip() {
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    let proxy = Proxy::start(&a);
    let mut b = lan.host("b", "198.51.100.2/24");
    let check = "    track_check:\n      - name: proxy-http\n        http: {url: \"http://127.0.0.1:8080/\", status: 200}\n        interval: 100ms\n        timeout: 200ms\n        fall: 2\n";
    a.start(&instance("web", 63, 150, VIP24, check));
    b.start(&instance("web", 63, 100, VIP24, ""));
    a.wait_state("MASTER", Duration::from_secs(3));
    b.wait_state("BACKUP", Duration::from_secs(1));
    // Hung, not dead: the kernel still accepts connections, nothing answers.
    proxy.signal("STOP");
    a.wait_state("FAULT", Duration::from_secs(3));
    b.wait_state("MASTER", Duration::from_secs(2));
    wait_for(Duration::from_secs(1), "VIP moved to b", || {
        b.has_addr(VIP) && !a.has_addr(VIP)
    });
    proxy.signal("CONT");
    a.wait_state("MASTER", Duration::from_secs(5));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn role_external_failing_fence_keeps_the_vip_off() {
    let lan = Lan::new();
    let mut a = lan.host("a", "198.51.100.1/24");
    let mut b = lan.host("b", "198.51.100.2/24");
    a.start(&instance(
        "db",
        64,
        100,
        VIP24,
        "    role: external\n    fence: \"exit 3\"\n",
    ));
    b.start(&instance(
        "db",
        64,
        100,
        VIP24,
        "    role: external\n    fence: \"true\"\n",
    ));
    std::thread::sleep(Duration::from_millis(600));
    assert!(!a.has_addr(VIP) && !b.has_addr(VIP), "nobody claimed yet");

    let claim = |h: &Host| {
        Command::new(BIN)
            .args(["claim", "db", "--socket"])
            .arg(h.socket())
            .output()
            .expect("director claim")
    };
    let out = claim(&a);
    assert!(
        !out.status.success(),
        "claim with a failing fence must fail"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fence"), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!a.has_addr(VIP), "a failing fence keeps the VIP off");
    assert_ne!(a.state().as_deref(), Some("MASTER"));

    let out = claim(&b);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.wait_state("MASTER", Duration::from_secs(1));
    wait_for(Duration::from_secs(1), "VIP on b", || b.has_addr(VIP));

    let out = Command::new(BIN)
        .args(["release", "db", "--socket"])
        .arg(b.socket())
        .output()
        .expect("director release");
    assert!(out.status.success());
    wait_for(Duration::from_secs(1), "VIP released", || !b.has_addr(VIP));

    // claim on an instance name that does not exist: an error, not a crash.
    let out = Command::new(BIN)
        .args(["claim", "nope", "--socket"])
        .arg(b.socket())
        .output()
        .expect("director claim");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no instance named `nope`"));
}

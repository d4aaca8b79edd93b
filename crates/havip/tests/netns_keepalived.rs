//! Interop with keepalived 2.2.7 on the same bridge, VRRPv3 (100 ms adverts) and VRRPv2 (1 s):
//! keepalived master with us as backup, us master with keepalived backup, graceful failover in
//! both directions (keepalived's SIGTERM and our shutdown both send a priority-0 advert).

mod runner_common;

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use havip::fsm::State;
use havip::packet::Version;
use havip::time::Centisecs;
use runner_common::{cfg, has_addr, Lan, Node};
use testns::Netns;

const VIP: &str = "192.0.2.100";

/// keepalived running (not forked) in a namespace; SIGTERM and reaped on drop.
struct Keepalived {
    child: Child,
    dir: PathBuf,
}

impl Keepalived {
    fn start(ns: &Netns, version: u8, vrid: u8, priority: u8, advert: &str) -> Keepalived {
        let dir = std::env::temp_dir().join(testns::unique_name("havipka"));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let conf = dir.join("keepalived.conf");
        std::fs::write(
            &conf,
            format!(
                "global_defs {{\n  vrrp_version {version}\n}}\nvrrp_instance V {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority {priority}\n  advert_int {advert}\n  virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n"
            ),
        )
        .expect("conf");
        let log = std::fs::File::create(dir.join("log")).expect("log");
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let child = ns
            .command("keepalived")
            .args([
                "-n",
                "-l",
                "-D",
                "-f",
                &p("keepalived.conf"),
                "-p",
                &p("ka.pid"),
            ])
            .args(["-r", &p("vrrp.pid"), "-c", &p("chk.pid")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("keepalived runs");
        Keepalived { child, dir }
    }

    /// The parent keepalived process's pid (from its pid file, not `ip netns exec`'s).
    fn pid(&self) -> String {
        let t0 = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(self.dir.join("ka.pid")) {
                if !s.trim().is_empty() {
                    return s.trim().to_string();
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "keepalived wrote no pid file"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Graceful stop (keepalived resigns with priority 0 and removes its VIP).
    fn stop(&mut self) {
        let _ = testns::run(&["kill", "-TERM", &self.pid()]);
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for(limit: Duration, what: &str, f: impl Fn() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    t0.elapsed()
}

fn ours(version: Version, vrid: u8, priority: u8) -> havip::config::InstanceConfig {
    let mut c = cfg("vi", vrid, priority, "192.0.2.100/24");
    c.version = version;
    if version == Version::V2 {
        c.advert_interval = Centisecs(100);
    }
    c
}

fn keepalived_master_ours_backup(version: Version, vrid: u8, advert: &str, limit: Duration) {
    let lan = Lan::new();
    let k: Arc<Netns> = lan.host("192.0.2.1/24");
    let o = lan.host("192.0.2.2/24");
    let mut ka = Keepalived::start(&k, version.number(), vrid, 200, advert);
    wait_for(limit * 2, "keepalived takes the VIP", || has_addr(&k, VIP));
    let node = Node::start(o.clone(), ours(version, vrid, 100));
    node.wait(limit, "ours backup of keepalived", |s| {
        s.state == State::Backup
            && s.master == Some("192.0.2.1".parse().expect("addr"))
            && s.counters.adverts_rx > 2
    });
    std::thread::sleep(limit / 2);
    assert_eq!(node.state(), State::Backup, "{}", ka.log());
    assert!(!has_addr(&o, VIP) && has_addr(&k, VIP));
    ka.stop();
    let took = node.wait_state(State::Master, limit);
    assert!(has_addr(&o, VIP) && !has_addr(&k, VIP));
    let last = node
        .status
        .borrow()
        .last_transition
        .clone()
        .expect("a transition");
    assert!(
        last.reason.contains("resigned"),
        "{} after {took:?}",
        last.reason
    );
}

fn ours_master_keepalived_backup(version: Version, vrid: u8, advert: &str, limit: Duration) {
    let lan = Lan::new();
    let k = lan.host("192.0.2.1/24");
    let o = lan.host("192.0.2.2/24");
    let node = Node::start(o.clone(), ours(version, vrid, 200));
    let ka = Keepalived::start(&k, version.number(), vrid, 100, advert);
    node.wait_state(State::Master, limit * 2);
    // keepalived stays backup: it never takes the VIP while we advertise.
    std::thread::sleep(limit);
    assert!(!has_addr(&k, VIP), "keepalived took the VIP: {}", ka.log());
    assert!(has_addr(&o, VIP));
    assert_eq!(node.state(), State::Master);
    node.shutdown();
    assert!(!has_addr(&o, VIP), "our shutdown removed the VIP");
    wait_for(limit, "keepalived takes over", || has_addr(&k, VIP));
    drop(ka);
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v3_keepalived_master_ours_backup_then_keepalived_stops() {
    keepalived_master_ours_backup(Version::V3, 61, "0.1", Duration::from_secs(2));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v3_ours_master_keepalived_backup_then_ours_stops() {
    ours_master_keepalived_backup(Version::V3, 62, "0.1", Duration::from_secs(2));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v2_keepalived_master_ours_backup_then_keepalived_stops() {
    keepalived_master_ours_backup(Version::V2, 63, "1", Duration::from_secs(6));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v2_ours_master_keepalived_backup_then_ours_stops() {
    ours_master_keepalived_backup(Version::V2, 64, "1", Duration::from_secs(6));
}

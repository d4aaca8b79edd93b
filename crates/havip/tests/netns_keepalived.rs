//! Interop with keepalived 2.2.7 on the same bridge, VRRPv3 (100 ms adverts) and VRRPv2 (1 s):
//! IPv4 and IPv6 (v3): keepalived master with us as backup, us master with keepalived backup, graceful failover in
//! both directions (keepalived's SIGTERM and our shutdown both send a priority-0 advert).

mod runner_common;

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use havip::fsm::State;
use havip::packet::Version;
use havip::time::Centisecs;
use runner_common::{cfg, has_addr, pair, Lan, Node};
use testns::Netns;

/// keepalived running (not forked) in a namespace; SIGTERM and reaped on drop.
struct Keepalived {
    child: Child,
    dir: PathBuf,
}

impl Keepalived {
    fn start(
        ns: &Netns,
        version: u8,
        vrid: u8,
        priority: u8,
        advert: &str,
        vip: &str,
    ) -> Keepalived {
        Keepalived::start_with(ns, version, vrid, priority, advert, vip, "")
    }

    /// Same, with `extra` lines added to the `vrrp_instance` block (e.g. unicast peers).
    fn start_with(
        ns: &Netns,
        version: u8,
        vrid: u8,
        priority: u8,
        advert: &str,
        vip: &str,
        extra: &str,
    ) -> Keepalived {
        let dir = std::env::temp_dir().join(testns::unique_name("havipka"));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let conf = dir.join("keepalived.conf");
        std::fs::write(
            &conf,
            format!(
                "global_defs {{\n  vrrp_version {version}\n}}\nvrrp_instance V {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority {priority}\n  advert_int {advert}\n{extra}  virtual_ipaddress {{\n    {vip} dev eth0\n  }}\n}}\n"
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

/// One address family's addresses for a test.
struct Fam {
    /// The VIP with its prefix, as both configs write it.
    vip_cidr: &'static str,
    /// keepalived's and our interface address.
    ka_cidr: &'static str,
    ours_cidr: &'static str,
}

const V4: Fam = Fam {
    vip_cidr: "192.0.2.100/24",
    ka_cidr: "192.0.2.1/24",
    ours_cidr: "192.0.2.2/24",
};

const V6: Fam = Fam {
    vip_cidr: "2001:db8::100/64",
    ka_cidr: "2001:db8::1/64",
    ours_cidr: "2001:db8::2/64",
};

impl Fam {
    fn vip(&self) -> &'static str {
        self.vip_cidr.split('/').next().unwrap_or_default()
    }
}

/// The address keepalived sends its adverts from: its primary IPv4 address or its link-local.
fn advert_source(ns: &Netns, fam: &Fam) -> std::net::IpAddr {
    if fam.vip().contains(':') {
        let out = ns
            .sh("ip -6 -o addr show dev eth0 scope link | awk '{print $4}' | cut -d/ -f1")
            .expect("link-local");
        out.trim().parse().expect("a link-local address")
    } else {
        fam.ka_cidr
            .split('/')
            .next()
            .unwrap_or_default()
            .parse()
            .expect("addr")
    }
}

fn ours(fam: &Fam, version: Version, vrid: u8, priority: u8) -> havip::config::InstanceConfig {
    let mut c = cfg("vi", vrid, priority, fam.vip_cidr);
    c.version = version;
    if version == Version::V2 {
        c.advert_interval = Centisecs(100);
    }
    c
}

fn keepalived_master_ours_backup(
    fam: &Fam,
    version: Version,
    vrid: u8,
    advert: &str,
    limit: Duration,
) {
    let vip = fam.vip();
    let lan = Lan::new();
    let k: Arc<Netns> = lan.host(fam.ka_cidr);
    let o = lan.host(fam.ours_cidr);
    let mut ka = Keepalived::start(&k, version.number(), vrid, 200, advert, fam.vip_cidr);
    wait_for(limit * 2, "keepalived takes the VIP", || has_addr(&k, vip));
    let ka_src = advert_source(&k, fam);
    let node = Node::start(o.clone(), ours(fam, version, vrid, 100));
    node.wait(limit, "ours backup of keepalived", |s| {
        s.state == State::Backup && s.master == Some(ka_src) && s.counters.adverts_rx > 2
    });
    std::thread::sleep(limit / 2);
    assert_eq!(node.state(), State::Backup, "{}", ka.log());
    assert!(!has_addr(&o, vip) && has_addr(&k, vip));
    ka.stop();
    let took = node.wait_state(State::Master, limit);
    assert!(has_addr(&o, vip) && !has_addr(&k, vip));
    let last = node
        .status
        .borrow()
        .last_transition
        .clone()
        .expect("a transition");
    assert!(
        last.reason.to_string().contains("resigned"),
        "{} after {took:?}",
        last.reason
    );
}

fn ours_master_keepalived_backup(
    fam: &Fam,
    version: Version,
    vrid: u8,
    advert: &str,
    limit: Duration,
) {
    let vip = fam.vip();
    let lan = Lan::new();
    let k = lan.host(fam.ka_cidr);
    let o = lan.host(fam.ours_cidr);
    let node = Node::start(o.clone(), ours(fam, version, vrid, 200));
    let ka = Keepalived::start(&k, version.number(), vrid, 100, advert, fam.vip_cidr);
    node.wait_state(State::Master, limit * 2);
    // keepalived stays backup: it never takes the VIP while we advertise.
    std::thread::sleep(limit);
    assert!(!has_addr(&k, vip), "keepalived took the VIP: {}", ka.log());
    assert!(has_addr(&o, vip));
    assert_eq!(node.state(), State::Master);
    node.shutdown();
    assert!(!has_addr(&o, vip), "our shutdown removed the VIP");
    wait_for(limit, "keepalived takes over", || has_addr(&k, vip));
    drop(ka);
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v3_keepalived_master_ours_backup_then_keepalived_stops() {
    keepalived_master_ours_backup(&V4, Version::V3, 61, "0.1", Duration::from_secs(2));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v3_ours_master_keepalived_backup_then_ours_stops() {
    ours_master_keepalived_backup(&V4, Version::V3, 62, "0.1", Duration::from_secs(2));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v2_keepalived_master_ours_backup_then_keepalived_stops() {
    keepalived_master_ours_backup(&V4, Version::V2, 63, "1", Duration::from_secs(6));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v2_ours_master_keepalived_backup_then_ours_stops() {
    ours_master_keepalived_backup(&V4, Version::V2, 64, "1", Duration::from_secs(6));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v3_ipv6_keepalived_master_ours_backup_then_keepalived_stops() {
    keepalived_master_ours_backup(&V6, Version::V3, 65, "0.1", Duration::from_secs(2));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v3_ipv6_ours_master_keepalived_backup_then_ours_stops() {
    ours_master_keepalived_backup(&V6, Version::V3, 66, "0.1", Duration::from_secs(2));
}

/// keepalived's unicast lines for a peer at `peer` from `src`.
fn ka_unicast(src: &str, peer: &str) -> String {
    format!("  unicast_src_ip {src}\n  unicast_peer {{\n    {peer}\n  }}\n")
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v3_unicast_keepalived_master_ours_backup_then_keepalived_stops() {
    // A veth pair: bridged unicast protocol 112 is dropped by this host's netfilter.
    let (k, o) = pair("192.0.2.1/24", "192.0.2.2/24");
    let extra = ka_unicast("192.0.2.1", "192.0.2.2");
    let mut ka = Keepalived::start_with(&k, 3, 67, 200, "0.1", V4.vip_cidr, &extra);
    wait_for(Duration::from_secs(4), "keepalived takes the VIP", || {
        has_addr(&k, V4.vip())
    });
    let mut c = ours(&V4, Version::V3, 67, 100);
    c.unicast_peers = vec!["192.0.2.1".parse().expect("peer")];
    let node = Node::start(o.clone(), c);
    node.wait(Duration::from_secs(2), "ours backup of keepalived", |s| {
        s.state == State::Backup && s.counters.adverts_rx > 2
    });
    assert!(!has_addr(&o, V4.vip()), "{}", ka.log());
    ka.stop();
    node.wait_state(State::Master, Duration::from_secs(2));
    assert!(has_addr(&o, V4.vip()) && !has_addr(&k, V4.vip()));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v3_unicast_ours_master_keepalived_backup_then_ours_stops() {
    let (k, o) = pair("192.0.2.1/24", "192.0.2.2/24");
    let mut c = ours(&V4, Version::V3, 68, 200);
    c.unicast_peers = vec!["192.0.2.1".parse().expect("peer")];
    let node = Node::start(o.clone(), c);
    let extra = ka_unicast("192.0.2.1", "192.0.2.2");
    let ka = Keepalived::start_with(&k, 3, 68, 100, "0.1", V4.vip_cidr, &extra);
    node.wait_state(State::Master, Duration::from_secs(4));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !has_addr(&k, V4.vip()),
        "keepalived took the VIP: {}",
        ka.log()
    );
    node.shutdown();
    wait_for(Duration::from_secs(2), "keepalived takes over", || {
        has_addr(&k, V4.vip())
    });
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn v2_simple_password_matches_keepalived_and_a_wrong_one_is_dropped() {
    let lan = Lan::new();
    let k = lan.host("192.0.2.1/24");
    let o = lan.host("192.0.2.2/24");
    let w = lan.host("192.0.2.3/24");
    let extra = "  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n";
    let _ka = Keepalived::start_with(&k, 2, 69, 200, "1", V4.vip_cidr, extra);
    wait_for(Duration::from_secs(8), "keepalived takes the VIP", || {
        has_addr(&k, V4.vip())
    });
    let mut good = ours(&V4, Version::V2, 69, 100);
    good.auth_pass = Some(havip::config::Masked("s3cret".into()));
    let mut wrong = ours(&V4, Version::V2, 69, 50);
    wrong.auth_pass = Some(havip::config::Masked("guess".into()));
    let ng = Node::start(o.clone(), good);
    let nw = Node::start(w.clone(), wrong);
    ng.wait(Duration::from_secs(3), "same password: backup", |s| {
        s.state == State::Backup && s.counters.adverts_rx >= 2
    });
    nw.wait(Duration::from_secs(3), "wrong password: dropped", |s| {
        s.counters.drops.get("auth_mismatch").copied().unwrap_or(0) >= 2
            && s.counters.adverts_rx == 0
    });
}

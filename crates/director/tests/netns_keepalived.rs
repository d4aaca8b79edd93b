//! `director run` next to keepalived 2.2.7 on one bridge, configured as in
//! `deploy/examples/keepalived-v2-pair.yaml`: VRRPv2 with `auth_type PASS`, keepalived master,
//! the director backup, then keepalived stops and the director takes the VIP.

mod netns_common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use netns_common::{instance, wait_for, Host, Lan};

/// keepalived in the foreground inside a namespace; SIGTERM on drop.
struct Keepalived {
    child: Child,
    pidfile: std::path::PathBuf,
}

impl Keepalived {
    fn start(lan: &Lan, host: &Host, conf: &str) -> Keepalived {
        let p = |f: &str| lan.dir.join(f);
        std::fs::write(p("keepalived.conf"), conf).expect("conf");
        let log = std::fs::File::create(p("keepalived.log")).expect("log");
        let child = host
            .ns
            .command("keepalived")
            .args(["-n", "-l", "-D", "-f"])
            .arg(p("keepalived.conf"))
            .arg("-p")
            .arg(p("ka.pid"))
            .arg("-r")
            .arg(p("ka-vrrp.pid"))
            .arg("-c")
            .arg(p("ka-chk.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("keepalived");
        Keepalived {
            child,
            pidfile: p("ka.pid"),
        }
    }

    fn stop(&mut self) {
        let pid = std::fs::read_to_string(&self.pidfile)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| self.child.id().to_string());
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn keepalived_v2_pass_master_director_backup_then_takes_over() {
    let lan = Lan::new();
    let k = lan.host("k", "198.51.100.1/24");
    let mut d = lan.host("d", "198.51.100.2/24");
    let mut ka = Keepalived::start(
        &lan,
        &k,
        "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 200\n  advert_int 1\n  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n  virtual_ipaddress {\n    198.51.100.10/24 dev eth0\n  }\n}\n",
    );
    // keepalived v2: Master_Down_Interval 3 s + skew before it claims.
    wait_for(Duration::from_secs(8), "keepalived takes the VIP", || {
        k.has_addr("198.51.100.10")
    });
    let extra = "    version: 2\n    auth_pass: s3cret\n";
    d.start(&instance("VI_1", 51, 100, "198.51.100.10/24", extra).replace("100ms", "1s"));
    wait_for(
        Duration::from_secs(4),
        "director sees keepalived as master",
        || {
            d.status_json().is_some_and(|s| {
                s["instances"][0]["state"] == "BACKUP"
                    && s["instances"][0]["master"] == "198.51.100.1"
            })
        },
    );
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        d.state().as_deref(),
        Some("BACKUP"),
        "stays backup past Master_Down_Interval"
    );
    assert!(!d.has_addr("198.51.100.10"));
    // keepalived stops gracefully (priority 0): the director takes over after Skew_Time.
    ka.stop();
    d.wait_state("MASTER", Duration::from_secs(2));
    wait_for(Duration::from_secs(1), "VIP on the director", || {
        d.has_addr("198.51.100.10")
    });
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn director_v2_master_wrong_password_is_not_heard() {
    // A password mismatch is a dropped advert (RFC 3768 - Section 7.1), so keepalived with a
    // different password does not see the director as master and claims the VIP as well.
    let lan = Lan::new();
    let k = lan.host("k", "198.51.100.1/24");
    let mut d = lan.host("d", "198.51.100.2/24");
    let extra = "    version: 2\n    auth_pass: s3cret\n";
    d.start(&instance("VI_1", 52, 200, "198.51.100.10/24", extra).replace("100ms", "1s"));
    d.wait_state("MASTER", Duration::from_secs(5));
    let _ka = Keepalived::start(
        &lan,
        &k,
        "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n  priority 100\n  advert_int 1\n  authentication {\n    auth_type PASS\n    auth_pass other\n  }\n  virtual_ipaddress {\n    198.51.100.10/24 dev eth0\n  }\n}\n",
    );
    wait_for(Duration::from_secs(8), "keepalived claims too", || {
        k.has_addr("198.51.100.10")
    });
    assert_eq!(d.state().as_deref(), Some("MASTER"));
}

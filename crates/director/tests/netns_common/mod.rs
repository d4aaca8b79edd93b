//! Shared helpers of the `netns_*` tests: a bridge, nodes in namespaces, and the `director`
//! binary run in them the way an operator runs it (`ip netns exec NS director run -c FILE`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use testns::{Bridge, Netns};

/// The director binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_director");

/// A test LAN: one bridge, and a temp dir for configs, sockets and logs.
pub struct Lan {
    pub bridge: Bridge,
    pub dir: PathBuf,
}

impl Lan {
    pub fn new() -> Lan {
        let bridge = Bridge::new("dbr").expect("bridge");
        let dir = std::env::temp_dir().join(format!("director-netns-{}", bridge.name()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Lan { bridge, dir }
    }

    /// A namespace plugged into the bridge as `eth0` with `cidr` (IPv6 DAD off so addresses are
    /// usable at once). Returns the host with the name of its bridge-side port.
    pub fn host(&self, name: &str, cidr: &str) -> Host {
        let ns = Netns::new("dns").expect("netns");
        ns.sh("sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0")
            .expect("sysctl");
        let port = ns.plug(&self.bridge, "eth0", cidr).expect("plug");
        Host {
            name: name.to_string(),
            ns,
            port,
            dir: self.dir.clone(),
            child: None,
        }
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Keep the logs of a failed test on stderr.
            if let Ok(rd) = std::fs::read_dir(&self.dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "log") {
                        let text = std::fs::read_to_string(&p).unwrap_or_default();
                        eprintln!("==== {} ====\n{text}", p.display());
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A namespace on the LAN, optionally running `director run`.
pub struct Host {
    pub name: String,
    pub ns: Netns,
    /// The bridge-side veth.
    pub port: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl Host {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(format!("{}.yaml", self.name))
    }

    /// This host's `--state-dir` (its operator drains), inside the test's temp dir.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(format!("{}-state", self.name))
    }

    /// `director ARGS... --socket S` from the host; (success, stdout + stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(BIN)
            .args(args)
            .arg("--socket")
            .arg(self.socket())
            .output()
            .expect("run director");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join(format!("{}.sock", self.name))
    }

    /// Writes `global:` (this host's socket) plus `instances_yaml` as the config file.
    pub fn write_config(&self, instances_yaml: &str) {
        let text = format!(
            "global:\n  status_socket: {}\n  log_level: debug\ninstances:\n{instances_yaml}",
            self.socket().display()
        );
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// Starts `director run -c FILE` inside the namespace, stderr to `NAME.log`.
    pub fn start(&mut self, instances_yaml: &str) {
        // 20 s, not less: a debug build started inside the emulated lab VM while other tests
        // run beside it took more than 5 s to answer (kernel_health failed so, 2 of 8 runs).
        self.start_waiting(instances_yaml, Duration::from_secs(20));
    }

    /// [`Host::start`], waiting up to `limit` for the status socket (a large file).
    pub fn start_waiting(&mut self, instances_yaml: &str, limit: Duration) {
        self.write_config(instances_yaml);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", self.name)))
            .expect("log file");
        let child = self
            .ns
            .command(BIN)
            .args(["run", "-c"])
            .arg(self.config_path())
            .arg("--state-dir")
            .arg(self.state_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn director");
        self.child = Some(child);
        wait_for(limit, "status socket answers", || {
            self.status_json().is_some()
        });
    }

    /// `director status --json --socket S` (run from the host: the socket is a file).
    pub fn status_json(&self) -> Option<serde_json::Value> {
        let out = Command::new(BIN)
            .args(["status", "--json", "--socket"])
            .arg(self.socket())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The state of the first instance (`MASTER`, `BACKUP`, `FAULT`, `INIT`).
    pub fn state(&self) -> Option<String> {
        self.instance_field("state")
    }

    /// A string field of the first instance in the status document.
    pub fn instance_field(&self, key: &str) -> Option<String> {
        let v = self.status_json()?;
        v.get("instances")?
            .get(0)?
            .get(key)?
            .as_str()
            .map(str::to_string)
    }

    /// Whether `addr` is on this host's eth0.
    pub fn has_addr(&self, addr: &str) -> bool {
        self.ns
            .sh("ip -o addr show dev eth0")
            .map(|s| s.contains(&format!(" {addr}/")))
            .unwrap_or(false)
    }

    pub fn mac(&self) -> String {
        self.ns
            .sh("cat /sys/class/net/eth0/address")
            .expect("mac")
            .trim()
            .to_string()
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([&format!("-{sig}"), &c.id().to_string()])
                .status();
        }
    }

    /// Waits for the daemon to exit (at most `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return st;
            }
            assert!(
                start.elapsed() < limit,
                "{} did not exit within {limit:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, as a crash: the process is gone, its VIP stays where it was.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn wait_state(&self, want: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        wait_for(limit, &format!("{} becomes {want}", self.name), || {
            self.state().as_deref() == Some(want)
        });
        start.elapsed()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 10 ms until it holds; panics with `what` after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if f() {
            return;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One instance in YAML (list item), 100 ms adverts; `extra` lines are indented by the caller.
pub fn instance(name: &str, vrid: u8, priority: u8, vip: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    interface: eth0\n    virtual_router_id: {vrid}\n    priority: {priority}\n    advert_interval: 100ms\n    virtual_ipaddress: [\"{vip}\"]\n{extra}"
    )
}

/// `ipvsadm -Sn` in a host's namespace (kernel tests, inside the lab VM).
pub fn ipvs_table(h: &Host) -> String {
    h.ns.sh("ipvsadm -Sn").expect("ipvsadm -Sn")
}

/// Total connections the kernel counted for the TCP service `vip_port` (`ipvsadm -Ln --stats`;
/// the kernel folds its per-CPU counters into these totals every 2 s).
pub fn service_conns(h: &Host, vip_port: &str) -> u64 {
    h.ns.sh(&format!("ipvsadm -Ln --stats -t {vip_port} --exact"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("TCP"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|w| w.parse().ok())
        .unwrap_or(0)
}

/// A DR real server on `lan`: `vip` on `lo` (no ARP for it), an HTTP server on port 80
/// answering its name, and `extra` (more shell, run last; empty for none).
pub fn dr_real_server(lan: &Lan, name: &str, ip: &str, vip: &str, extra: &str) -> Host {
    let h = lan.host(name, &format!("{ip}/24"));
    h.ns.sh(&format!(
        "ip addr add {vip}/32 dev lo && \
         sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                    net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 && \
         mkdir -p /tmp/{name}-www && echo {name} > /tmp/{name}-www/index.html && \
         (cd /tmp/{name}-www && setsid python3 -m http.server 80 --bind 0.0.0.0 \
            >/dev/null 2>&1 < /dev/null &) {extra}"
    ))
    .expect("real server");
    h
}

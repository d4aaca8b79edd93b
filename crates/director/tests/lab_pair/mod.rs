//! The LVS director pair inside the IPVS lab VM (`tests/lab/run`): client(s), dir1, dir2 and
//! real servers r1..rN in network namespaces, for `kernel_*` tests (`mod lab_pair;`). The shell
//! twin is `tests/lab/pair/topo.sh` (same addresses).
//!
//! ```text
//!  front bridge 10.77.0.0/24   clients .21.. | dir1 .2 | dir2 .3 | VIP .100 | reals .11.. (DR, tunnels)
//!  inside bridge 10.77.1.0/24  dir1 .2 | dir2 .3 | gateway VIP .1 | reals .11.. (NAT)
//! ```
//!
//! Real servers answer HTTP on every `http_ports` port with their name (`busybox httpd`: it
//! starts in ~10 ms under emulation where `python3 -m http.server` takes ~1.2 s) and, on
//! `echo_port`, say their name and then echo (`busybox nc -ll -e`). The directors run one
//! [`Implementation`] with configs from one [`PairSpec`] that differ only in priority.
//!
//! A test's usual shape:
//! ```ignore
//! let mut lab = Lab::up(PairSpec::new(Forwarding::Dr, 3))?;
//! lab.start_pair(&Implementation::Keepalived)?;          // dir1 Master, both programmed
//! let names = lab.spread(30);                           // requests through the VIP
//! let f = lab.failover(Load::for_time(secs(4)), secs(1), Crash::Node)?;
//! ```
#![allow(dead_code, unused_imports)]

pub mod checks;
mod config;
mod load;
pub mod scenarios;

pub use config::{director_yaml, keepalived_conf, Forwarding, Implementation, PairSpec};
pub use load::{get, spread, Failover, Load, Sample};

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use testns::{Bridge, Netns};

/// The `#[ignore]` reason of these tests.
pub const IGNORE: &str = "needs the IPVS lab kernel (tests/lab/run)";

/// How the Master goes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// SIGSTOP then SIGKILL every process of the node (no goodbye advert). Its VIP and IPVS
    /// table stay in the kernel, so the old node keeps forwarding what still reaches it.
    Process,
    /// `Process`, then its links go down: the machine is gone.
    Node,
    /// SIGTERM to the daemon, and wait until every process of the node has exited (keepalived
    /// then sends a priority-0 advert, removes its VIPs and its virtual services).
    Graceful,
}

/// The whole topology; everything is killed and deleted on drop.
pub struct Lab {
    pub spec: PairSpec,
    /// Configs, logs, the real servers' documents.
    pub dir: PathBuf,
    pub clients: Vec<Netns>,
    pub directors: [Netns; 2],
    pub reals: Vec<Netns>,
    /// The directors' processes (behind a lock so an event can start one while the load and
    /// the watch threads borrow the lab).
    daemons: Mutex<[Option<Child>; 2]>,
    servers: Vec<Child>,
    front: Bridge,
    inside: Bridge,
    /// When `up` began and how long it took (printed on drop: the test's cost).
    born: Instant,
    up_took: Duration,
}

fn ctx<T>(r: io::Result<T>, what: &str) -> io::Result<T> {
    r.map_err(|e| io::Error::other(format!("{what}: {e}")))
}

/// A namespace plugged into `br` as `ifname`; IPv6 off (no DAD, no router solicitations).
fn node(prefix: &str) -> io::Result<Netns> {
    let ns = Netns::new(prefix)?;
    ns.sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")?;
    Ok(ns)
}

impl Lab {
    /// Builds the topology for `spec` with one client and starts the real servers; returns once
    /// every real server listens.
    pub fn up(spec: PairSpec) -> io::Result<Lab> {
        Lab::up_with_clients(spec, 1)
    }

    /// [`Lab::up`] with `clients` client namespaces.
    pub fn up_with_clients(spec: PairSpec, clients: usize) -> io::Result<Lab> {
        let born = Instant::now();
        let front = ctx(Bridge::new("pf"), "front bridge")?;
        let inside = ctx(Bridge::new("pi"), "inside bridge")?;
        let dir = std::env::temp_dir().join(format!("lab-pair-{}", front.name()));
        std::fs::create_dir_all(&dir)?;
        let mut cs = Vec::new();
        for i in 0..clients {
            let c = node("pc")?;
            c.plug(&front, "eth0", &format!("{}/24", spec.client_addr(i)))?;
            cs.push(c);
        }
        let d1 = node("pd")?;
        let d2 = node("pd")?;
        for (i, d) in [&d1, &d2].into_iter().enumerate() {
            d.plug(&front, "eth0", &format!("{}/24", spec.director_addr(i)))?;
            d.plug(
                &inside,
                "eth1",
                &format!("{}/24", spec.director_inside_addr(i)),
            )?;
            d.sh("sysctl -qw net.ipv4.ip_forward=1")?;
        }
        if matches!(spec.forwarding, Forwarding::Gue { .. }) {
            ctx(testns::run(&["modprobe", "fou"]), "modprobe fou")?;
        }
        let mut reals = Vec::new();
        for i in 0..spec.reals {
            let r = node("pr")?;
            let addr = spec.real_addr(i);
            let script = match spec.forwarding {
                Forwarding::Nat => format!("ip route add default via {}", spec.gateway),
                Forwarding::Dr => format!(
                    "sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                     && ip addr add {}/32 dev lo",
                    spec.vip
                ),
                Forwarding::Ipip | Forwarding::Gue { .. } => {
                    let mut s = format!(
                        "sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                         net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
                         && ip link set tunl0 up && sysctl -qw net.ipv4.conf.tunl0.rp_filter=0 \
                         && ip addr add {}/32 dev tunl0",
                        spec.vip
                    );
                    if let Forwarding::Gue { port } = spec.forwarding {
                        s += &format!(" && ip fou add port {port} gue");
                    }
                    s
                }
            };
            let br = if spec.forwarding == Forwarding::Nat {
                &inside
            } else {
                &front
            };
            r.plug(br, "eth0", &format!("{addr}/24"))?;
            ctx(r.sh(&script), &format!("real server r{} set-up", i + 1))?;
            reals.push(r);
        }
        let mut lab = Lab {
            spec,
            dir,
            clients: cs,
            directors: [d1, d2],
            reals,
            daemons: Mutex::new([None, None]),
            servers: Vec::new(),
            front,
            inside,
            born,
            up_took: Duration::ZERO,
        };
        lab.start_reals()?;
        lab.up_took = born.elapsed();
        Ok(lab)
    }

    fn start_reals(&mut self) -> io::Result<()> {
        for (i, r) in self.reals.iter().enumerate() {
            let name = format!("r{}", i + 1);
            let www = self.dir.join(format!("www-{name}"));
            std::fs::create_dir_all(&www)?;
            std::fs::write(www.join("index.html"), format!("{name}\n"))?;
            for port in &self.spec.http_ports {
                let c = r
                    .command("busybox")
                    .args(["httpd", "-f", "-p", &format!("0.0.0.0:{port}"), "-h"])
                    .arg(&www)
                    .stdin(Stdio::null())
                    .spawn()?;
                self.servers.push(c);
            }
            if let Some(port) = self.spec.echo_port {
                let script = self.dir.join(format!("echo-{name}"));
                std::fs::write(&script, format!("#!/bin/sh\necho {name}\nexec cat\n"))?;
                testns::run(&["chmod", "+x", &script.to_string_lossy()])?;
                let c = r
                    .command("busybox")
                    .args(["nc", "-ll", "-p", &port.to_string(), "-e"])
                    .arg(&script)
                    .stdin(Stdio::null())
                    .spawn()?;
                self.servers.push(c);
            }
        }
        let ports = self.spec.ports();
        for (i, r) in self.reals.iter().enumerate() {
            for &p in &ports {
                let ok = r.run(move || wait_until(Duration::from_secs(5), || listening(p)))?;
                if !ok {
                    return Err(io::Error::other(format!(
                        "r{} does not listen on {p}",
                        i + 1
                    )));
                }
            }
        }
        Ok(())
    }

    /// Writes dir`node+1`'s config and starts `imp` there (stdout and stderr to `dN.log`).
    pub fn start_director(&self, node: usize, imp: &Implementation) -> io::Result<()> {
        let name = format!("d{}", node + 1);
        let text = imp.config(&self.spec, node, &self.dir);
        let p = |f: String| self.dir.join(f);
        let conf = p(format!("{name}.conf"));
        std::fs::write(&conf, text)?;
        let log = std::fs::File::create(p(format!("{name}.log")))?;
        let ns = &self.directors[node];
        let mut cmd = match imp {
            Implementation::Keepalived => {
                let mut c = ns.command("keepalived");
                c.args(["-n", "-l", "-D", "-f"]).arg(&conf);
                c.arg("-p").arg(p(format!("{name}.pid")));
                c.arg("-r").arg(p(format!("{name}-vrrp.pid")));
                c.arg("-c").arg(p(format!("{name}-chk.pid")));
                c
            }
            Implementation::Command { program, args, .. } => {
                let mut c = ns.command(&program.to_string_lossy());
                let state = p(format!("{name}-state"));
                std::fs::create_dir_all(&state)?;
                for a in args {
                    c.arg(
                        a.replace("{config}", &conf.to_string_lossy())
                            .replace("{state}", &state.to_string_lossy()),
                    );
                }
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.daemon(node, Some(child));
        Ok(())
    }

    /// Starts dir1, waits until it holds the VIP (within `10 x advert + 5 s`), then starts dir2
    /// (so dir1 is Master with or without preemption), and waits until every node that should
    /// hold the services (dir1; dir2 too for keepalived) has programmed all of them.
    pub fn start_pair(&self, imp: &Implementation) -> io::Result<()> {
        self.start_director(0, imp)?;
        self.wait_vip(0, self.spec.advert * 10 + Duration::from_secs(5))?;
        self.start_director(1, imp)?;
        let nodes = if imp.programs_backup() { 2 } else { 1 };
        for node in 0..nodes {
            self.wait_programmed(node, Duration::from_secs(10))?;
        }
        if let Implementation::Command { backup_log, .. } = imp {
            self.wait_log(1, backup_log, Duration::from_secs(10))?;
        }
        Ok(())
    }

    /// Waits until dir`node+1`'s log (`dN.log`) contains `text`.
    pub fn wait_log(&self, node: usize, text: &str, limit: Duration) -> io::Result<()> {
        let log = self.dir.join(format!("d{}.log", node + 1));
        let ok = wait_every(limit, POLL_CMD, || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains(text))
        });
        if ok {
            return Ok(());
        }
        Err(io::Error::other(format!(
            "d{} never logged {text:?} within {limit:?}\n{}",
            node + 1,
            self.logs()
        )))
    }

    /// Waits until dir`node+1`'s kernel holds every service with every real server.
    pub fn wait_programmed(&self, node: usize, limit: Duration) -> io::Result<()> {
        let want = (
            self.spec.ports().len(),
            self.spec.ports().len() * self.spec.reals,
        );
        let ok = wait_every(limit, POLL_CMD, || {
            self.ipvs_counts(node).ok() == Some(want)
        });
        if ok {
            return Ok(());
        }
        Err(io::Error::other(format!(
            "d{} has {:?} (services, destinations), want {want:?}\n{}",
            node + 1,
            self.ipvs_counts(node),
            self.logs()
        )))
    }

    /// Whether dir`node+1` holds the VIP (binding to it succeeds only where it is local).
    pub fn holds_vip(&self, node: usize) -> bool {
        let vip = self.spec.vip;
        self.directors[node]
            .run(move || UdpSocket::bind((vip, 0)).is_ok())
            .unwrap_or(false)
    }

    /// Waits until dir`node+1` holds the VIP; returns how long it took.
    pub fn wait_vip(&self, node: usize, limit: Duration) -> io::Result<Duration> {
        let vip = self.spec.vip;
        let t0 = Instant::now();
        let ok = self.directors[node]
            .run(move || wait_until(limit, || UdpSocket::bind((vip, 0)).is_ok()))?;
        if ok {
            Ok(t0.elapsed())
        } else {
            Err(io::Error::other(format!(
                "d{} does not hold {vip} after {limit:?}\n{}",
                node + 1,
                self.logs()
            )))
        }
    }

    /// The VIP and `port` as a socket address.
    pub fn vip_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.spec.vip, port))
    }

    /// One HTTP request from client 0 to the VIP's first HTTP port.
    pub fn get(&self) -> Result<String, String> {
        let to = self.vip_addr(self.spec.http_ports[0]);
        self.clients[0]
            .run(move || get(to, Duration::from_secs(2)))
            .map_err(|e| e.to_string())?
    }

    /// `n` requests from client 0, one after the other: how many each real server answered
    /// (failures under the key `"<failed>"`).
    pub fn spread(&self, n: usize) -> BTreeMap<String, usize> {
        let to = self.vip_addr(self.spec.http_ports[0]);
        let out = self.clients[0].run(move || {
            let mut m = BTreeMap::new();
            for _ in 0..n {
                let k = get(to, Duration::from_secs(2)).unwrap_or_else(|_| "<failed>".into());
                *m.entry(k).or_insert(0) += 1;
            }
            m
        });
        out.unwrap_or_default()
    }

    /// (services, destinations) in dir`node+1`'s IPVS table, from `ipvsadm -Ln`.
    pub fn ipvs_counts(&self, node: usize) -> io::Result<(usize, usize)> {
        let out = self.directors[node].exec(&["ipvsadm", "-Ln"])?;
        Ok(count_ipvsadm(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Replaces dir`node+1`'s process handle, reaping the old one; returns nothing.
    fn daemon(&self, node: usize, new: Option<Child>) {
        let old = match self.daemons.lock() {
            Ok(mut d) => std::mem::replace(&mut d[node], new),
            Err(p) => std::mem::replace(&mut p.into_inner()[node], new),
        };
        if let Some(c) = old {
            reap(c);
        }
    }

    /// Takes dir`node+1` away as `how` says and waits until its processes are gone.
    pub fn crash(&self, node: usize, how: Crash) -> io::Result<()> {
        self.take_down(node, how)?;
        self.settle(node, how)
    }

    /// The instant part of [`Lab::crash`]: the signals (and the links down for a node crash).
    pub fn take_down(&self, node: usize, how: Crash) -> io::Result<()> {
        let ns = &self.directors[node];
        if how == Crash::Graceful {
            let pid = self.daemons.lock().map_err(|_| io::Error::other("lock"))?[node]
                .as_ref()
                .map(Child::id);
            if let Some(pid) = pid {
                testns::run(&["kill", "-TERM", &pid.to_string()])?;
            }
            return Ok(());
        }
        let pids = self.pids(node)?;
        if !pids.is_empty() {
            for sig in ["-STOP", "-KILL"] {
                // a process may be gone already: not an error
                let _ = Command::new("kill")
                    .arg(sig)
                    .args(&pids)
                    .stderr(Stdio::null())
                    .status();
            }
        }
        if how == Crash::Node {
            ns.sh("ip link set eth0 down && ip link set eth1 down")?;
        }
        Ok(())
    }

    /// The waiting part of [`Lab::crash`]: a graceful stop gets 10 s to end every process of
    /// the node; then the daemon's handle is reaped.
    pub fn settle(&self, node: usize, how: Crash) -> io::Result<()> {
        if how == Crash::Graceful {
            let gone = wait_every(Duration::from_secs(10), POLL_CMD, || {
                self.pids(node).is_ok_and(|p| p.is_empty())
            });
            if !gone {
                return Err(io::Error::other(format!(
                    "d{} did not exit within 10 s of SIGTERM",
                    node + 1
                )));
            }
        }
        self.daemon(node, None);
        Ok(())
    }

    /// The processes in dir`node+1`'s namespace.
    fn pids(&self, node: usize) -> io::Result<Vec<String>> {
        let out = testns::run(&["ip", "netns", "pids", self.directors[node].name()])?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect())
    }

    /// Brings a crashed dir`node+1` back as a rebooted machine: no VIP on its interfaces, links
    /// up. Start its daemon with [`Lab::start_director`].
    pub fn revive(&self, node: usize) -> io::Result<()> {
        let ns = &self.directors[node];
        let _ = ns.ip(&[
            "addr",
            "del",
            &format!("{}/24", self.spec.vip),
            "dev",
            "eth0",
        ]);
        let _ = ns.ip(&[
            "addr",
            "del",
            &format!("{}/24", self.spec.gateway),
            "dev",
            "eth1",
        ]);
        ns.sh("ip link set eth0 up && ip link set eth1 up")?;
        Ok(())
    }

    /// Runs `load` from client 0 against the first HTTP port, crashes dir1 (`how`) after
    /// `crash_after`, and watches dir2 take the VIP.
    pub fn failover(&self, load: Load, crash_after: Duration, how: Crash) -> io::Result<Failover> {
        let f = self.under_load(load, crash_after, 1, |lab| lab.take_down(0, how))?;
        self.settle(0, how)?;
        Ok(f)
    }

    /// Runs `load` from client 0 against the first HTTP port, runs `event` after `after`, and
    /// watches dir`watch+1` hold the VIP. In the result, `crash` is when `event` began, `gone`
    /// when it returned, `detection` when the VIP was local on `watch` (from `crash`).
    pub fn under_load(
        &self,
        load: Load,
        after: Duration,
        watch: usize,
        event: impl FnOnce(&Lab) -> io::Result<()>,
    ) -> io::Result<Failover> {
        let to = self.vip_addr(self.spec.http_ports[0]);
        let vip = self.spec.vip;
        let origin = Instant::now();
        let limit = load.max_time;
        let (client, watched) = (&self.clients[0], &self.directors[watch]);
        let (samples, vip_at, crash, gone) = std::thread::scope(|s| -> io::Result<_> {
            let loader = s.spawn(move || client.run(move || load::run(to, load, origin)));
            std::thread::sleep(after);
            let watcher = s.spawn(move || {
                watched.run(move || {
                    let ok = wait_until(limit, || UdpSocket::bind((vip, 0)).is_ok());
                    ok.then(|| origin.elapsed())
                })
            });
            let crash = origin.elapsed();
            let done = event(self);
            let gone = origin.elapsed();
            let samples = loader
                .join()
                .map_err(|_| io::Error::other("load panicked"))??;
            let vip_at = watcher
                .join()
                .map_err(|_| io::Error::other("watch panicked"))??;
            done?;
            Ok((samples, vip_at, crash, gone))
        })?;
        Ok(Failover::from_samples(samples, crash, gone, vip_at))
    }

    /// The directors' logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in ["d1", "d2"] {
            let text =
                std::fs::read_to_string(self.dir.join(format!("{n}.log"))).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            s += &format!("---- {n}.log (last lines)\n");
            for l in tail.into_iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        s
    }
}

fn reap(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        eprintln!(
            "lab_pair: {:?} x {} lab: up in {:.1} s, dropped after {:.1} s",
            self.spec.forwarding,
            self.spec.reals,
            self.up_took.as_secs_f64(),
            self.born.elapsed().as_secs_f64()
        );
        self.daemon(0, None);
        self.daemon(1, None);
        for c in self.servers.drain(..) {
            reap(c);
        }
        // every process left in a namespace (busybox's forked children)
        for ns in self
            .reals
            .iter()
            .chain(&self.directors)
            .chain(&self.clients)
        {
            if let Ok(o) = testns::run(&["ip", "netns", "pids", ns.name()]) {
                let pids = String::from_utf8_lossy(&o.stdout).to_string();
                let pids: Vec<&str> = pids.split_whitespace().collect();
                if !pids.is_empty() {
                    let _ = Command::new("kill")
                        .arg("-KILL")
                        .args(&pids)
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The step of polls that run a command (`ipvsadm`, `ip`): each costs tens of milliseconds of
/// CPU under emulation, which the daemons under test share.
pub const POLL_CMD: Duration = Duration::from_millis(50);

/// Polls `f` every 2 ms for at most `limit` (for in-process checks: a `bind`, a `/proc` read).
pub fn wait_until(limit: Duration, f: impl FnMut() -> bool) -> bool {
    wait_every(limit, Duration::from_millis(2), f)
}

/// Polls `f` every `step` for at most `limit`.
pub fn wait_every(limit: Duration, step: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t0.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(step);
    }
}

/// Whether a TCP socket listens on `port` in the calling thread's namespace (IPv4 or IPv6:
/// `busybox nc -l` listens on `::`).
fn listening(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["tcp", "tcp6"].iter().any(|f| {
        std::fs::read_to_string(format!("/proc/thread-self/net/{f}"))
            .map(|t| {
                t.lines().skip(1).any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
                })
            })
            .unwrap_or(false)
    })
}

/// (services, destinations) in `ipvsadm -Ln` output.
pub fn count_ipvsadm(text: &str) -> (usize, usize) {
    let mut s = 0;
    let mut d = 0;
    for l in text.lines() {
        let t = l.trim_start();
        if ["TCP ", "UDP ", "SCTP ", "FWM "]
            .iter()
            .any(|p| l.starts_with(p))
        {
            s += 1;
        } else if t.starts_with("-> ") && !t.starts_with("-> RemoteAddress") {
            d += 1;
        }
    }
    (s, d)
}

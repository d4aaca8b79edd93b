//! Shared helpers of the `netns_*` runner tests: a LAN (bridge) with nodes in their own network
//! namespaces, each running one `havip::runner` instance on a current-thread tokio runtime
//! inside its namespace, driven from the test thread.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use havip::config::{InstanceConfig, Vip};
use havip::fsm::State;
use havip::runner::{self, InstanceStatus, Role, StartOptions};
use havip::time::Centisecs;
use testns::{Bridge, Netns};
use tokio::sync::{mpsc, watch};

/// A bridge and the namespaces plugged into it.
pub struct Lan {
    pub bridge: Bridge,
}

impl Lan {
    pub fn new() -> Lan {
        Lan {
            bridge: Bridge::new("hbr").expect("bridge"),
        }
    }

    /// A namespace with `eth0` on the bridge carrying `cidr` (IPv6 DAD off, so link-local
    /// addresses are usable at once).
    pub fn host(&self, cidr: &str) -> Arc<Netns> {
        self.host_port(cidr).0
    }

    /// Same as [`Lan::host`], also returning the bridge-side veth (to cut the node off the LAN
    /// while its own link stays up).
    pub fn host_port(&self, cidr: &str) -> (Arc<Netns>, String) {
        let ns = Netns::new("hv").expect("netns");
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"])
            .expect("sysctl");
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"])
            .expect("sysctl");
        let port = ns.plug(&self.bridge, "eth0", cidr).expect("plug");
        // The kernel adds the link-local address once the link is up with carrier: wait for it
        // (an IPv6 instance sends from it).
        let t0 = std::time::Instant::now();
        while !addrs(&ns, "eth0").contains("fe80::") {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "no link-local address"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        (Arc::new(ns), port)
    }

    /// Detaches (`false`) or re-attaches (`true`) a bridge port: a partition with links up.
    pub fn connect(&self, port: &str, on: bool) {
        if on {
            testns::run(&["ip", "link", "set", port, "master", self.bridge.name()])
                .expect("attach");
        } else {
            testns::run(&["ip", "link", "set", port, "nomaster"]).expect("detach");
        }
    }
}

/// Two namespaces joined by a veth pair (each end `eth0`), no bridge. Unicast VRRP between
/// namespaces must not cross the host bridge: with `bridge-nf-call-iptables=1` the host's
/// netfilter drops bridged unicast protocol-112 datagrams (multicast and ICMP pass).
pub fn pair(cidr_a: &str, cidr_b: &str) -> (Arc<Netns>, Arc<Netns>) {
    let a = Netns::new("hv").expect("netns");
    let b = Netns::new("hv").expect("netns");
    let (va, vb) = (testns::unique_name("hva"), testns::unique_name("hvb"));
    testns::run(&[
        "ip", "link", "add", &va, "type", "veth", "peer", "name", &vb,
    ])
    .expect("veth");
    for (ns, v, cidr) in [(&a, &va, cidr_a), (&b, &vb, cidr_b)] {
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"])
            .expect("sysctl");
        testns::run(&["ip", "link", "set", v, "netns", ns.name(), "name", "eth0"]).expect("move");
        if cidr.contains(':') {
            ns.ip(&["addr", "add", cidr, "dev", "eth0", "nodad"])
                .expect("addr");
        } else {
            ns.ip(&["addr", "add", cidr, "dev", "eth0"]).expect("addr");
        }
        ns.ip(&["link", "set", "eth0", "up"]).expect("up");
    }
    (Arc::new(a), Arc::new(b))
}

/// The addresses of `dev` in `ns` (`ip -br addr`).
pub fn addrs(ns: &Netns, dev: &str) -> String {
    String::from_utf8_lossy(
        &ns.ip(&["-br", "addr", "show", "dev", dev])
            .expect("ip addr")
            .stdout,
    )
    .into_owned()
}

/// Whether `ns` has `addr` on eth0.
pub fn has_addr(ns: &Netns, addr: &str) -> bool {
    addrs(ns, "eth0")
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(addr))
}

/// The MAC address of eth0 in `ns`.
pub fn mac(ns: &Netns) -> String {
    let out = ns.sh("cat /sys/class/net/eth0/address").expect("mac");
    out.trim().to_string()
}

/// A config with 100 ms adverts and short GARP bursts, for tests.
pub fn cfg(name: &str, vrid: u8, priority: u8, vip: &str) -> InstanceConfig {
    let (addr, len) = vip.split_once('/').expect("vip with prefix");
    let mut c = InstanceConfig::new(
        name,
        "eth0",
        vrid,
        priority,
        vec![Vip {
            addr: addr.parse().expect("vip"),
            prefix_len: len.parse().expect("prefix"),
        }],
    );
    c.advert_interval = Centisecs(10);
    c.garp.repeat = 3;
    c.garp.interval = Duration::from_millis(100);
    c
}

enum Ctl {
    Shutdown,
    Crash,
    DropHandle,
    Release(std::sync::mpsc::Sender<Result<(), String>>),
    Weight(i32),
    Fault(Option<String>),
    Claim(std::sync::mpsc::Sender<Result<(), String>>),
    Update(
        Box<InstanceConfig>,
        std::sync::mpsc::Sender<Result<(), runner::Error>>,
    ),
    /// Shut down through a clone of the handle, the original kept alive meanwhile.
    ShutdownClone,
}

/// One running instance in its namespace.
pub struct Node {
    pub ns: Arc<Netns>,
    ctl: mpsc::UnboundedSender<Ctl>,
    pub status: watch::Receiver<InstanceStatus>,
    pub role: watch::Receiver<Role>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Node {
    /// Starts `cfg` inside `ns`; panics if the instance does not start.
    pub fn start(ns: Arc<Netns>, cfg: InstanceConfig) -> Node {
        Node::start_with(ns, cfg, StartOptions::default())
    }

    /// Starts `cfg` inside `ns` with `opts` (`runner::start_with`).
    pub fn start_with(ns: Arc<Netns>, cfg: InstanceConfig, opts: StartOptions) -> Node {
        let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel();
        let (st_tx, st_rx) = std::sync::mpsc::channel();
        let ns2 = ns.clone();
        let thread = std::thread::spawn(move || {
            ns2.run(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let h = match runner::start_with(cfg, opts).await {
                        Ok(h) => h,
                        Err(e) => {
                            let _ = st_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = st_tx.send(Ok((h.status(), h.role())));
                    while let Some(c) = ctl_rx.recv().await {
                        match c {
                            Ctl::Shutdown => break,
                            // Leave without resigning: the runtime is dropped with the
                            // instance's task never polled again, as if the process died
                            // (the VIP stays on the interface, no priority-0 advert).
                            Ctl::Crash => {
                                std::mem::forget(h);
                                return;
                            }
                            // Every handle gone without `shutdown`: the instance must still
                            // resign and remove its VIPs (the runtime stays up meanwhile).
                            Ctl::DropHandle => {
                                drop(h);
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                return;
                            }
                            Ctl::Release(reply) => {
                                let _ = reply.send(h.release().await.map_err(|e| e.to_string()));
                            }
                            Ctl::Weight(w) => h.set_external_weight(w),
                            Ctl::Fault(r) => h.set_external_fault(r),
                            Ctl::Claim(reply) => {
                                let _ = reply.send(h.claim().await.map_err(|e| e.to_string()));
                            }
                            Ctl::Update(cfg, reply) => {
                                let _ = reply.send(h.update(*cfg).await);
                            }
                            Ctl::ShutdownClone => {
                                h.clone().shutdown().await;
                                let closed = h.status().has_changed().is_err();
                                assert!(closed, "a clone's shutdown stops the instance");
                                return;
                            }
                        }
                    }
                    h.shutdown().await;
                })
            })
            .expect("enter netns");
        });
        let (status, role) = st_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("instance start reported")
            .expect("instance started");
        Node {
            ns,
            ctl: ctl_tx,
            status,
            role,
            thread: Some(thread),
        }
    }

    pub fn state(&self) -> State {
        self.status.borrow().state
    }

    /// Waits until `pred` holds for the status; returns the time it took, panics after `limit`.
    pub fn wait(
        &self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&InstanceStatus) -> bool,
    ) -> Duration {
        let t0 = Instant::now();
        loop {
            if pred(&self.status.borrow()) {
                return t0.elapsed();
            }
            if t0.elapsed() > limit {
                panic!(
                    "{what}: not within {limit:?}; status {:#?}",
                    *self.status.borrow()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn wait_state(&self, s: State, limit: Duration) -> Duration {
        self.wait(limit, &format!("state {s}"), |st| st.state == s)
    }

    pub fn set_weight(&self, w: i32) {
        let _ = self.ctl.send(Ctl::Weight(w));
    }

    pub fn set_fault(&self, reason: Option<&str>) {
        let _ = self.ctl.send(Ctl::Fault(reason.map(str::to_owned)));
    }

    pub fn claim(&self) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = self.ctl.send(Ctl::Claim(tx));
        rx.recv_timeout(Duration::from_secs(40))
            .expect("claim answered")
    }

    pub fn release(&self) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = self.ctl.send(Ctl::Release(tx));
        rx.recv_timeout(Duration::from_secs(10))
            .expect("release answered")
    }

    /// `InstanceHandle::update` with `cfg`.
    pub fn update(&self, cfg: InstanceConfig) -> Result<(), runner::Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = self.ctl.send(Ctl::Update(Box::new(cfg), tx));
        rx.recv_timeout(Duration::from_secs(10))
            .expect("update answered")
    }

    /// Shuts the instance down through a clone of its handle and waits for the end.
    pub fn shutdown_clone(mut self) {
        let _ = self.ctl.send(Ctl::ShutdownClone);
        if let Some(t) = self.thread.take() {
            t.join().expect("node thread");
        }
    }

    /// Drops the instance's handle (no `shutdown` call) and waits a second with the runtime up.
    pub fn drop_handle(mut self) {
        let _ = self.ctl.send(Ctl::DropHandle);
        if let Some(t) = self.thread.take() {
            t.join().expect("node thread");
        }
    }

    /// Stops the instance without resigning or removing its VIPs (a crash, seen from the LAN).
    pub fn crash(mut self) {
        let _ = self.ctl.send(Ctl::Crash);
        if let Some(t) = self.thread.take() {
            t.join().expect("node thread");
        }
    }

    /// Resigns and waits until the instance has stopped (VIPs removed).
    pub fn shutdown(mut self) {
        let _ = self.ctl.send(Ctl::Shutdown);
        if let Some(t) = self.thread.take() {
            t.join().expect("node thread");
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.ctl.send(Ctl::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! The pair's abstract description and one config writer per director implementation.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the directors forward to the real servers (and how the real servers are set up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarding {
    /// Direct routing: the VIP on each real server's `lo`, `arp_ignore=1`, `arp_announce=2`.
    Dr,
    /// Masquerading: real servers on the inside network, default route via the gateway VIP.
    Nat,
    /// IP-in-IP: the VIP on each real server's `tunl0`, `rp_filter=0`.
    Ipip,
    /// Generic UDP Encapsulation to `port` (kernel >= 5.2): `ip fou add port PORT gue` on each
    /// real server on top of the `Ipip` set-up.
    Gue { port: u16 },
}

/// What both directors are told: one VRRP instance and the virtual services it carries. The two
/// generated configurations differ only in `priorities[node]`.
#[derive(Clone, Debug)]
pub struct PairSpec {
    /// The service VIP on the front network (both directors' `eth0`).
    pub vip: Ipv4Addr,
    /// The real servers' default gateway on the inside network (`eth1`); NAT only.
    pub gateway: Ipv4Addr,
    /// VRRP virtual router id (also the sync daemon's syncid).
    pub vrid: u8,
    /// VRRP priority of dir1 and dir2.
    pub priorities: [u8; 2],
    /// VRRPv3 advertisement interval (keepalived takes it in seconds with decimals).
    pub advert: Duration,
    /// Whether a recovered higher-priority node takes the VIP back.
    pub preempt: bool,
    pub forwarding: Forwarding,
    /// Number of real servers, `r1..rN`.
    pub reals: usize,
    /// TCP ports of the HTTP virtual services (round robin over every real server).
    pub http_ports: Vec<u16>,
    /// A TCP virtual service whose real servers say their name and then echo (long-lived
    /// connections), or none.
    pub echo_port: Option<u16>,
    /// The IPVS connection sync daemon on `eth0` (master on the VRRP Master, backup on the other).
    pub sync_daemon: bool,
}

/// The first address of the real servers (`.11`), front network for DR and tunnels.
const FRONT: [u8; 3] = [10, 77, 0];
const INSIDE: [u8; 3] = [10, 77, 1];

impl PairSpec {
    /// One HTTP service on port 80 and the echo service on 9000 over `reals` real servers;
    /// VIP 10.77.0.100, gateway 10.77.1.1, VRID 51, priorities 150/100, 200 ms adverts, preempt.
    pub fn new(forwarding: Forwarding, reals: usize) -> PairSpec {
        PairSpec {
            vip: Ipv4Addr::new(10, 77, 0, 100),
            gateway: Ipv4Addr::new(10, 77, 1, 1),
            vrid: 51,
            priorities: [150, 100],
            advert: Duration::from_millis(200),
            preempt: true,
            forwarding,
            reals,
            http_ports: vec![80],
            echo_port: Some(9000),
            sync_daemon: false,
        }
    }

    /// Real server `i` (0-based): 10.77.0.11+i, or 10.77.1.11+i behind NAT.
    pub fn real_addr(&self, i: usize) -> Ipv4Addr {
        let [a, b, c] = if self.forwarding == Forwarding::Nat {
            INSIDE
        } else {
            FRONT
        };
        Ipv4Addr::new(a, b, c, 11 + i as u8)
    }

    /// Director `node` (0 or 1) on the front (`eth0`, .2/.3) network.
    pub fn director_addr(&self, node: usize) -> Ipv4Addr {
        let [a, b, c] = FRONT;
        Ipv4Addr::new(a, b, c, 2 + node as u8)
    }

    /// Director `node` on the inside (`eth1`) network.
    pub fn director_inside_addr(&self, node: usize) -> Ipv4Addr {
        let [a, b, c] = INSIDE;
        Ipv4Addr::new(a, b, c, 2 + node as u8)
    }

    /// Client `i` (0-based): 10.77.0.21+i.
    pub fn client_addr(&self, i: usize) -> Ipv4Addr {
        let [a, b, c] = FRONT;
        Ipv4Addr::new(a, b, c, 21 + i as u8)
    }

    /// Every service port: the HTTP ones, then the echo one.
    pub fn ports(&self) -> Vec<u16> {
        let mut v = self.http_ports.clone();
        v.extend(self.echo_port);
        v
    }
}

/// Which program runs as each director.
#[derive(Clone, Debug)]
pub enum Implementation {
    /// keepalived 2.2.7 (Debian): programs its virtual services on both nodes at start, moves
    /// the VIPs with VRRP.
    Keepalived,
    /// Any program given a config file: `args` with `{config}` replaced by the file's path and
    /// `{state}` by a per-node directory (`dN-state` in the lab's), the file written by
    /// `write(spec, node, lab_dir)`. It programs IPVS only while Master (the Backup's table
    /// stays empty), as `director run` does.
    Command {
        program: PathBuf,
        args: Vec<String>,
        write: fn(&PairSpec, usize, &Path) -> String,
        /// Text the daemon's log holds once it runs as Backup (the pair waits for it on dir2:
        /// under emulation a debug binary takes seconds to start).
        backup_log: &'static str,
    },
}

impl Implementation {
    /// `BIN run -c {config} --state-dir {state}` with [`director_yaml`]: our director.
    pub fn director(bin: &str) -> Implementation {
        Implementation::Command {
            program: PathBuf::from(bin),
            args: ["run", "-c", "{config}", "--state-dir", "{state}"]
                .map(String::from)
                .to_vec(),
            write: director_yaml,
            backup_log: "from=INIT to=BACKUP",
        }
    }

    /// Whether the Backup holds the virtual services too (keepalived programs them at start on
    /// both nodes; the director only on the VIP holder).
    pub fn programs_backup(&self) -> bool {
        matches!(self, Implementation::Keepalived)
    }

    /// The config text for `node`.
    pub fn config(&self, spec: &PairSpec, node: usize, dir: &Path) -> String {
        match self {
            Implementation::Keepalived => keepalived_conf(spec, node),
            Implementation::Command { write, .. } => write(spec, node, dir),
        }
    }
}

/// Seconds with decimals, as keepalived's `advert_int` takes them.
fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// keepalived.conf for `node`: VRRPv3, one instance holding the VIP on `eth0` (and the gateway
/// on `eth1` for NAT, so it follows the Master), the virtual services with no health checker
/// (keepalived then keeps every real server in), the sync daemon when asked.
pub fn keepalived_conf(spec: &PairSpec, node: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "global_defs {{\n  router_id dir{}\n  vrrp_version 3",
        node + 1
    );
    if spec.sync_daemon {
        let _ = writeln!(s, "  lvs_sync_daemon eth0 VI_1 id {}", spec.vrid);
    }
    let _ = writeln!(
        s,
        "}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0"
    );
    let _ = writeln!(s, "  virtual_router_id {}", spec.vrid);
    let _ = writeln!(s, "  priority {}", spec.priorities[node]);
    let _ = writeln!(s, "  advert_int {}", secs(spec.advert));
    if !spec.preempt {
        let _ = writeln!(s, "  nopreempt");
    }
    let _ = writeln!(s, "  virtual_ipaddress {{\n    {}/24 dev eth0", spec.vip);
    if spec.forwarding == Forwarding::Nat {
        let _ = writeln!(s, "    {}/24 dev eth1", spec.gateway);
    }
    let _ = writeln!(s, "  }}\n}}");
    let method = match spec.forwarding {
        Forwarding::Dr => "DR".to_string(),
        Forwarding::Nat => "NAT".to_string(),
        Forwarding::Ipip => "TUN type ipip".to_string(),
        Forwarding::Gue { port } => format!("TUN type gue port {port}"),
    };
    for port in spec.ports() {
        let _ = writeln!(s, "virtual_server {} {port} {{", spec.vip);
        let _ = writeln!(s, "  lb_algo rr\n  lvs_method {method}\n  protocol TCP");
        for i in 0..spec.reals {
            let _ = writeln!(
                s,
                "  real_server {} {port} {{ weight 1 }}",
                spec.real_addr(i)
            );
        }
        let _ = writeln!(s, "}}");
    }
    s
}

/// The director's YAML for `node` (schema of `deploy/examples/lvs-*-pair.yaml`, status socket in
/// `dir`). The director's VIPs all live on the instance's interface, so NAT's gateway is a second
/// instance on `eth1` (VRID + 1), not a second VIP of the same instance as with keepalived.
pub fn director_yaml(spec: &PairSpec, node: usize, dir: &Path) -> String {
    let mut s = String::new();
    let sock = dir.join(format!("d{}.sock", node + 1));
    let _ = writeln!(s, "global:\n  status_socket: {}", sock.display());
    let _ = writeln!(s, "instances:");
    let mut instance = |name: &str, ifname: &str, vrid: u8, vip: Ipv4Addr| {
        let _ = writeln!(s, "  - name: {name}\n    interface: {ifname}");
        let _ = writeln!(s, "    virtual_router_id: {vrid}");
        let _ = writeln!(s, "    priority: {}", spec.priorities[node]);
        let _ = writeln!(s, "    advert_interval: {}ms", spec.advert.as_millis());
        if !spec.preempt {
            let _ = writeln!(s, "    preempt: false");
        }
        let _ = writeln!(s, "    virtual_ipaddress: [{vip}/24]");
    };
    instance("pair", "eth0", spec.vrid, spec.vip);
    if spec.forwarding == Forwarding::Nat {
        instance("inside", "eth1", spec.vrid.wrapping_add(1), spec.gateway);
    }
    let (forwarding, tunnel) = match spec.forwarding {
        Forwarding::Dr => ("dr", None),
        Forwarding::Nat => ("nat", None),
        Forwarding::Ipip => ("tunnel", None),
        Forwarding::Gue { port } => ("tunnel", Some(port)),
    };
    let _ = writeln!(s, "virtual_servers:");
    for port in spec.ports() {
        let _ = writeln!(
            s,
            "  - instance: pair\n    address: {}\n    port: {port}",
            spec.vip
        );
        let _ = writeln!(s, "    forwarding: {forwarding}\n    scheduler: rr");
        if let Some(p) = tunnel {
            let _ = writeln!(s, "    tunnel: {{type: gue, port: {p}}}");
        }
        let _ = writeln!(s, "    real_servers:");
        for i in 0..spec.reals {
            let _ = writeln!(
                s,
                "      - {{address: {}, port: {port}}}",
                spec.real_addr(i)
            );
        }
    }
    if spec.sync_daemon {
        let _ = writeln!(
            s,
            "ipvs:\n  sync_daemon: {{instance: pair, interface: eth0, syncid: {}}}",
            spec.vrid
        );
    }
    s
}

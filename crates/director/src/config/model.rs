//! The configuration after validation: plain typed values, no source locations, every default
//! filled in. `PartialEq` so a reload can be computed as a diff (`daemon::reload`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use super::schema::Secret;

/// Default path of the status socket.
pub const DEFAULT_STATUS_SOCKET: &str = "/run/director/director.sock";

/// A valid configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Daemon-wide settings.
    pub global: Global,
    /// The instances, in file order; names and (interface, VRID, family) are unique.
    pub instances: Vec<Instance>,
    /// The virtual services, in file order; keys are unique, each names an instance of
    /// `instances` and (unless it is a fwmark service) has one of that instance's VIPs as address.
    /// Shared: the daemon, its IPVS engine and its health checks hold one copy between them (at
    /// 10,000 x 10 a copy is ~17 MB).
    pub virtual_services: Arc<Vec<VirtualService>>,
    /// Kernel-wide IPVS settings.
    pub ipvs: IpvsSettings,
}

/// One virtual service, programmed only on the node that holds its instance's VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualService {
    /// Name of the instance (in [`Config::instances`]) whose VIP gates this service.
    pub instance: String,
    /// The service as the kernel is to hold it: key, scheduler, flags, persistence timeout
    /// (seconds) and netmask, persistence engine. `stats` is `None`.
    pub service: ipvs::Service,
    /// Its real servers, in file order; (address, port) unique within the service.
    pub real_servers: Vec<RealServer>,
    /// 1-based line of the entry in the file, for messages (`plan`, logs).
    pub line: u64,
    /// What a real server that is not up gets (`on_down:`, default inhibit).
    pub on_down: crate::desired::OnDown,
    /// The real server used while no configured one takes new connections (`sorry_server:`).
    /// Not health-checked.
    pub sorry_server: Option<ipvs::Destination>,
    /// The minimum healthy weight and what losing it does (`quorum:`, `quorum_down:`).
    pub quorum: Option<Quorum>,
}

/// A service's quorum: while the configured weights of its healthy real servers add up to less
/// than `min_weight`, this director gives way to its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// Minimum sum of the configured weights of the real servers that are up (1..).
    pub min_weight: u64,
    /// What the service's instance does while the quorum is lost.
    pub on_lost: QuorumDown,
}

/// What losing a quorum does to the service's VRRP instance (through havip's external weight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumDown {
    /// Lower the instance's priority by this much (1..254): the peer, if higher, takes over.
    PriorityDecrease(u8),
    /// The instance goes to FAULT (gives up its VIPs whatever the peer's priority).
    Fault,
}

/// One real server of a virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// The destination as the kernel is to hold it: address, port (equal to the service's for
    /// DR and tunnel, 0 for DR/tunnel of a fwmark service), forwarding, weight 0..65535,
    /// thresholds (lower <= upper), tunnel settings. Counters are 0 and `stats` is `None`.
    pub dest: ipvs::Destination,
    /// Its health checks (its own `checks:`, else the service's); empty: always up.
    pub checks: Vec<health::CheckSpec>,
}

/// Default of `ipvs: verify_interval`.
pub const DEFAULT_VERIFY_INTERVAL: Duration = Duration::from_secs(30);
/// Default of `ipvs: drain_timeout`.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

/// Kernel-wide IPVS settings (`ipvs:`). Everything left out is left as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsSettings {
    /// Connection timeouts in seconds; 0 leaves that timeout as the kernel has it (the kernel's
    /// own rule for `IPVS_CMD_SET_CONFIG`).
    pub timeouts: ipvs::Timeouts,
    /// The sync daemon: master while its instance is Master, backup otherwise.
    pub sync_daemon: Option<SyncDaemonConfig>,
    /// `net.ipv4.vs.*` settings.
    pub sysctls: Sysctls,
    /// How often the Master reads its services back and repairs what someone changed behind
    /// its back (drift). Each verification reads every owned service by key.
    pub verify_interval: Duration,
    /// How long a real server removed from the configuration stays at weight 0 with active
    /// connections before it is deleted anyway (keepalived #1228).
    pub drain_timeout: Duration,
}

impl Default for IpvsSettings {
    fn default() -> Self {
        IpvsSettings {
            timeouts: ipvs::Timeouts::default(),
            sync_daemon: None,
            sysctls: Sysctls::default(),
            verify_interval: DEFAULT_VERIFY_INTERVAL,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// The connection-synchronisation daemon of a director pair (keepalived's `lvs_sync_daemon`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemonConfig {
    /// The instance whose state decides the role: Master -> sync master, else sync backup.
    pub instance: String,
    /// Interface the sync messages are sent and received on.
    pub interface: String,
    /// Sync id 0..255 (default: the instance's VRID, as keepalived does): a backup drops
    /// messages of another id.
    pub syncid: u8,
    /// Largest sync payload in bytes; `None`: the kernel's (from the interface MTU).
    pub maxlen: Option<u16>,
    /// Multicast group; `None`: the kernel's 224.0.0.81.
    pub group: Option<std::net::IpAddr>,
    /// UDP port; `None`: the kernel's 8848.
    pub port: Option<u16>,
    /// Multicast TTL; `None`: the kernel's 1.
    pub ttl: Option<u8>,
}

impl SyncDaemonConfig {
    /// The daemon to start in `state` (`IPVS_CMD_NEW_DAEMON`).
    pub fn daemon(&self, state: ipvs::DaemonState) -> ipvs::SyncDaemon {
        let mut d = ipvs::SyncDaemon::new(state, &self.interface, u32::from(self.syncid));
        d.sync_maxlen = self.maxlen;
        d.mcast_group = self.group;
        d.mcast_port = self.port;
        d.mcast_ttl = self.ttl;
        d
    }
}

/// The `net.ipv4.vs.*` sysctls that decide what happens to the connections of a removed or
/// quiesced real server (kernel `Documentation/networking/ipvs-sysctl.rst`). `None`: not
/// written, the namespace keeps its value (they are shared by everything in the namespace).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sysctls {
    /// `expire_nodest_conn`: expire a connection at its next packet once its real server is
    /// gone (the client sees a reset) instead of dropping its packets silently.
    pub expire_nodest_conn: Option<bool>,
    /// `expire_quiescent_template`: expire a persistence template whose real server has weight
    /// 0, so a persistent client's next connection goes elsewhere (drain with persistence).
    pub expire_quiescent_template: Option<bool>,
    /// `conn_reuse_mode` 0, 1 or 2: rescheduling of a new connection that reuses the port of
    /// an old one.
    pub conn_reuse_mode: Option<u8>,
}

impl Sysctls {
    /// `(path under /proc/sys, value)` for each setting that is set, e.g.
    /// `("net/ipv4/vs/expire_nodest_conn", "1")`.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let b = |v: bool| u8::from(v).to_string();
        let mut out = Vec::new();
        if let Some(v) = self.expire_nodest_conn {
            out.push(("net/ipv4/vs/expire_nodest_conn", b(v)));
        }
        if let Some(v) = self.expire_quiescent_template {
            out.push(("net/ipv4/vs/expire_quiescent_template", b(v)));
        }
        if let Some(v) = self.conn_reuse_mode {
            out.push(("net/ipv4/vs/conn_reuse_mode", v.to_string()));
        }
        out
    }
}

/// `global:`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Where `director run` listens and `director status` asks.
    pub status_socket: PathBuf,
    /// A `tracing` filter directive (`info`, `debug`, ...); `RUST_LOG` overrides it.
    pub log_level: String,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            status_socket: PathBuf::from(DEFAULT_STATUS_SOCKET),
            log_level: "info".to_string(),
        }
    }
}

/// VRRP version of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// RFC 3768 (IPv4 only, interval in whole seconds): for keepalived pairs still on v2.
    V2,
    /// RFC 9568 / RFC 5798 (IPv4 or IPv6, interval in centiseconds).
    V3,
}

/// An address with its prefix length, as added to the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vip {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (default /32 or /128).
    pub prefix: u8,
}

impl std::fmt::Display for Vip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Gratuitous ARP / unsolicited NA settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Garp {
    /// Announcements sent on becoming master.
    pub repeat: u32,
    /// Gap between them.
    pub interval: Duration,
    /// Re-announce this often while master; `None`: never.
    pub refresh: Option<Duration>,
}

/// Default GARP repeat count.
pub const DEFAULT_GARP_REPEAT: u32 = 5;
/// Default gap between GARPs.
pub const DEFAULT_GARP_INTERVAL: Duration = Duration::from_millis(100);
/// Default refresh period.
pub const DEFAULT_GARP_REFRESH: Duration = Duration::from_secs(60);

impl Default for Garp {
    fn default() -> Self {
        Garp {
            repeat: DEFAULT_GARP_REPEAT,
            interval: DEFAULT_GARP_INTERVAL,
            refresh: Some(DEFAULT_GARP_REFRESH),
        }
    }
}

/// A tracked interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    /// Interface name.
    pub name: String,
    /// Added to the priority while the link is down; 0 means FAULT.
    pub weight: i32,
}

/// Default check interval.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Default check timeout.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// Notify commands. Each runs as `sh -c 'COMMAND "$@"'` with keepalived's four arguments
/// `$1 = INSTANCE` (the word), `$2` = the instance name, `$3 = MASTER | BACKUP | FAULT | STOP`,
/// `$4` = the priority, and `HAVIP_INSTANCE`, `HAVIP_STATE`, `HAVIP_FROM`, `HAVIP_REASON` in the
/// environment (havip's `runner::effects`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    /// On becoming master.
    pub master: Option<String>,
    /// On becoming backup.
    pub backup: Option<String>,
    /// On entering FAULT.
    pub fault: Option<String>,
    /// On stop.
    pub stop: Option<String>,
    /// On every transition.
    pub any: Option<String>,
}

/// Who decides that this node holds the VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// VRRP election by priority.
    Vrrp,
    /// An outside decision (`claim`/`release`); `fence` must succeed before taking the VIP.
    /// No VRRP adverts are sent in this role: `claim` adds the VIPs and sends GARP / NA.
    External {
        /// Fence command.
        fence: Option<String>,
    },
}

/// One VRRP instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Unique name.
    pub name: String,
    /// Interface.
    pub interface: String,
    /// VRID 1..255.
    pub vrid: u8,
    /// Priority 1..255.
    pub priority: u8,
    /// Protocol version.
    pub version: Version,
    /// Advertisement interval.
    pub advert_interval: Duration,
    /// VIPs, all of one family.
    pub vips: Vec<Vip>,
    /// Source address for unicast adverts.
    pub unicast_src_ip: Option<IpAddr>,
    /// Unicast peers; empty means multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// Preempt a lower-priority master.
    pub preempt: bool,
    /// Delay before preempting after start.
    pub preempt_delay: Duration,
    /// GARP / NA.
    pub garp: Garp,
    /// Tracked interfaces.
    pub track_interfaces: Vec<TrackInterface>,
    /// Tracked checks: havip's own type (the probe, its timing, rise/fall and weight), built by
    /// `validate` and handed to havip as is.
    pub checks: Vec<havip::config::CheckConfig>,
    /// Notify commands.
    pub notify: Notify,
    /// Election or external role. `External` runs no VRRP at all (no election, no adverts sent,
    /// adverts received only counted) and has no tracking: `validate` refuses
    /// `track_check`/`track_interface` there.
    pub role: Role,
    /// VRRPv2 password.
    pub auth_pass: Option<Secret>,
}

/// Default priority.
pub const DEFAULT_PRIORITY: u8 = 100;
/// Default advertisement interval.
pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_secs(1);

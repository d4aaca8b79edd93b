//! The configuration after validation: plain typed values, no source locations, every default
//! filled in. `PartialEq` so a reload can be computed as a diff (`daemon::reload`).

use std::net::IpAddr;
use std::path::PathBuf;
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

/// What a check probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `sh -c COMMAND`, success on exit 0.
    Exec(String),
    /// TCP connect to `HOST:PORT`.
    Tcp(String),
    /// HTTP GET of `url`, success on `status`.
    Http {
        /// `http://HOST:PORT/PATH`.
        url: String,
        /// Expected status code.
        status: u16,
    },
    /// A process with this name is running.
    Process(String),
    /// The file holds an integer weight (or cannot be read: down).
    File(PathBuf),
}

/// A tracked check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Name for logs and status.
    pub name: String,
    /// The probe.
    pub kind: CheckKind,
    /// Time between probes.
    pub interval: Duration,
    /// Time one probe may take.
    pub timeout: Duration,
    /// Successes in a row to count as up.
    pub rise: u32,
    /// Failures in a row to count as down.
    pub fall: u32,
    /// Added to the priority while down; 0 means FAULT.
    pub weight: i32,
}

/// Default check interval.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Default check timeout.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// Notify commands (each run with `sh -c`, arguments `INSTANCE STATE`).
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
    /// Accept mode.
    pub accept: bool,
    /// GARP / NA.
    pub garp: Garp,
    /// Tracked interfaces.
    pub track_interfaces: Vec<TrackInterface>,
    /// Tracked checks.
    pub checks: Vec<Check>,
    /// Notify commands.
    pub notify: Notify,
    /// Election or external role.
    pub role: Role,
    /// VRRPv2 password.
    pub auth_pass: Option<Secret>,
}

/// Default priority.
pub const DEFAULT_PRIORITY: u8 = 100;
/// Default advertisement interval.
pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_secs(1);
